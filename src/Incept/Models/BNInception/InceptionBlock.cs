using Incept.Export;
using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Models.BNInception;

/// <summary>Which pooling feeds the pool-projection branch of a BN-Inception module.</summary>
public enum BranchPool
{
    /// <summary>3×3/1 average pool, padding 1, ceil mode, padding counted in the average.</summary>
    Average,

    /// <summary>3×3/1 max pool, padding 1, ceil mode (only <c>inception_5b</c>).</summary>
    Max,
}

/// <summary>
/// The BN-Inception module (Ioffe &amp; Szegedy, Figure 5 style): 1×1, 1×1→3×3, 1×1→3×3→3×3 ("double 3×3") and
/// pool→1×1 projection branches, concatenated along channels. Its modules are registered on the model under
/// Cadene's flat names (<c>{prefix}_1x1</c>, <c>{prefix}_3x3_reduce</c>, …, <c>{prefix}_pool</c>,
/// <c>{prefix}_pool_proj</c>); the block itself is a grouping for the forward pass and summaries.
/// </summary>
public sealed class InceptionBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly FlatConvBn b1x1;
    private readonly FlatConvBn b3x3_reduce;
    private readonly FlatConvBn b3x3;
    private readonly FlatConvBn double_3x3_reduce;
    private readonly FlatConvBn double_3x3_1;
    private readonly FlatConvBn double_3x3_2;
    private readonly nn.Module<Tensor, Tensor> pool;
    private readonly FlatConvBn pool_proj;

    /// <summary>
    /// Builds the module called <paramref name="prefix"/> on <paramref name="owner"/> with the reference's branch
    /// widths, scaled by <paramref name="unit"/>'s width, on <paramref name="inChannels"/> input channels.
    /// </summary>
    public InceptionBlock(nn.Module owner, string prefix, long inChannels, long ch1x1, long ch3x3red, long ch3x3,
        long dbl3x3red, long dbl3x3, long poolProj, BranchPool poolKind, ConvUnit unit) : base(prefix)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(unit);
        (ch1x1, ch3x3red, ch3x3) = (unit.Scaled(ch1x1), unit.Scaled(ch3x3red), unit.Scaled(ch3x3));
        (dbl3x3red, dbl3x3, poolProj) = (unit.Scaled(dbl3x3red), unit.Scaled(dbl3x3), unit.Scaled(poolProj));
        b1x1 = new FlatConvBn(owner, prefix + "_1x1", inChannels, ch1x1, 1, unit);
        b3x3_reduce = new FlatConvBn(owner, prefix + "_3x3_reduce", inChannels, ch3x3red, 1, unit);
        b3x3 = new FlatConvBn(owner, prefix + "_3x3", ch3x3red, ch3x3, 3, unit, padding: 1);
        double_3x3_reduce = new FlatConvBn(owner, prefix + "_double_3x3_reduce", inChannels, dbl3x3red, 1, unit);
        double_3x3_1 = new FlatConvBn(owner, prefix + "_double_3x3_1", dbl3x3red, dbl3x3, 3, unit, padding: 1);
        double_3x3_2 = new FlatConvBn(owner, prefix + "_double_3x3_2", dbl3x3, dbl3x3, 3, unit, padding: 1);
        pool = poolKind == BranchPool.Average
            ? nn.AvgPool2d(3, stride: 1, padding: 1, ceil_mode: true, count_include_pad: true)
            : nn.MaxPool2d(3, stride: 1, padding: 1, ceil_mode: true);
        owner.register_module(prefix + "_pool", pool);
        pool_proj = new FlatConvBn(owner, prefix + "_pool_proj", inChannels, poolProj, 1, unit);
        PoolKind = poolKind;
        OutChannels = ch1x1 + ch3x3 + dbl3x3 + poolProj;
    }

    /// <summary>The pooling of the projection branch.</summary>
    public BranchPool PoolKind { get; }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <summary>The block's conv units.</summary>
    internal IEnumerable<FlatConvBn> Units => [b1x1, b3x3_reduce, b3x3, double_3x3_reduce, double_3x3_1, double_3x3_2, pool_proj];

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x1 = b1x1.call(input);
        var x2 = b3x3.call(b3x3_reduce.call(input));
        var x3 = double_3x3_2.call(double_3x3_1.call(double_3x3_reduce.call(input)));
        var x4 = pool_proj.call(Pooling.Call(pool, input));
        return cat([x1, x2, x3, x4], 1).MoveToOuterDisposeScope();
    }

    /// <summary>Written at the model's level, under the flat names, like the modules themselves.</summary>
    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
    {
        var x1 = graph.Call(b1x1, input);
        var x2 = graph.Call(b3x3, graph.Call(b3x3_reduce, input));
        var x3 = graph.Call(double_3x3_2, graph.Call(double_3x3_1, graph.Call(double_3x3_reduce, input)));
        var x4 = graph.Call(pool_proj, graph.Call(pool, input, GetName() + "_pool"));
        return graph.InScope(GetName(), () => graph.Concat(x1, x2, x3, x4));
    }

    /// <summary>Registers nothing: the modules are registered on the model under their flat names.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        // The units only group modules that the model owns and disposes; here their own handles go.
        if (disposing) foreach (var unit in new[] { b1x1, b3x3_reduce, b3x3, double_3x3_reduce, double_3x3_1, double_3x3_2, pool_proj }) unit.Dispose();
        base.Dispose(disposing);
    }
}
