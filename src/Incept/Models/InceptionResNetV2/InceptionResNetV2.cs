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
public sealed class InceptionResNetV2 : InceptionModel
{
    private const int Width = 1536;

    private readonly BasicConv2d conv2d_1a;
    private readonly BasicConv2d conv2d_2a;
    private readonly BasicConv2d conv2d_2b;
    private readonly MaxPool2d maxpool_3a;
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
        var u = ConvUnit.BatchNorm;
        conv2d_1a = u.Build(config.InChannels, 32, 3, stride: 2);
        conv2d_2a = u.Build(32, 32, 3);
        conv2d_2b = u.Build(32, 64, 3, padding: 1);
        maxpool_3a = nn.MaxPool2d(3, stride: 2);
        conv2d_3b = u.Build(64, 80, 1);
        conv2d_4a = u.Build(80, 192, 3);
        maxpool_5a = nn.MaxPool2d(3, stride: 2);
        mixed_5b = new Mixed5b(u);
        repeat = nn.Sequential([.. Enumerable.Range(0, 10).Select(_ => new Block35(u, scaleA))]);
        mixed_6a = new ReductionA(320, 256, 256, 384, 384, u);
        repeat_1 = nn.Sequential([.. Enumerable.Range(0, 20).Select(_ => new Block17(u, scaleB))]);
        mixed_7a = new Mixed7a(u);
        repeat_2 = nn.Sequential([.. Enumerable.Range(0, 9).Select(_ => new Block8(u, scaleC))]);
        block8 = new Block8(u, 1.0, relu: false);
        conv2d_7b = u.Build(2080, Width, 1);
        global_pool = nn.AdaptiveAvgPool2d(1);
        head_drop = nn.Dropout(config.DropRate ?? 0.0);
        classif = Classifier(Width, config.NumClasses);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int NumFeatures => Width;

    /// <inheritdoc/>
    /// <remarks>
    /// At 75 pixels <c>mixed_7a</c> gets a 3×3 map and the last feature map is 1×1; at 74 its unpadded
    /// 3×3 stride-2 convolutions get a 2×2 map.
    /// </remarks>
    public override int MinInputSize => 75;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; } =
    [
        new(64, 2, "conv2d_2b"), new(192, 4, "conv2d_4a"), new(320, 8, "repeat"),
        new(1088, 16, "repeat_1"), new(1536, 32, "conv2d_7b"),
    ];

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses)
    {
        classif.Dispose();
        classif = Classifier(Width, numClasses);
        ReplaceChild(nameof(classif), classif);
        NumClasses = numClasses;
    }

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        using var scope = NewDisposeScope();
        // N x 3 x 299 x 299
        x = conv2d_1a.call(x);
        // N x 32 x 149 x 149
        x = conv2d_2a.call(x);
        // N x 32 x 147 x 147
        x = conv2d_2b.call(x);
        // N x 64 x 147 x 147
        x = maxpool_3a.call(x);
        // N x 64 x 73 x 73
        x = conv2d_3b.call(x);
        // N x 80 x 73 x 73
        x = conv2d_4a.call(x);
        // N x 192 x 71 x 71
        x = maxpool_5a.call(x);
        // N x 192 x 35 x 35
        x = mixed_5b.call(x);
        // N x 320 x 35 x 35
        x = repeat.call(x);
        // N x 320 x 35 x 35
        x = mixed_6a.call(x);
        // N x 1088 x 17 x 17
        x = repeat_1.call(x);
        // N x 1088 x 17 x 17
        x = mixed_7a.call(x);
        // N x 2080 x 8 x 8
        x = repeat_2.call(x);
        // N x 2080 x 8 x 8
        x = block8.call(x);
        // N x 2080 x 8 x 8
        x = conv2d_7b.call(x);
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
}
