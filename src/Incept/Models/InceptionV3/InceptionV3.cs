using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV3;

/// <summary>
/// Inception-v3, <i>Rethinking the Inception Architecture for Computer Vision</i>, with the module tree and
/// state-dict keys of torchvision's (and timm's) <c>inception_v3</c>, optional <c>AuxLogits</c> head.
/// </summary>
public sealed class InceptionV3 : InceptionModel
{
    private readonly BasicConv2d Conv2d_1a_3x3;
    private readonly BasicConv2d Conv2d_2a_3x3;
    private readonly BasicConv2d Conv2d_2b_3x3;
    private readonly MaxPool2d maxpool1;
    private readonly BasicConv2d Conv2d_3b_1x1;
    private readonly BasicConv2d Conv2d_4a_3x3;
    private readonly MaxPool2d maxpool2;
    private readonly InceptionA Mixed_5b;
    private readonly InceptionA Mixed_5c;
    private readonly InceptionA Mixed_5d;
    private readonly InceptionB Mixed_6a;
    private readonly InceptionC Mixed_6b;
    private readonly InceptionC Mixed_6c;
    private readonly InceptionC Mixed_6d;
    private readonly InceptionC Mixed_6e;
    private readonly InceptionAux? AuxLogits;
    private readonly InceptionD Mixed_7a;
    private readonly InceptionE Mixed_7b;
    private readonly InceptionE Mixed_7c;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> fc;

    /// <summary>Builds the network (reference dropout 0.5). Weights are initialised by the model factory.</summary>
    public InceptionV3(ModelConfig config) : base("InceptionV3", config)
    {
        var u = ConvUnit.BatchNorm;
        Conv2d_1a_3x3 = u.Build(config.InChannels, 32, 3, stride: 2);
        Conv2d_2a_3x3 = u.Build(32, 32, 3);
        Conv2d_2b_3x3 = u.Build(32, 64, 3, padding: 1);
        maxpool1 = nn.MaxPool2d(3, stride: 2);
        Conv2d_3b_1x1 = u.Build(64, 80, 1);
        Conv2d_4a_3x3 = u.Build(80, 192, 3);
        maxpool2 = nn.MaxPool2d(3, stride: 2);
        Mixed_5b = new InceptionA(192, 32, u);
        Mixed_5c = new InceptionA(256, 64, u);
        Mixed_5d = new InceptionA(288, 64, u);
        Mixed_6a = new InceptionB(288, u);
        Mixed_6b = new InceptionC(768, 128, u);
        Mixed_6c = new InceptionC(768, 160, u);
        Mixed_6d = new InceptionC(768, 160, u);
        Mixed_6e = new InceptionC(768, 192, u);
        if (config.AuxLogits) AuxLogits = new InceptionAux(768, config.NumClasses, u);
        Mixed_7a = new InceptionD(768, u);
        Mixed_7b = new InceptionE(1280, u);
        Mixed_7c = new InceptionE(2048, u);
        avgpool = nn.AdaptiveAvgPool2d(1);
        dropout = nn.Dropout(config.DropRate ?? 0.5);
        fc = Classifier(2048, config.NumClasses);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int NumFeatures => 2048;

    /// <inheritdoc/>
    public override int MinInputSize => 75;

    /// <inheritdoc/>
    public override int MinAuxInputSize => 299;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; } =
    [
        new(64, 2, "Conv2d_2b_3x3"), new(192, 4, "Conv2d_4a_3x3"), new(288, 8, "Mixed_5d"),
        new(768, 16, "Mixed_6e"), new(2048, 32, "Mixed_7c"),
    ];

    /// <summary>The auxiliary classifier's linear layer, or null without aux heads.</summary>
    internal Linear? AuxFc => AuxLogits?.Fc;

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses)
    {
        fc.Dispose();
        fc = Classifier(2048, numClasses);
        ReplaceChild(nameof(fc), fc);
        NumClasses = numClasses;
    }

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        using var scope = NewDisposeScope();
        // N x 3 x 299 x 299
        x = Conv2d_1a_3x3.call(x);
        // N x 32 x 149 x 149
        x = Conv2d_2a_3x3.call(x);
        // N x 32 x 147 x 147
        x = Conv2d_2b_3x3.call(x);
        // N x 64 x 147 x 147
        x = maxpool1.call(x);
        // N x 64 x 73 x 73
        x = Conv2d_3b_1x1.call(x);
        // N x 80 x 73 x 73
        x = Conv2d_4a_3x3.call(x);
        // N x 192 x 71 x 71
        x = maxpool2.call(x);
        // N x 192 x 35 x 35
        x = Mixed_5b.call(x);
        // N x 256 x 35 x 35
        x = Mixed_5c.call(x);
        // N x 288 x 35 x 35
        x = Mixed_5d.call(x);
        // N x 288 x 35 x 35
        x = Mixed_6a.call(x);
        // N x 768 x 17 x 17
        x = Mixed_6b.call(x);
        x = Mixed_6c.call(x);
        x = Mixed_6d.call(x);
        x = Mixed_6e.call(x);
        // N x 768 x 17 x 17
        if (aux is not null && AuxLogits is not null) aux.Add(new AuxOutput(nameof(AuxLogits), AuxLogits.call(x).MoveToOuterDisposeScope()));
        x = Mixed_7a.call(x);
        // N x 1280 x 8 x 8
        x = Mixed_7b.call(x);
        // N x 2048 x 8 x 8
        x = Mixed_7c.call(x);
        // N x 2048 x 8 x 8
        return x.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        using var scope = NewDisposeScope();
        var x = flatten(avgpool.call(features), 1);
        // N x 2048
        if (preLogits) return x.MoveToOuterDisposeScope();
        x = dropout.call(x);
        return fc.call(x).MoveToOuterDisposeScope();
    }
}
