using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV3;

/// <summary>
/// Inception-v3, <i>Rethinking the Inception Architecture for Computer Vision</i>, with the module tree and
/// state-dict keys of torchvision's (and timm's) <c>inception_v3</c>, optional <c>AuxLogits</c> head.
/// </summary>
/// <remarks>
/// With <see cref="ModelConfig.SmallInput"/>, <c>Conv2d_1a_3x3</c> has stride 1 and, like <c>Conv2d_2a_3x3</c> and
/// <c>Conv2d_4a_3x3</c>, padding 1; <c>maxpool1</c> is an identity and <c>maxpool2</c> is padded (3×3/2, padding 1).
/// A 28-pixel image then runs the stem at 28×28, <c>Mixed_5b</c>–<c>5d</c> at 14×14, <c>Mixed_6b</c>–<c>6e</c> at 6×6
/// and <c>Mixed_7b</c>/<c>7c</c> at 2×2 (the reductions <c>Mixed_6a</c> and <c>Mixed_7a</c> are unpadded, as in the
/// reference); <c>AuxLogits</c> pools adaptively to 5×5.
/// </remarks>
public sealed class InceptionV3 : InceptionModel, IOnnxExportable
{
    private const int SmallMin = 13;

    private readonly BasicConv2d Conv2d_1a_3x3;
    private readonly BasicConv2d Conv2d_2a_3x3;
    private readonly BasicConv2d Conv2d_2b_3x3;
    private readonly nn.Module<Tensor, Tensor> maxpool1;
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
        var u = ConvUnit.BatchNorm.For(config);
        bool small = config.SmallInput;
        int pad = small ? 1 : 0;
        long c32 = u.Scaled(32), c64 = u.Scaled(64), c80 = u.Scaled(80), c192 = u.Scaled(192);
        Conv2d_1a_3x3 = u.Build(config.InChannels, c32, 3, stride: small ? 1 : 2, padding: pad);
        Conv2d_2a_3x3 = u.Build(c32, c32, 3, padding: pad);
        Conv2d_2b_3x3 = u.Build(c32, c64, 3, padding: 1);
        maxpool1 = small ? nn.Identity() : nn.MaxPool2d(3, stride: 2);
        Conv2d_3b_1x1 = u.Build(c64, c80, 1);
        Conv2d_4a_3x3 = u.Build(c80, c192, 3, padding: pad);
        maxpool2 = nn.MaxPool2d(3, stride: 2, padding: pad);
        Mixed_5b = new InceptionA(c192, 32, u);
        Mixed_5c = new InceptionA(Mixed_5b.OutChannels, 64, u);
        Mixed_5d = new InceptionA(Mixed_5c.OutChannels, 64, u);
        Mixed_6a = new InceptionB(Mixed_5d.OutChannels, u);
        Mixed_6b = new InceptionC(Mixed_6a.OutChannels, 128, u);
        Mixed_6c = new InceptionC(Mixed_6b.OutChannels, 160, u);
        Mixed_6d = new InceptionC(Mixed_6c.OutChannels, 160, u);
        Mixed_6e = new InceptionC(Mixed_6d.OutChannels, 192, u);
        if (config.AuxLogits) AuxLogits = new InceptionAux(Mixed_6e.OutChannels, config.NumClasses, u, adaptivePool: small);
        Mixed_7a = new InceptionD(Mixed_6e.OutChannels, u);
        Mixed_7b = new InceptionE(Mixed_7a.OutChannels, u);
        Mixed_7c = new InceptionE(Mixed_7b.OutChannels, u);
        NumFeatures = (int)Mixed_7c.OutChannels;
        avgpool = nn.AdaptiveAvgPool2d(1);
        dropout = nn.Dropout(config.DropRate ?? 0.5);
        fc = Classifier(NumFeatures, config.NumClasses);
        // The small stem does not reduce until maxpool2, so every later stride is 4 times smaller.
        int r = small ? 4 : 1;
        FeatureInfo =
        [
            new((int)c64, small ? 1 : 2, "Conv2d_2b_3x3"), new((int)c192, small ? 1 : 4, "Conv2d_4a_3x3"),
            new((int)Mixed_5d.OutChannels, 8 / r, "Mixed_5d"), new((int)Mixed_6e.OutChannels, 16 / r, "Mixed_6e"),
            new(NumFeatures, 32 / r, "Mixed_7c"),
        ];
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int NumFeatures { get; }

    /// <inheritdoc/>
    /// <remarks>
    /// 75 with the reference stem; with <see cref="ModelConfig.SmallInput"/> 13, where <c>Mixed_5b</c> gets 7×7 and
    /// the unpadded 3×3/2 convolutions of <c>Mixed_7a</c> get 3×3.
    /// </remarks>
    public override int MinInputSize => Config.SmallInput ? SmallMin : 75;

    /// <inheritdoc/>
    public override int MinAuxInputSize => Config.SmallInput ? MinInputSize : 299;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; }

    /// <summary>The auxiliary classifier's linear layer, or null without aux heads.</summary>
    internal Linear? AuxFc => AuxLogits?.Fc;

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses) => fc = ReplaceClassifier(nameof(fc), fc, numClasses);

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        using var scope = NewDisposeScope();
        // N x 3 x 299 x 299
        x = Advance(x, Conv2d_1a_3x3.call(x), scope);
        // N x 32 x 149 x 149
        x = Advance(x, Conv2d_2a_3x3.call(x), scope);
        // N x 32 x 147 x 147
        x = Advance(x, Conv2d_2b_3x3.call(x), scope);
        // N x 64 x 147 x 147
        x = Advance(x, Pooling.Call(maxpool1, x), scope);
        // N x 64 x 73 x 73
        x = Advance(x, Conv2d_3b_1x1.call(x), scope);
        // N x 80 x 73 x 73
        x = Advance(x, Conv2d_4a_3x3.call(x), scope);
        // N x 192 x 71 x 71
        x = Advance(x, Pooling.Call(maxpool2, x), scope);
        // N x 192 x 35 x 35
        x = Advance(x, Mixed_5b.call(x), scope);
        // N x 256 x 35 x 35
        x = Advance(x, Mixed_5c.call(x), scope);
        // N x 288 x 35 x 35
        x = Advance(x, Mixed_5d.call(x), scope);
        // N x 288 x 35 x 35
        x = Advance(x, Mixed_6a.call(x), scope);
        // N x 768 x 17 x 17
        x = Advance(x, Mixed_6b.call(x), scope);
        x = Advance(x, Mixed_6c.call(x), scope);
        x = Advance(x, Mixed_6d.call(x), scope);
        x = Advance(x, Mixed_6e.call(x), scope);
        // N x 768 x 17 x 17
        if (aux is not null && AuxLogits is not null) aux.Add(new AuxOutput(nameof(AuxLogits), AuxLogits.call(x).MoveToOuterDisposeScope()));
        x = Advance(x, Mixed_7a.call(x), scope);
        // N x 1280 x 8 x 8
        x = Advance(x, Mixed_7b.call(x), scope);
        // N x 2048 x 8 x 8
        x = Advance(x, Mixed_7c.call(x), scope);
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

    /// <summary>The evaluation-mode forward pass as ONNX: the aux head and dropout are left out.</summary>
    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue x)
    {
        x = graph.Call(Conv2d_1a_3x3, x, nameof(Conv2d_1a_3x3));
        x = graph.Call(Conv2d_2a_3x3, x, nameof(Conv2d_2a_3x3));
        x = graph.Call(Conv2d_2b_3x3, x, nameof(Conv2d_2b_3x3));
        x = graph.Call(maxpool1, x, nameof(maxpool1));
        x = graph.Call(Conv2d_3b_1x1, x, nameof(Conv2d_3b_1x1));
        x = graph.Call(Conv2d_4a_3x3, x, nameof(Conv2d_4a_3x3));
        x = graph.Call(maxpool2, x, nameof(maxpool2));
        x = graph.Call(Mixed_5b, x, nameof(Mixed_5b));
        x = graph.Call(Mixed_5c, x, nameof(Mixed_5c));
        x = graph.Call(Mixed_5d, x, nameof(Mixed_5d));
        x = graph.Call(Mixed_6a, x, nameof(Mixed_6a));
        x = graph.Call(Mixed_6b, x, nameof(Mixed_6b));
        x = graph.Call(Mixed_6c, x, nameof(Mixed_6c));
        x = graph.Call(Mixed_6d, x, nameof(Mixed_6d));
        x = graph.Call(Mixed_6e, x, nameof(Mixed_6e));
        x = graph.Call(Mixed_7a, x, nameof(Mixed_7a));
        x = graph.Call(Mixed_7b, x, nameof(Mixed_7b));
        x = graph.Call(Mixed_7c, x, nameof(Mixed_7c));
        x = graph.Flatten(graph.Call(avgpool, x, nameof(avgpool)));
        return graph.Call(fc, x, nameof(fc));
    }
}
