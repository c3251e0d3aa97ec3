using Incept.Export;
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
/// …, 223–230, 255–262, … (see <see cref="AcceptsSize(int)"/>). Other sizes are rejected with an
/// <see cref="InputShapeException"/> naming the nearest sizes that work.</para>
/// <para>With <see cref="ModelConfig.SmallInput"/>, <c>conv1_7x7_s2</c> keeps its name but is a 3×3 convolution with
/// stride 1 (padding 1), <c>pool1_3x3_s2</c> is an identity, and the max pools of <c>inception_3c</c> and
/// <c>inception_4e</c> are padded (3×3/2, padding 1, floor mode) so that they line up with the convolutions at every
/// size: a 28-pixel image runs the stem at 28×28, <c>inception_3a</c>/<c>3b</c> at 14×14, <c>inception_4a</c>–<c>4d</c>
/// at 7×7 and <c>inception_5a</c>/<c>5b</c> at 4×4, and every size from <see cref="MinInputSize"/> up works.</para>
/// <para>The reference has no dropout; <see cref="ModelConfig.DropRate"/> defaults to 0 and, when set, applies
/// before <c>last_linear</c> without adding a module.</para>
/// </remarks>
public sealed class BNInception : InceptionModel, IOnnxExportable
{
    private const int MinSize = 31;
    private const int SmallMinSize = 3;

    private readonly FlatConvBn conv1_7x7_s2;
    private readonly nn.Module<Tensor, Tensor> pool1_3x3_s2;
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
        var u = Unit.For(config);
        bool small = config.SmallInput;
        long stem = u.Scaled(64), stemOut = u.Scaled(192);
        conv1_7x7_s2 = small
            ? new FlatConvBn(this, nameof(conv1_7x7_s2), config.InChannels, stem, 3, u, padding: 1)
            : new FlatConvBn(this, nameof(conv1_7x7_s2), config.InChannels, stem, 7, u, stride: 2, padding: 3);
        pool1_3x3_s2 = small ? nn.Identity() : nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        register_module(nameof(pool1_3x3_s2), pool1_3x3_s2);
        conv2_3x3_reduce = new FlatConvBn(this, nameof(conv2_3x3_reduce), stem, stem, 1, u);
        conv2_3x3 = new FlatConvBn(this, nameof(conv2_3x3), stem, stemOut, 3, u, padding: 1);
        pool2_3x3_s2 = nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        register_module(nameof(pool2_3x3_s2), pool2_3x3_s2);

        const BranchPool avg = BranchPool.Average;
        inception_3a = new InceptionBlock(this, nameof(inception_3a), stemOut, 64, 64, 64, 64, 96, 32, avg, u);
        inception_3b = new InceptionBlock(this, nameof(inception_3b), inception_3a.OutChannels, 64, 64, 96, 64, 96, 64, avg, u);
        inception_3c = new InceptionReduction(this, nameof(inception_3c), inception_3b.OutChannels, 128, 160, 64, 96, u, paddedPool: small);
        inception_4a = new InceptionBlock(this, nameof(inception_4a), inception_3c.OutChannels, 224, 64, 96, 96, 128, 128, avg, u);
        inception_4b = new InceptionBlock(this, nameof(inception_4b), inception_4a.OutChannels, 192, 96, 128, 96, 128, 128, avg, u);
        inception_4c = new InceptionBlock(this, nameof(inception_4c), inception_4b.OutChannels, 160, 128, 160, 128, 160, 128, avg, u);
        inception_4d = new InceptionBlock(this, nameof(inception_4d), inception_4c.OutChannels, 96, 128, 192, 160, 192, 128, avg, u);
        inception_4e = new InceptionReduction(this, nameof(inception_4e), inception_4d.OutChannels, 128, 192, 192, 256, u, paddedPool: small);
        inception_5a = new InceptionBlock(this, nameof(inception_5a), inception_4e.OutChannels, 352, 192, 320, 160, 224, 128, avg, u);
        inception_5b = new InceptionBlock(this, nameof(inception_5b), inception_5a.OutChannels, 352, 192, 320, 192, 224, 128, BranchPool.Max, u);

        NumFeatures = (int)inception_5b.OutChannels;
        global_pool = nn.AdaptiveAvgPool2d(1);
        register_module(nameof(global_pool), global_pool);
        dropRate = config.DropRate ?? 0.0;
        last_linear = Classifier(NumFeatures, config.NumClasses);
        register_module(nameof(last_linear), last_linear);
        // The small stem does not reduce until pool2_3x3_s2, so every later stride is 4 times smaller.
        int r = small ? 4 : 1;
        FeatureInfo =
        [
            new((int)stem, small ? 1 : 2, "conv1_7x7_s2"), new((int)stemOut, small ? 1 : 4, "conv2_3x3"),
            new((int)inception_3b.OutChannels, 8 / r, "inception_3b"),
            new((int)inception_4d.OutChannels, 16 / r, "inception_4d"), new(NumFeatures, 32 / r, "inception_5b"),
        ];
    }

    /// <summary>
    /// Cadene's conv unit: convolution with bias, BatchNorm eps 1e-5 and momentum 0.9 (the value of the reference,
    /// in PyTorch's convention: new statistics weigh 0.9), ReLU.
    /// </summary>
    public static ConvUnit Unit { get; } = new(Norm: true, Eps: 1e-5, ConvBias: true, Momentum: 0.9);

    /// <inheritdoc/>
    public override int NumFeatures { get; }

    /// <summary>
    /// 31: the smallest input whose map entering <c>inception_3c</c> is a multiple of 4 (4×4); with
    /// <see cref="ModelConfig.SmallInput"/>, 3 (the 3×3 <c>pool2_3x3_s2</c>).
    /// </summary>
    public override int MinInputSize => Config.SmallInput ? SmallMinSize : MinSize;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; }

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

    /// <summary>
    /// Whether the network built with <paramref name="smallInput"/> (<see cref="ModelConfig.SmallInput"/>) takes an
    /// input side of <paramref name="size"/> pixels: with the small stem every size from 3 up.
    /// </summary>
    public static bool AcceptsSize(int size, bool smallInput) => smallInput ? size >= SmallMinSize : AcceptsSize(size);

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses) => last_linear = ReplaceClassifier(nameof(last_linear), last_linear, numClasses);

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        CheckSize((int)x.shape[2], "height");
        CheckSize((int)x.shape[3], "width");
        using var scope = NewDisposeScope();
        // N x 3 x 224 x 224
        x = Advance(x, conv1_7x7_s2.call(x), scope);
        // N x 64 x 112 x 112
        x = Advance(x, Pooling.Call(pool1_3x3_s2, x), scope);
        // N x 64 x 56 x 56
        x = Advance(x, conv2_3x3_reduce.call(x), scope);
        // N x 64 x 56 x 56
        x = Advance(x, conv2_3x3.call(x), scope);
        // N x 192 x 56 x 56
        x = Advance(x, Pooling.Call(pool2_3x3_s2, x), scope);
        // N x 192 x 28 x 28
        x = Advance(x, inception_3a.call(x), scope);
        // N x 256 x 28 x 28
        x = Advance(x, inception_3b.call(x), scope);
        // N x 320 x 28 x 28
        x = Advance(x, inception_3c.call(x), scope);
        // N x 576 x 14 x 14
        x = Advance(x, inception_4a.call(x), scope);
        // N x 576 x 14 x 14
        x = Advance(x, inception_4b.call(x), scope);
        // N x 576 x 14 x 14
        x = Advance(x, inception_4c.call(x), scope);
        // N x 608 x 14 x 14
        x = Advance(x, inception_4d.call(x), scope);
        // N x 608 x 14 x 14
        x = Advance(x, inception_4e.call(x), scope);
        // N x 1056 x 7 x 7
        x = Advance(x, inception_5a.call(x), scope);
        // N x 1024 x 7 x 7
        x = Advance(x, inception_5b.call(x), scope);
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

    /// <summary>The evaluation-mode forward pass as ONNX, in the order of <see cref="Stages"/>.</summary>
    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue x)
    {
        x = graph.Call(conv1_7x7_s2, x);
        x = graph.Call(pool1_3x3_s2, x, nameof(pool1_3x3_s2));
        x = graph.Call(conv2_3x3_reduce, x);
        x = graph.Call(conv2_3x3, x);
        x = graph.Call(pool2_3x3_s2, x, nameof(pool2_3x3_s2));
        foreach (var block in Blocks) x = graph.Call(block, x);
        x = graph.Flatten(graph.Call(global_pool, x, nameof(global_pool)));
        return graph.Call(last_linear, x, nameof(last_linear));
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

    /// <summary>The flat conv units: the stem's, then each Inception module's (they are not registered modules).</summary>
    internal override IEnumerable<IConvBnUnit> ConvBnUnits()
    {
        IEnumerable<FlatConvBn> stem = [conv1_7x7_s2, conv2_3x3_reduce, conv2_3x3];
        var blocks = Blocks.SelectMany(b => b switch
        {
            InceptionBlock block => block.Units,
            InceptionReduction reduction => reduction.Units,
            _ => [],
        });
        return stem.Concat(blocks);
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
        if (AcceptsSize(size, Config.SmallInput)) return;
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
