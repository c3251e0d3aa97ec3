using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// Inception-v4, <i>Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning</i>.
/// Its module tree and state-dict keys are timm's <c>inception_v4</c>: every stage lives in one
/// <c>features</c> sequence (<c>features.0</c>–<c>features.21</c>), the classifier is <c>last_linear</c>.
/// </summary>
/// <remarks>
/// With <see cref="ModelConfig.SmallInput"/>, <c>features.0</c> has stride 1 and, like <c>features.1</c>, padding 1;
/// in <c>features.3</c> (Mixed-3a) the max pool is an identity and the convolution has stride 1 and padding 1; the
/// last 3×3 convolutions of <c>features.4</c> (Mixed-4a) are padded; <c>features.5</c> (Mixed-5a) pads its
/// stride-2 convolution and pool. A 28-pixel image then runs the stem at 28×28, Inception-A at 14×14, Inception-B
/// at 6×6 and Inception-C at 2×2 (Reduction-A and -B stay unpadded, as in the reference).
/// </remarks>
public sealed class InceptionV4 : InceptionModel, IOnnxExportable
{
    private const int SmallMin = 13;

    private readonly Sequential features;
    private readonly AdaptiveAvgPool2d global_pool;
    private readonly Dropout head_drop;
    private nn.Module<Tensor, Tensor> last_linear;

    /// <summary>Builds the network with timm's default (PyTorch) initialisation.</summary>
    public InceptionV4(ModelConfig config) : base("InceptionV4", config)
    {
        var u = ConvUnit.BatchNorm.For(config);
        bool small = config.SmallInput;
        int pad = small ? 1 : 0;
        long c32 = u.Scaled(32), c64 = u.Scaled(64);
        var mixed3a = new Mixed3a(c64, u, small);
        var mixed4a = new Mixed4a(mixed3a.OutChannels, u, small);
        var mixed5a = new Mixed5a(mixed4a.OutChannels, u, small);
        // Shapes at the default 299 × 299 input.
        var stages = new List<nn.Module<Tensor, Tensor>>
        {
            u.Build(config.InChannels, c32, 3, stride: small ? 1 : 2, padding: pad), // 0: N x 32 x 149 x 149
            u.Build(c32, c32, 3, padding: pad),                                       // 1: N x 32 x 147 x 147
            u.Build(c32, c64, 3, padding: 1),                                         // 2: N x 64 x 147 x 147
            mixed3a,                                                                  // 3: N x 160 x 73 x 73
            mixed4a,                                                                  // 4: N x 192 x 71 x 71
            mixed5a,                                                                  // 5: N x 384 x 35 x 35
        };
        var blockA = new InceptionA(mixed5a.OutChannels, u);
        var reductionA = new ReductionA(blockA.OutChannels, 192, 224, 256, 384, u);
        var blockB = new InceptionB(reductionA.OutChannels, u);
        var reductionB = new ReductionB(blockB.OutChannels, u);
        var blockC = new InceptionC(reductionB.OutChannels, u);
        // The repeated blocks keep their width, so each repetition is built like the first.
        stages.Add(blockA);                                                         // 6-9: N x 384 x 35 x 35
        for (int i = 1; i < 4; i++) stages.Add(new InceptionA(blockA.OutChannels, u));
        stages.Add(reductionA);                                                     // 10: N x 1024 x 17 x 17 (Mixed_6a)
        stages.Add(blockB);                                                         // 11-17: N x 1024 x 17 x 17
        for (int i = 1; i < 7; i++) stages.Add(new InceptionB(blockB.OutChannels, u));
        stages.Add(reductionB);                                                     // 18: N x 1536 x 8 x 8 (Mixed_7a)
        stages.Add(blockC);                                                         // 19-21: N x 1536 x 8 x 8
        for (int i = 1; i < 3; i++) stages.Add(new InceptionC(blockC.OutChannels, u));
        long at9 = blockA.OutChannels, at17 = blockB.OutChannels, channels = blockC.OutChannels;
        NumFeatures = (int)channels;
        features = nn.Sequential([.. stages]);
        global_pool = nn.AdaptiveAvgPool2d(1);
        head_drop = nn.Dropout(config.DropRate ?? 0.0);
        last_linear = Classifier(NumFeatures, config.NumClasses);
        // The small stem does not reduce until features.5, so every later stride is 4 times smaller.
        int r = small ? 4 : 1;
        FeatureInfo =
        [
            new((int)c64, small ? 1 : 2, "features.2"), new((int)mixed3a.OutChannels, small ? 1 : 4, "features.3"),
            new((int)at9, 8 / r, "features.9"), new((int)at17, 16 / r, "features.17"), new(NumFeatures, 32 / r, "features.21"),
        ];
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int NumFeatures { get; }

    /// <inheritdoc/>
    /// <remarks>
    /// At 75 pixels Reduction-B gets a 3×3 map and the last feature map is 1×1; at 74 Reduction-B's
    /// unpadded 3×3 convolution gets a 2×2 map. With <see cref="ModelConfig.SmallInput"/> the same happens
    /// at 13 and 12 pixels.
    /// </remarks>
    public override int MinInputSize => Config.SmallInput ? SmallMin : 75;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; }

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses) => last_linear = ReplaceClassifier(nameof(last_linear), last_linear, numClasses);

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        // N x 3 x 299 x 299; the constructor lists the shape after each of the 22 stages.
        return features.call(x);
        // N x 1536 x 8 x 8
    }

    /// <inheritdoc/>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        using var scope = NewDisposeScope();
        var x = flatten(global_pool.call(features), 1);
        // N x 1536
        x = head_drop.call(x);
        if (preLogits) return x.MoveToOuterDisposeScope();
        return last_linear.call(x).MoveToOuterDisposeScope();
        // N x num_classes
    }

    /// <summary>The evaluation-mode forward pass as ONNX: dropout is left out.</summary>
    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue x)
    {
        x = graph.Call(features, x, nameof(features));
        x = graph.Flatten(graph.Call(global_pool, x, nameof(global_pool)));
        return graph.Call(last_linear, x, nameof(last_linear));
    }
}
