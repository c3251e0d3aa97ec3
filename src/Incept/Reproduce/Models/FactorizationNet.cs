using Incept.Layers;
using Incept.Models;
using Incept.Registry;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Reproduce.Models;

/// <summary>
/// A small Inception-style network for the <c>factorization</c> claim, built twice: with the Inception-v3 paper's
/// factorised convolutions (a 5×5 as two 3×3, a 7×7 as 1×7 then 7×1, a 3×3 as 1×3 then 3×1, each followed by
/// BatchNorm and ReLU) or with the full n×n convolutions they replace, at equal widths everywhere else. It exists only
/// to compare the two; it is not registered and its weights cannot be reloaded by name.
/// </summary>
/// <remarks>
/// For 28-pixel images: a stem of two 3×3 convolutions at 28×28, a pool to 14×14, two blocks whose factorised
/// branch replaces a 5×5, a pool to 7×7, two blocks replacing a 7×7 (n = 7, as in Inception-v3's 17×17 stage), a pool
/// to 4×4 and one block replacing a 3×3, then global average pooling and a linear classifier. Each block concatenates
/// a 1×1 branch, a 1×1 reduction followed by the (factorised or full) convolution, and a 3×3 average pool followed by
/// a 1×1 projection. Every width scales with <see cref="ModelConfig.Width"/>.
/// </remarks>
public sealed class FactorizationNet : InceptionModel
{
    private readonly Sequential stem;
    private readonly Sequential stageA;
    private readonly Sequential stageB;
    private readonly Sequential stageC;
    private readonly AdaptiveAvgPool2d pool;
    private nn.Module<Tensor, Tensor> fc;

    /// <summary>Builds the network, factorised or not.</summary>
    public FactorizationNet(ModelConfig config, bool factorized) : base(nameof(FactorizationNet), config)
    {
        Factorized = factorized;
        var u = ConvUnit.BatchNorm.For(config);
        long c32 = u.Scaled(32), c64 = u.Scaled(64);
        stem = nn.Sequential(
            u.Build(config.InChannels, c32, 3, padding: 1),
            u.Build(c32, c64, 3, padding: 1),
            nn.MaxPool2d(3, stride: 2, padding: 1));
        var a1 = new FactorizationBlock(c64, 32, 48, 5, 32, factorized, u);
        var a2 = new FactorizationBlock(a1.OutChannels, 32, 48, 5, 32, factorized, u);
        stageA = nn.Sequential(a1, a2, nn.MaxPool2d(3, stride: 2, padding: 1));
        var b1 = new FactorizationBlock(a2.OutChannels, 64, 64, 7, 64, factorized, u);
        var b2 = new FactorizationBlock(b1.OutChannels, 64, 64, 7, 64, factorized, u);
        stageB = nn.Sequential(b1, b2, nn.MaxPool2d(3, stride: 2, padding: 1));
        var c1 = new FactorizationBlock(b2.OutChannels, 64, 96, 3, 64, factorized, u);
        stageC = nn.Sequential(c1);
        NumFeatures = (int)c1.OutChannels;
        pool = nn.AdaptiveAvgPool2d(1);
        fc = Classifier(NumFeatures, config.NumClasses);
        FeatureInfo =
        [
            new((int)c64, 2, "stem"), new((int)a2.OutChannels, 4, "stageA"), new((int)b2.OutChannels, 8, "stageB"),
            new(NumFeatures, 8, "stageC"),
        ];
        RegisterComponents();
    }

    /// <summary>Whether the blocks use the factorised convolutions.</summary>
    public bool Factorized { get; }

    /// <inheritdoc/>
    public override int NumFeatures { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; }

    /// <inheritdoc/>
    public override int MinInputSize => 8;

    /// <summary>
    /// The registry-style description of the variant, so that the trainer can build it: <c>factorization_net</c>
    /// (factorised) or <c>factorization_net_full</c> (full n×n convolutions).
    /// </summary>
    public static ModelSpec Spec(bool factorized) => new()
    {
        Name = factorized ? "factorization_net" : "factorization_net_full",
        Family = "Reproduce",
        Paper = "Rethinking the Inception Architecture for Computer Vision (Szegedy et al., 2015)",
        Reference = "Incept's factorization experiment (not registered)",
        InputSize = 28, MinInputSize = 8, Params = 0, Macs = 0,
        FirstConv = "stem.0.conv", Classifier = "fc",
        Build = c => new FactorizationNet(c, factorized),
    };

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses) => fc = ReplaceClassifier(nameof(fc), fc, numClasses);

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        using var scope = NewDisposeScope();
        // N x 1 x 28 x 28
        x = stem.call(x);
        // N x 64 x 14 x 14
        x = stageA.call(x);
        // N x 128 x 7 x 7
        x = stageB.call(x);
        // N x 192 x 4 x 4
        x = stageC.call(x);
        // N x 256 x 4 x 4
        return x.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        using var scope = NewDisposeScope();
        var x = flatten(pool.call(features), 1);
        if (preLogits) return x.MoveToOuterDisposeScope();
        return fc.call(x).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// One block of <see cref="FactorizationNet"/>: a 1×1 branch, a 1×1 reduction followed by an n×n convolution
/// (or its factorisation) at the reduced width, and an average pool with a 1×1 projection, concatenated.
/// </summary>
public sealed class FactorizationBlock : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch1x1;
    private readonly Sequential branchNxn;
    private readonly BasicConv2d branchPool;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> channels with reference widths <paramref name="ch1x1"/>,
    /// <paramref name="chNxn"/> (the reduction and the n×n convolutions) and <paramref name="poolProj"/>, scaled by
    /// <paramref name="unit"/>'s width. <paramref name="n"/> is 5 (two 3×3 when factorised), or 3 or 7 (1×n then n×1).
    /// </summary>
    public FactorizationBlock(long inChannels, long ch1x1, long chNxn, int n, long poolProj, bool factorized, ConvUnit unit) : base(nameof(FactorizationBlock))
    {
        ArgumentNullException.ThrowIfNull(unit);
        if (n is not (3 or 5 or 7)) throw new ArgumentOutOfRangeException(nameof(n), n, "The block factorises 3×3, 5×5 or 7×7 convolutions.");
        (ch1x1, chNxn, poolProj) = (unit.Scaled(ch1x1), unit.Scaled(chNxn), unit.Scaled(poolProj));
        branch1x1 = unit.Build(inChannels, ch1x1, 1);
        var reduce = unit.Build(inChannels, chNxn, 1);
        branchNxn = !factorized
            ? nn.Sequential(reduce, unit.Build(chNxn, chNxn, n, padding: n / 2))
            : n == 5
                ? nn.Sequential(reduce, unit.Build(chNxn, chNxn, 3, padding: 1), unit.Build(chNxn, chNxn, 3, padding: 1))
                : nn.Sequential(reduce, unit.Build(chNxn, chNxn, (1, n), (0, n / 2)), unit.Build(chNxn, chNxn, (n, 1), (n / 2, 0)));
        branchPool = unit.Build(inChannels, poolProj, 1);
        OutChannels = ch1x1 + chNxn + poolProj;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var b1 = branch1x1.call(input);
        var bn = branchNxn.call(input);
        var bp = branchPool.call(nn.functional.avg_pool2d(input, 3, stride: 1, padding: 1));
        return cat([b1, bn, bp], 1).MoveToOuterDisposeScope();
    }
}
