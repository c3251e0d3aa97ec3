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
public sealed class InceptionV4 : InceptionModel
{
    private const int Width = 1536;

    private readonly Sequential features;
    private readonly AdaptiveAvgPool2d global_pool;
    private readonly Dropout head_drop;
    private nn.Module<Tensor, Tensor> last_linear;

    /// <summary>Builds the network with timm's default (PyTorch) initialisation.</summary>
    public InceptionV4(ModelConfig config) : base("InceptionV4", config)
    {
        var u = ConvUnit.BatchNorm;
        // Shapes at the default 299 × 299 input.
        var stages = new List<nn.Module<Tensor, Tensor>>
        {
            u.Build(config.InChannels, 32, 3, stride: 2), // 0: N x 32 x 149 x 149
            u.Build(32, 32, 3),                           // 1: N x 32 x 147 x 147
            u.Build(32, 64, 3, padding: 1),               // 2: N x 64 x 147 x 147
            new Mixed3a(u),                               // 3: N x 160 x 73 x 73
            new Mixed4a(u),                               // 4: N x 192 x 71 x 71
            new Mixed5a(u),                               // 5: N x 384 x 35 x 35
        };
        for (int i = 0; i < 4; i++) stages.Add(new InceptionA(u)); // 6-9: N x 384 x 35 x 35
        stages.Add(new ReductionA(384, 192, 224, 256, 384, u));                            // 10: N x 1024 x 17 x 17 (Mixed_6a)
        for (int i = 0; i < 7; i++) stages.Add(new InceptionB(u)); // 11-17: N x 1024 x 17 x 17
        stages.Add(new ReductionB(u));                             // 18: N x 1536 x 8 x 8 (Mixed_7a)
        for (int i = 0; i < 3; i++) stages.Add(new InceptionC(u)); // 19-21: N x 1536 x 8 x 8
        features = nn.Sequential([.. stages]);
        global_pool = nn.AdaptiveAvgPool2d(1);
        head_drop = nn.Dropout(config.DropRate ?? 0.0);
        last_linear = Classifier(Width, config.NumClasses);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int NumFeatures => Width;

    /// <inheritdoc/>
    /// <remarks>
    /// At 75 pixels Reduction-B gets a 3×3 map and the last feature map is 1×1; at 74 Reduction-B's
    /// unpadded 3×3 convolution gets a 2×2 map.
    /// </remarks>
    public override int MinInputSize => 75;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; } =
    [
        new(64, 2, "features.2"), new(160, 4, "features.3"), new(384, 8, "features.9"),
        new(1024, 16, "features.17"), new(1536, 32, "features.21"),
    ];

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses)
    {
        last_linear.Dispose();
        last_linear = Classifier(Width, numClasses);
        ReplaceChild(nameof(last_linear), last_linear);
        NumClasses = numClasses;
    }

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
}
