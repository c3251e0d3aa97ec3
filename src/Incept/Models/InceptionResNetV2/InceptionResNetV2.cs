using Incept.Export;
using Incept.Layers;
using Incept.Models.InceptionV4;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV2;

/// <summary>
/// Inception-ResNet-v2, <i>Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning</i>,
/// as released in TF-slim. Its module tree and state-dict keys are timm's <c>inception_resnet_v2</c>
/// (<c>conv2d_1a</c> … <c>conv2d_7b</c>, classifier <c>classif</c>).
/// </summary>
/// <remarks>
/// With <see cref="ModelConfig.SmallInput"/>, <c>conv2d_1a</c> has stride 1 and, like <c>conv2d_2a</c> and
/// <c>conv2d_4a</c>, padding 1; <c>maxpool_3a</c> is an identity and <c>maxpool_5a</c> is padded (3×3/2, padding 1).
/// A 28-pixel image then runs the stem at 28×28, <c>mixed_5b</c> and <c>repeat</c> at 14×14, <c>repeat_1</c> at 6×6
/// and <c>repeat_2</c> to <c>conv2d_7b</c> at 2×2 (<c>mixed_6a</c> and <c>mixed_7a</c> stay unpadded, as in the
/// reference).
/// </remarks>
public sealed class InceptionResNetV2 : InceptionModel, IOnnxExportable
{
    private const int SmallMin = 13;

    private readonly BasicConv2d conv2d_1a;
    private readonly BasicConv2d conv2d_2a;
    private readonly BasicConv2d conv2d_2b;
    private readonly nn.Module<Tensor, Tensor> maxpool_3a;
    private readonly BasicConv2d conv2d_3b;
    private readonly BasicConv2d conv2d_4a;
    private readonly MaxPool2d maxpool_5a;
    private readonly Mixed5b mixed_5b;
    private readonly Sequential repeat;
    private readonly ReductionA mixed_6a;
    private readonly Sequential repeat_1;
    private readonly Mixed7a mixed_7a;
    private readonly Sequential repeat_2;
    private readonly Block8 block8;
    private readonly BasicConv2d conv2d_7b;
    private readonly AdaptiveAvgPool2d global_pool;
    private readonly Dropout head_drop;
    private nn.Module<Tensor, Tensor> classif;

    /// <summary>
    /// Builds the network with the reference's residual scales: 0.17 (10 × Block35), 0.10 (20 × Block17),
    /// 0.20 (9 × Block8) and a last Block8 with scale 1.0 and no ReLU. Default (PyTorch) initialisation, as timm.
    /// </summary>
    public InceptionResNetV2(ModelConfig config) : this(config, 0.17, 0.10, 0.20)
    {
    }

    /// <summary>
    /// Builds the network with the residual scales <paramref name="scaleA"/>, <paramref name="scaleB"/> and
    /// <paramref name="scaleC"/> for the repeated 35×35, 17×17 and 8×8 blocks. The last 8×8 block always
    /// has scale 1.0 and no ReLU.
    /// </summary>
    public InceptionResNetV2(ModelConfig config, double scaleA, double scaleB, double scaleC)
        : base("InceptionResNetV2", config)
    {
        var u = ConvUnit.BatchNorm.For(config);
        bool small = config.SmallInput;
        int pad = small ? 1 : 0;
        long c32 = u.Scaled(32), c64 = u.Scaled(64), c80 = u.Scaled(80), c192 = u.Scaled(192);
        conv2d_1a = u.Build(config.InChannels, c32, 3, stride: small ? 1 : 2, padding: pad);
        conv2d_2a = u.Build(c32, c32, 3, padding: pad);
        conv2d_2b = u.Build(c32, c64, 3, padding: 1);
        maxpool_3a = small ? nn.Identity() : nn.MaxPool2d(3, stride: 2);
        conv2d_3b = u.Build(c64, c80, 1);
        conv2d_4a = u.Build(c80, c192, 3, padding: pad);
        maxpool_5a = nn.MaxPool2d(3, stride: 2, padding: pad);
        mixed_5b = new Mixed5b(c192, u);
        long c320 = mixed_5b.OutChannels;
        repeat = nn.Sequential([.. Enumerable.Range(0, 10).Select(_ => new Block35(c320, u, scaleA))]);
        mixed_6a = new ReductionA(c320, 256, 256, 384, 384, u);
        long c1088 = mixed_6a.OutChannels;
        repeat_1 = nn.Sequential([.. Enumerable.Range(0, 20).Select(_ => new Block17(c1088, u, scaleB))]);
        mixed_7a = new Mixed7a(c1088, u);
        long c2080 = mixed_7a.OutChannels;
        repeat_2 = nn.Sequential([.. Enumerable.Range(0, 9).Select(_ => new Block8(c2080, u, scaleC))]);
        block8 = new Block8(c2080, u, 1.0, relu: false);
        NumFeatures = (int)u.Scaled(1536);
        conv2d_7b = u.Build(c2080, NumFeatures, 1);
        global_pool = nn.AdaptiveAvgPool2d(1);
        head_drop = nn.Dropout(config.DropRate ?? 0.0);
        classif = Classifier(NumFeatures, config.NumClasses);
        // The small stem does not reduce until maxpool_5a, so every later stride is 4 times smaller.
        int r = small ? 4 : 1;
        FeatureInfo =
        [
            new((int)c64, small ? 1 : 2, "conv2d_2b"), new((int)c192, small ? 1 : 4, "conv2d_4a"),
            new((int)c320, 8 / r, "repeat"), new((int)c1088, 16 / r, "repeat_1"), new(NumFeatures, 32 / r, "conv2d_7b"),
        ];
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int NumFeatures { get; }

    /// <inheritdoc/>
    /// <remarks>
    /// At 75 pixels <c>mixed_7a</c> gets a 3×3 map and the last feature map is 1×1; at 74 its unpadded
    /// 3×3 stride-2 convolutions get a 2×2 map. With <see cref="ModelConfig.SmallInput"/> the same happens at 13
    /// and 12 pixels.
    /// </remarks>
    public override int MinInputSize => Config.SmallInput ? SmallMin : 75;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; }

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses) => classif = ReplaceClassifier(nameof(classif), classif, numClasses);

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        using var scope = NewDisposeScope();
        // N x 3 x 299 x 299
        x = Advance(x, conv2d_1a.call(x), scope);
        // N x 32 x 149 x 149
        x = Advance(x, conv2d_2a.call(x), scope);
        // N x 32 x 147 x 147
        x = Advance(x, conv2d_2b.call(x), scope);
        // N x 64 x 147 x 147
        x = Advance(x, Pooling.Call(maxpool_3a, x), scope);
        // N x 64 x 73 x 73
        x = Advance(x, conv2d_3b.call(x), scope);
        // N x 80 x 73 x 73
        x = Advance(x, conv2d_4a.call(x), scope);
        // N x 192 x 71 x 71
        x = Advance(x, Pooling.Call(maxpool_5a, x), scope);
        // N x 192 x 35 x 35
        x = Advance(x, mixed_5b.call(x), scope);
        // N x 320 x 35 x 35
        x = Advance(x, repeat.call(x), scope);
        // N x 320 x 35 x 35
        x = Advance(x, mixed_6a.call(x), scope);
        // N x 1088 x 17 x 17
        x = Advance(x, repeat_1.call(x), scope);
        // N x 1088 x 17 x 17
        x = Advance(x, mixed_7a.call(x), scope);
        // N x 2080 x 8 x 8
        x = Advance(x, repeat_2.call(x), scope);
        // N x 2080 x 8 x 8
        x = Advance(x, block8.call(x), scope);
        // N x 2080 x 8 x 8
        x = Advance(x, conv2d_7b.call(x), scope);
        // N x 1536 x 8 x 8
        return x.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        using var scope = NewDisposeScope();
        var x = flatten(global_pool.call(features), 1);
        // N x 1536
        x = head_drop.call(x);
        if (preLogits) return x.MoveToOuterDisposeScope();
        return classif.call(x).MoveToOuterDisposeScope();
        // N x num_classes
    }

    /// <summary>The evaluation-mode forward pass as ONNX: dropout is left out.</summary>
    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue x)
    {
        x = graph.Call(conv2d_1a, x, nameof(conv2d_1a));
        x = graph.Call(conv2d_2a, x, nameof(conv2d_2a));
        x = graph.Call(conv2d_2b, x, nameof(conv2d_2b));
        x = graph.Call(maxpool_3a, x, nameof(maxpool_3a));
        x = graph.Call(conv2d_3b, x, nameof(conv2d_3b));
        x = graph.Call(conv2d_4a, x, nameof(conv2d_4a));
        x = graph.Call(maxpool_5a, x, nameof(maxpool_5a));
        x = graph.Call(mixed_5b, x, nameof(mixed_5b));
        x = graph.Call(repeat, x, nameof(repeat));
        x = graph.Call(mixed_6a, x, nameof(mixed_6a));
        x = graph.Call(repeat_1, x, nameof(repeat_1));
        x = graph.Call(mixed_7a, x, nameof(mixed_7a));
        x = graph.Call(repeat_2, x, nameof(repeat_2));
        x = graph.Call(block8, x, nameof(block8));
        x = graph.Call(conv2d_7b, x, nameof(conv2d_7b));
        x = graph.Flatten(graph.Call(global_pool, x, nameof(global_pool)));
        return graph.Call(classif, x, nameof(classif));
    }
}
