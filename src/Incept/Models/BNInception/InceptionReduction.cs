using Incept.Export;
using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Models.BNInception;

/// <summary>
/// The stride-2 BN-Inception module (<c>inception_3c</c>, <c>inception_4e</c>): 1×1→3×3/2, 1×1→3×3→3×3/2 and a
/// 3×3/2 ceil-mode max pool that passes its input through, concatenated along channels. Its modules are
/// registered on the model under Cadene's flat names.
/// </summary>
/// <remarks>
/// The convolutions (padding 1, floor) and the pool (no padding, ceil mode) give the same output size only
/// for an even input size; Cadene's reference has the same constraint. Built for
/// <see cref="Incept.Models.ModelConfig.SmallInput"/>, the pool is padded by 1 in floor mode instead, which
/// lines up with the convolutions at every size (the pool has no parameters, so the keys do not change).
/// </remarks>
public sealed class InceptionReduction : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly FlatConvBn b3x3_reduce;
    private readonly FlatConvBn b3x3;
    private readonly FlatConvBn double_3x3_reduce;
    private readonly FlatConvBn double_3x3_1;
    private readonly FlatConvBn double_3x3_2;
    private readonly nn.Module<Tensor, Tensor> pool;

    /// <summary>
    /// Builds the module called <paramref name="prefix"/> on <paramref name="owner"/> with the reference's branch
    /// widths, scaled by <paramref name="unit"/>'s width; <paramref name="paddedPool"/> pads the pool so that any
    /// input size works.
    /// </summary>
    public InceptionReduction(nn.Module owner, string prefix, long inChannels, long ch3x3red, long ch3x3,
        long dbl3x3red, long dbl3x3, ConvUnit unit, bool paddedPool = false) : base(prefix)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(unit);
        (ch3x3red, ch3x3) = (unit.Scaled(ch3x3red), unit.Scaled(ch3x3));
        (dbl3x3red, dbl3x3) = (unit.Scaled(dbl3x3red), unit.Scaled(dbl3x3));
        b3x3_reduce = new FlatConvBn(owner, prefix + "_3x3_reduce", inChannels, ch3x3red, 1, unit);
        b3x3 = new FlatConvBn(owner, prefix + "_3x3", ch3x3red, ch3x3, 3, unit, stride: 2, padding: 1);
        double_3x3_reduce = new FlatConvBn(owner, prefix + "_double_3x3_reduce", inChannels, dbl3x3red, 1, unit);
        double_3x3_1 = new FlatConvBn(owner, prefix + "_double_3x3_1", dbl3x3red, dbl3x3, 3, unit, padding: 1);
        double_3x3_2 = new FlatConvBn(owner, prefix + "_double_3x3_2", dbl3x3, dbl3x3, 3, unit, stride: 2, padding: 1);
        pool = paddedPool ? nn.MaxPool2d(3, stride: 2, padding: 1) : nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        owner.register_module(prefix + "_pool", pool);
        OutChannels = ch3x3 + dbl3x3 + inChannels;
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <summary>The block's conv units.</summary>
    internal IEnumerable<FlatConvBn> Units => [b3x3_reduce, b3x3, double_3x3_reduce, double_3x3_1, double_3x3_2];

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x1 = b3x3.call(b3x3_reduce.call(input));
        var x2 = double_3x3_2.call(double_3x3_1.call(double_3x3_reduce.call(input)));
        var x3 = Pooling.Call(pool, input);
        return cat([x1, x2, x3], 1).MoveToOuterDisposeScope();
    }

    /// <summary>Written at the model's level, under the flat names, like the modules themselves.</summary>
    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
    {
        var x1 = graph.Call(b3x3, graph.Call(b3x3_reduce, input));
        var x2 = graph.Call(double_3x3_2, graph.Call(double_3x3_1, graph.Call(double_3x3_reduce, input)));
        var x3 = graph.Call(pool, input, GetName() + "_pool");
        return graph.InScope(GetName(), () => graph.Concat(x1, x2, x3));
    }

    /// <summary>Registers nothing: the modules are registered on the model under their flat names.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        // The units only group modules that the model owns and disposes; here their own handles go.
        if (disposing) foreach (var unit in new[] { b3x3_reduce, b3x3, double_3x3_reduce, double_3x3_1, double_3x3_2 }) unit.Dispose();
        base.Dispose(disposing);
    }
}
