using Incept.Analysis;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.GoogLeNet;

/// <summary>
/// The Inception module of GoogLeNet: 1×1, 1×1→3×3, 1×1→"5×5" and 3×3 max pool→1×1 branches,
/// concatenated along channels.
/// </summary>
public sealed class Inception : nn.Module<Tensor, Tensor>, IDescribedStage
{
    private readonly BasicConv2d branch1;
    private readonly Sequential branch2;
    private readonly Sequential branch3;
    private readonly Sequential branch4;

    /// <summary>Builds a module with the paper's Table 1 column widths.</summary>
    public Inception(long inChannels, long ch1x1, long ch3x3red, long ch3x3, long ch5x5red, long ch5x5, long poolProj,
        GoogLeNetArch arch) : base(nameof(Inception))
    {
        ArgumentNullException.ThrowIfNull(arch);
        var u = arch.Unit;
        int k = arch.Branch3Kernel;
        branch1 = u.Build(inChannels, ch1x1, 1);
        branch2 = nn.Sequential(u.Build(inChannels, ch3x3red, 1), u.Build(ch3x3red, ch3x3, 3, padding: 1));
        branch3 = nn.Sequential(u.Build(inChannels, ch5x5red, 1), u.Build(ch5x5red, ch5x5, k, padding: k / 2));
        branch4 = nn.Sequential(nn.MaxPool2d(3, stride: 1, padding: 1, ceil_mode: true), u.Build(inChannels, poolProj, 1));
        OutChannels = ch1x1 + ch3x3 + ch5x5 + poolProj;
        Columns = new Dictionary<string, long>
        {
            ["#1×1"] = ch1x1, ["#3×3 reduce"] = ch3x3red, ["#3×3"] = ch3x3,
            ["#5×5 reduce"] = ch5x5red, ["#5×5"] = ch5x5, ["pool proj"] = poolProj,
        };
        RegisterComponents();
    }

    /// <summary>The widths of the paper's Table 1 for this module.</summary>
    public IReadOnlyDictionary<string, long> Columns { get; }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return cat([branch1.call(input), branch2.call(input), branch3.call(input), branch4.call(input)], 1)
            .MoveToOuterDisposeScope();
    }
}

/// <summary>GoogLeNet's auxiliary classifier: pool to 4×4, 1×1 conv to 128, FC 1024 + ReLU, dropout, FC.</summary>
public sealed class InceptionAux : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d conv;
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly Dropout dropout;
    private readonly bool paperPool;

    /// <summary>Builds the head for a feature map of <paramref name="inChannels"/> channels.</summary>
    public InceptionAux(long inChannels, int numClasses, GoogLeNetArch arch) : base(nameof(InceptionAux))
    {
        ArgumentNullException.ThrowIfNull(arch);
        conv = arch.Unit.Build(inChannels, 128, 1);
        fc1 = nn.Linear(2048, 1024);
        fc2 = nn.Linear(1024, numClasses);
        dropout = nn.Dropout(arch.AuxDropRate);
        paperPool = arch.AuxPaperPool;
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
        x = nn.functional.relu(fc1.call(x));
        // N x 1024
        x = dropout.call(x);
        return fc2.call(x).MoveToOuterDisposeScope();
    }
}
