using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.BNInception;

/// <summary>
/// BN-Inception (Inception-v2 of <i>Batch Normalization</i>, Ioffe &amp; Szegedy 2015) as Cadene's pretrainedmodels
/// 0.7.4 builds it (<c>BNInception</c>, converted from a Caffe model): the same module names, flat
/// and Caffe-style (<c>conv1_7x7_s2</c>, <c>conv1_7x7_s2_bn</c>, <c>inception_3a_1x1</c>, …, <c>last_linear</c>),
/// so that its checkpoint loads unchanged.
/// </summary>
/// <remarks>
/// <para>Every convolution has a bias; BatchNorm eps is 1e-5 and momentum 0.9 (PyTorch convention, kept from the
/// reference, which only matters in training); pools are in ceil mode, the branch pools are average pools
/// counting padding except in <c>inception_5b</c>, which max-pools. <c>inception_4c</c>–<c>4e</c> take 608
/// channels and <c>inception_5a</c> 1056.</para>
/// <para>Cadene's ImageNet weights expect BGR images in [0, 255] with the mean (104, 117, 128) subtracted and no
/// scaling (std 1).</para>
/// <para>The reference pools globally with a fixed 7×7 average pool (stride 1, ceil mode), which only yields a
/// 1×1 map, and so a working classifier, when the last feature map is 7×7 (224-pixel inputs). This model uses an
/// adaptive average pool, which computes the same mean there and also works at other sizes.</para>
/// <para>The stride-2 modules <c>inception_3c</c> and <c>inception_4e</c> only work when their input side is even,
/// as in the reference, so the map entering <c>inception_3c</c> must be a multiple of 4: input sides 31–38, 63–70,
/// …, 223–230, 255–262, … (see <see cref="AcceptsSize"/>). Other sizes are rejected with an
/// <see cref="InputShapeException"/> naming the nearest sizes that work.</para>
/// <para>The reference has no dropout; <see cref="ModelConfig.DropRate"/> defaults to 0 and, when set, applies
/// before <c>last_linear</c> without adding a module.</para>
/// </remarks>
public sealed class BNInception : InceptionModel
{
    private const int MinSize = 31;

    private readonly FlatConvBn conv1_7x7_s2;
    private readonly MaxPool2d pool1_3x3_s2;
    private readonly FlatConvBn conv2_3x3_reduce;
    private readonly FlatConvBn conv2_3x3;
    private readonly MaxPool2d pool2_3x3_s2;
    private readonly InceptionBlock inception_3a;
    private readonly InceptionBlock inception_3b;
    private readonly InceptionReduction inception_3c;
    private readonly InceptionBlock inception_4a;
    private readonly InceptionBlock inception_4b;
    private readonly InceptionBlock inception_4c;
    private readonly InceptionBlock inception_4d;
    private readonly InceptionReduction inception_4e;
    private readonly InceptionBlock inception_5a;
    private readonly InceptionBlock inception_5b;
    private readonly AdaptiveAvgPool2d global_pool;
    private readonly double dropRate;
    private nn.Module<Tensor, Tensor> last_linear;

    /// <summary>
    /// Builds the network. Modules are registered explicitly, in the reference's order and under its flat names;
    /// weights keep TorchSharp's default initialisation, as the reference does.
    /// </summary>
    public BNInception(ModelConfig config) : base("BNInception", config)
    {
        var u = Unit;
        conv1_7x7_s2 = new FlatConvBn(this, nameof(conv1_7x7_s2), config.InChannels, 64, 7, u, stride: 2, padding: 3);
        pool1_3x3_s2 = nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        register_module(nameof(pool1_3x3_s2), pool1_3x3_s2);
        conv2_3x3_reduce = new FlatConvBn(this, nameof(conv2_3x3_reduce), 64, 64, 1, u);
        conv2_3x3 = new FlatConvBn(this, nameof(conv2_3x3), 64, 192, 3, u, padding: 1);
        pool2_3x3_s2 = nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        register_module(nameof(pool2_3x3_s2), pool2_3x3_s2);

        const BranchPool avg = BranchPool.Average;
        inception_3a = new InceptionBlock(this, nameof(inception_3a), 192, 64, 64, 64, 64, 96, 32, avg, u);
        inception_3b = new InceptionBlock(this, nameof(inception_3b), 256, 64, 64, 96, 64, 96, 64, avg, u);
        inception_3c = new InceptionReduction(this, nameof(inception_3c), 320, 128, 160, 64, 96, u);
        inception_4a = new InceptionBlock(this, nameof(inception_4a), 576, 224, 64, 96, 96, 128, 128, avg, u);
        inception_4b = new InceptionBlock(this, nameof(inception_4b), 576, 192, 96, 128, 96, 128, 128, avg, u);
        inception_4c = new InceptionBlock(this, nameof(inception_4c), 576, 160, 128, 160, 128, 160, 128, avg, u);
        inception_4d = new InceptionBlock(this, nameof(inception_4d), 608, 96, 128, 192, 160, 192, 128, avg, u);
        inception_4e = new InceptionReduction(this, nameof(inception_4e), 608, 128, 192, 192, 256, u);
        inception_5a = new InceptionBlock(this, nameof(inception_5a), 1056, 352, 192, 320, 160, 224, 128, avg, u);
        inception_5b = new InceptionBlock(this, nameof(inception_5b), 1024, 352, 192, 320, 192, 224, 128, BranchPool.Max, u);

        global_pool = nn.AdaptiveAvgPool2d(1);
        register_module(nameof(global_pool), global_pool);
        dropRate = config.DropRate ?? 0.0;
        last_linear = Classifier(1024, config.NumClasses);
        register_module(nameof(last_linear), last_linear);
    }

    /// <summary>
    /// Cadene's conv unit: convolution with bias, BatchNorm eps 1e-5 and momentum 0.9 (the value of the reference,
    /// in PyTorch's convention: new statistics weigh 0.9), ReLU.
    /// </summary>
    public static ConvUnit Unit { get; } = new(Norm: true, Eps: 1e-5, ConvBias: true, Momentum: 0.9);

    /// <inheritdoc/>
    public override int NumFeatures => 1024;

    /// <summary>31: the smallest input whose map entering <c>inception_3c</c> is a multiple of 4 (4×4).</summary>
    public override int MinInputSize => MinSize;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; } =
    [
        new(64, 2, "conv1_7x7_s2"), new(192, 4, "conv2_3x3"), new(320, 8, "inception_3b"),
        new(608, 16, "inception_4d"), new(1024, 32, "inception_5b"),
    ];

    /// <summary>
    /// One row per Cadene stage: each conv unit under its convolution's name, the pools, the ten Inception
    /// modules (<c>inception_3a</c> … <c>inception_5b</c>), the global pool and the classifier.
    /// </summary>
    public override IEnumerable<(string Name, nn.Module Module)> Stages()
    {
        yield return (conv1_7x7_s2.Name, conv1_7x7_s2);
        yield return (nameof(pool1_3x3_s2), pool1_3x3_s2);
        yield return (conv2_3x3_reduce.Name, conv2_3x3_reduce);
        yield return (conv2_3x3.Name, conv2_3x3);
        yield return (nameof(pool2_3x3_s2), pool2_3x3_s2);
        foreach (var b in Blocks) yield return (b.GetName(), b);
        yield return (nameof(global_pool), global_pool);
        yield return (nameof(last_linear), last_linear);
    }

    /// <summary>
    /// Whether the network takes an input side of <paramref name="size"/> pixels: at least 31, and leading to a map
    /// entering <c>inception_3c</c> whose side is a multiple of 4.
    /// </summary>
    /// <remarks>
    /// The sizes that work come in runs of eight: 31–38, 63–70, …, 223–230 (224, the default), 255–262; 299, for
    /// example, does not.
    /// </remarks>
    public static bool AcceptsSize(int size) => size >= MinSize && SizeAt3c(size) % 4 == 0;

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses)
    {
        last_linear.Dispose();
        last_linear = Classifier(1024, numClasses);
        ReplaceChild(nameof(last_linear), last_linear);
        NumClasses = numClasses;
    }

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        CheckSize((int)x.shape[2], "height");
        CheckSize((int)x.shape[3], "width");
        using var scope = NewDisposeScope();
        // N x 3 x 224 x 224
        x = conv1_7x7_s2.call(x);
        // N x 64 x 112 x 112
        x = pool1_3x3_s2.call(x);
        // N x 64 x 56 x 56
        x = conv2_3x3_reduce.call(x);
        // N x 64 x 56 x 56
        x = conv2_3x3.call(x);
        // N x 192 x 56 x 56
        x = pool2_3x3_s2.call(x);
        // N x 192 x 28 x 28
        x = inception_3a.call(x);
        // N x 256 x 28 x 28
        x = inception_3b.call(x);
        // N x 320 x 28 x 28
        x = inception_3c.call(x);
        // N x 576 x 14 x 14
        x = inception_4a.call(x);
        // N x 576 x 14 x 14
        x = inception_4b.call(x);
        // N x 576 x 14 x 14
        x = inception_4c.call(x);
        // N x 608 x 14 x 14
        x = inception_4d.call(x);
        // N x 608 x 14 x 14
        x = inception_4e.call(x);
        // N x 1056 x 7 x 7
        x = inception_5a.call(x);
        // N x 1024 x 7 x 7
        x = inception_5b.call(x);
        // N x 1024 x 7 x 7
        return x.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        using var scope = NewDisposeScope();
        var x = flatten(global_pool.call(features), 1);
        // N x 1024
        if (preLogits) return x.MoveToOuterDisposeScope();
        if (dropRate > 0) x = nn.functional.dropout(x, dropRate, training);
        return last_linear.call(x).MoveToOuterDisposeScope();
        // N x num_classes
    }

    /// <summary>Registers nothing: every module was registered in the constructor under its flat name.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // The grouping modules are not registered, so the base class does not dispose them.
            foreach (var (_, m) in Stages()) if (m is FlatConvBn or InceptionBlock or InceptionReduction) m.Dispose();
        }

        base.Dispose(disposing);
    }

    private IEnumerable<nn.Module<Tensor, Tensor>> Blocks =>
    [
        inception_3a, inception_3b, inception_3c, inception_4a, inception_4b, inception_4c, inception_4d,
        inception_4e, inception_5a, inception_5b,
    ];

    /// <summary>Side of the map entering <c>inception_3c</c> for an input side of <paramref name="size"/> pixels.</summary>
    private static int SizeAt3c(int size)
    {
        int conv1 = (size - 1) / 2 + 1;         // 7×7/2, padding 3
        int pool1 = CeilPool(conv1);            // 3×3/2, ceil mode
        return CeilPool(pool1);                 // 3×3/2, ceil mode

        static int CeilPool(int h) => (h - 2) / 2 + 1;
    }

    private void CheckSize(int size, string side)
    {
        if (AcceptsSize(size)) return;
        int below = size, above = size;
        while (below >= MinInputSize && !AcceptsSize(below)) below--;
        while (!AcceptsSize(above)) above++;
        var hint = below >= MinInputSize ? $"{below} or {above}" : $"{above}";
        throw new InputShapeException(
            $"{GetName()} cannot take an input {side} of {size} pixels: its stride-2 modules inception_3c and inception_4e " +
            $"concatenate convolutions with ceil-mode pools, which only line up when the map entering inception_3c " +
            $"is a multiple of 4 pixels (it would be {SizeAt3c(size)}). Resize the images to {hint} pixels (224 is the default).");
    }
}
