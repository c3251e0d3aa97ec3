using Incept.Analysis;
using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.GoogLeNet;

/// <summary>
/// The Inception module of GoogLeNet: 1×1, 1×1→3×3, 1×1→"5×5" and 3×3 max pool→1×1 branches,
/// concatenated along channels.
/// </summary>
public sealed class Inception : nn.Module<Tensor, Tensor>, IDescribedStage, IOnnxExportable
{
    private readonly BasicConv2d branch1;
    private readonly Sequential branch2;
    private readonly Sequential branch3;
    private readonly Sequential branch4;

    /// <summary>
    /// Builds a module with the paper's Table 1 column widths, scaled by <paramref name="unit"/>'s width, on
    /// <paramref name="inChannels"/> input channels.
    /// </summary>
    public Inception(long inChannels, long ch1x1, long ch3x3red, long ch3x3, long ch5x5red, long ch5x5, long poolProj,
        GoogLeNetArch arch, ConvUnit unit) : base(nameof(Inception))
    {
        ArgumentNullException.ThrowIfNull(arch);
        ArgumentNullException.ThrowIfNull(unit);
        var u = unit;
        int k = arch.Branch3Kernel;
        (ch1x1, ch3x3red, ch3x3) = (u.Scaled(ch1x1), u.Scaled(ch3x3red), u.Scaled(ch3x3));
        (ch5x5red, ch5x5, poolProj) = (u.Scaled(ch5x5red), u.Scaled(ch5x5), u.Scaled(poolProj));
        branch1 = u.Build(inChannels, ch1x1, 1);
        if (arch.Reductions)
        {
            branch2 = nn.Sequential(u.Build(inChannels, ch3x3red, 1), u.Build(ch3x3red, ch3x3, 3, padding: 1));
            branch3 = nn.Sequential(u.Build(inChannels, ch5x5red, 1), u.Build(ch5x5red, ch5x5, k, padding: k / 2));
        }
        else
        {
            (ch3x3red, ch5x5red) = (0, 0);
            branch2 = nn.Sequential(u.Build(inChannels, ch3x3, 3, padding: 1));
            branch3 = nn.Sequential(u.Build(inChannels, ch5x5, k, padding: k / 2));
        }

        branch4 = nn.Sequential(nn.MaxPool2d(3, stride: 1, padding: 1, ceil_mode: true), u.Build(inChannels, poolProj, 1));
        OutChannels = ch1x1 + ch3x3 + ch5x5 + poolProj;
        Columns = new Dictionary<string, long>
        {
            ["#1×1"] = ch1x1, ["#3×3 reduce"] = ch3x3red, ["#3×3"] = ch3x3,
            ["#5×5 reduce"] = ch5x5red, ["#5×5"] = ch5x5, ["pool proj"] = poolProj,
        };
        RegisterComponents();
    }

    /// <summary>The widths of the paper's Table 1 for this module (scaled when the model is narrower).</summary>
    public IReadOnlyDictionary<string, long> Columns { get; }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return cat([branch1.call(input), branch2.call(input), branch3.call(input), Pooling.Call(branch4, input)], 1)
            .MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input) => graph.Concat(
        graph.Call(branch1, input, nameof(branch1)), graph.Call(branch2, input, nameof(branch2)),
        graph.Call(branch3, input, nameof(branch3)), graph.Call(branch4, input, nameof(branch4)));
}

/// <summary>
/// GoogLeNet's auxiliary classifier: pool to 4×4, 1×1 conv to 128, FC 1024 + ReLU, dropout, FC. In a narrower
/// model the conv and the hidden FC scale with the width (128 and 1024 times the width, rounded to 8).
/// </summary>
public sealed class InceptionAux : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d conv;
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly Dropout dropout;
    private readonly bool paperPool;

    /// <summary>
    /// Builds the head for a feature map of <paramref name="inChannels"/> channels. With
    /// <paramref name="adaptivePool"/> it pools adaptively to 4×4 even when the variant pools 5×5/3 (the paper),
    /// so that it works on the small grid of <see cref="ModelConfig.SmallInput"/>.
    /// </summary>
    public InceptionAux(long inChannels, int numClasses, GoogLeNetArch arch, ConvUnit unit, bool adaptivePool = false) : base(nameof(InceptionAux))
    {
        ArgumentNullException.ThrowIfNull(arch);
        ArgumentNullException.ThrowIfNull(unit);
        long channels = unit.Scaled(128), hidden = unit.Scaled(1024);
        conv = unit.Build(inChannels, channels, 1);
        fc1 = nn.Linear(channels * 4 * 4, hidden);
        fc2 = nn.Linear(hidden, numClasses);
        dropout = nn.Dropout(arch.AuxDropRate);
        paperPool = arch.AuxPaperPool && !adaptivePool;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // aux1: N x 512 x 14 x 14, aux2: N x 528 x 14 x 14
        var x = paperPool
            ? nn.functional.avg_pool2d(input, 5, stride: 3)
            : nn.functional.adaptive_avg_pool2d(input, [4, 4]);
        // N x C x 4 x 4
        x = conv.call(x);
        // N x 128 x 4 x 4
        x = flatten(x, 1);
        x = fc1.call(x).relu_();
        // N x 1024
        x = dropout.call(x);
        return fc2.call(x).MoveToOuterDisposeScope();
    }
}
