using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.GoogLeNet;

/// <summary>
/// GoogLeNet (Inception-v1), <i>Going Deeper with Convolutions</i>. With <see cref="GoogLeNetArch.TorchVision"/>
/// its module tree and state-dict keys are torchvision's <c>googlenet</c>; with <see cref="GoogLeNetArch.Paper"/>
/// it is the paper's network (no BatchNorm, LRN, real 5×5 convolutions).
/// </summary>
/// <remarks>
/// With <see cref="ModelConfig.SmallInput"/>, <c>conv1</c> is a 3×3 convolution with stride 1 (padding 1) and
/// <c>maxpool1</c> an identity; <c>conv2</c>, <c>conv3</c> and <c>maxpool2</c> are unchanged. A 28-pixel image
/// then runs the stem at 28×28, <c>inception3a</c>/<c>3b</c> at 14×14, <c>inception4a</c>–<c>4e</c> at 7×7 and
/// <c>inception5a</c>/<c>5b</c> at 4×4 (3×3 with the paper's 3×3 <c>maxpool4</c>), and both variants' aux
/// heads pool adaptively to 4×4.
/// </remarks>
public sealed class GoogLeNet : InceptionModel, IOnnxExportable
{
    private const int SmallMinTv = 4;
    private const int SmallMinPaper = 8;

    private readonly BasicConv2d conv1;
    private readonly nn.Module<Tensor, Tensor> maxpool1;
    private readonly LocalResponseNorm? lrn1;
    private readonly BasicConv2d conv2;
    private readonly BasicConv2d conv3;
    private readonly LocalResponseNorm? lrn2;
    private readonly MaxPool2d maxpool2;
    private readonly Inception inception3a;
    private readonly Inception inception3b;
    private readonly MaxPool2d maxpool3;
    private readonly Inception inception4a;
    private readonly Inception inception4b;
    private readonly Inception inception4c;
    private readonly Inception inception4d;
    private readonly Inception inception4e;
    private readonly MaxPool2d maxpool4;
    private readonly Inception inception5a;
    private readonly Inception inception5b;
    private readonly InceptionAux? aux1;
    private readonly InceptionAux? aux2;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> fc;

    /// <summary>Builds the network. Weights are initialised by the model factory, not here.</summary>
    public GoogLeNet(ModelConfig config, GoogLeNetArch arch) : base("GoogLeNet", config)
    {
        ArgumentNullException.ThrowIfNull(arch);
        Arch = arch;
        var u = arch.Unit.For(config);
        bool small = config.SmallInput;
        long stem = u.Scaled(64), stemOut = u.Scaled(192);
        conv1 = small
            ? u.Build(config.InChannels, stem, 3, padding: 1)
            : u.Build(config.InChannels, stem, 7, stride: 2, padding: 3);
        maxpool1 = small ? nn.Identity() : nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        conv2 = u.Build(stem, stem, 1);
        conv3 = u.Build(stem, stemOut, 3, padding: 1);
        maxpool2 = nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        if (arch.LocalResponseNorm)
        {
            lrn1 = nn.LocalResponseNorm(5, alpha: 1e-4, beta: 0.75, k: 1.0);
            lrn2 = nn.LocalResponseNorm(5, alpha: 1e-4, beta: 0.75, k: 1.0);
        }

        inception3a = new Inception(stemOut, 64, 96, 128, 16, 32, 32, arch, u);
        inception3b = new Inception(inception3a.OutChannels, 128, 128, 192, 32, 96, 64, arch, u);
        maxpool3 = nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        inception4a = new Inception(inception3b.OutChannels, 192, 96, 208, 16, 48, 64, arch, u);
        inception4b = new Inception(inception4a.OutChannels, 160, 112, 224, 24, 64, 64, arch, u);
        inception4c = new Inception(inception4b.OutChannels, 128, 128, 256, 24, 64, 64, arch, u);
        inception4d = new Inception(inception4c.OutChannels, 112, 144, 288, 32, 64, 64, arch, u);
        inception4e = new Inception(inception4d.OutChannels, 256, 160, 320, 32, 128, 128, arch, u);
        maxpool4 = nn.MaxPool2d(arch.Pool4Kernel, stride: 2, ceil_mode: true);
        inception5a = new Inception(inception4e.OutChannels, 256, 160, 320, 32, 128, 128, arch, u);
        inception5b = new Inception(inception5a.OutChannels, 384, 192, 384, 48, 128, 128, arch, u);
        if (config.AuxLogits)
        {
            aux1 = new InceptionAux(inception4a.OutChannels, config.NumClasses, arch, u, adaptivePool: small);
            aux2 = new InceptionAux(inception4d.OutChannels, config.NumClasses, arch, u, adaptivePool: small);
        }

        NumFeatures = (int)inception5b.OutChannels;
        avgpool = nn.AdaptiveAvgPool2d(1);
        dropout = nn.Dropout(config.DropRate ?? arch.DropRate);
        fc = Classifier(NumFeatures, config.NumClasses);
        // The small stem does not reduce until maxpool2, so every later stride is 4 times smaller.
        int r = small ? 4 : 1;
        FeatureInfo =
        [
            new((int)stem, small ? 1 : 2, "conv1"), new((int)stemOut, small ? 1 : 4, "conv3"),
            new((int)inception3b.OutChannels, 8 / r, "inception3b"),
            new((int)inception4e.OutChannels, 16 / r, "inception4e"), new(NumFeatures, 32 / r, "inception5b"),
        ];
        RegisterComponents();
    }

    /// <summary>The variant's architecture data.</summary>
    public GoogLeNetArch Arch { get; }

    /// <inheritdoc/>
    public override int NumFeatures { get; }

    /// <inheritdoc/>
    /// <remarks>
    /// 15 (torchvision) or 31 (the paper, whose 3×3 <c>maxpool4</c> needs a 3×3 map); with
    /// <see cref="ModelConfig.SmallInput"/> 4 or 8.
    /// </remarks>
    public override int MinInputSize => (Config.SmallInput, Arch.Pool4Kernel) switch
    {
        (false, 2) => 15,
        (false, _) => 31,
        (true, 2) => SmallMinTv,
        (true, _) => SmallMinPaper,
    };

    /// <inheritdoc/>
    public override int MinAuxInputSize => Arch.AuxPaperPool && !Config.SmallInput ? 223 : MinInputSize;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; }

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses) => fc = ReplaceClassifier(nameof(fc), fc, numClasses);

    /// <summary>Local response normalisation; libtorch has no bfloat16 kernel for it, so a bfloat16 input is normalised in float32.</summary>
    private static Tensor Normalise(LocalResponseNorm lrn, Tensor x) =>
        x.dtype == ScalarType.BFloat16 ? lrn.call(x.to(ScalarType.Float32)).to(ScalarType.BFloat16) : lrn.call(x);

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        using var scope = NewDisposeScope();
        // N x 3 x 224 x 224
        x = Advance(x, conv1.call(x), scope);
        // N x 64 x 112 x 112
        x = Advance(x, Pooling.Call(maxpool1, x), scope);
        // N x 64 x 56 x 56
        if (lrn1 is not null) x = Normalise(lrn1, x);
        x = Advance(x, conv2.call(x), scope);
        // N x 64 x 56 x 56
        x = Advance(x, conv3.call(x), scope);
        // N x 192 x 56 x 56
        if (lrn2 is not null) x = Normalise(lrn2, x);
        x = Advance(x, Pooling.Call(maxpool2, x), scope);
        // N x 192 x 28 x 28
        x = Advance(x, inception3a.call(x), scope);
        // N x 256 x 28 x 28
        x = Advance(x, inception3b.call(x), scope);
        // N x 480 x 28 x 28
        x = Advance(x, Pooling.Call(maxpool3, x), scope);
        // N x 480 x 14 x 14
        x = Advance(x, inception4a.call(x), scope);
        // N x 512 x 14 x 14
        if (aux is not null && aux1 is not null) aux.Add(new AuxOutput(nameof(aux1), aux1.call(x).MoveToOuterDisposeScope()));
        x = Advance(x, inception4b.call(x), scope);
        // N x 512 x 14 x 14
        x = Advance(x, inception4c.call(x), scope);
        // N x 512 x 14 x 14
        x = Advance(x, inception4d.call(x), scope);
        // N x 528 x 14 x 14
        if (aux is not null && aux2 is not null) aux.Add(new AuxOutput(nameof(aux2), aux2.call(x).MoveToOuterDisposeScope()));
        x = Advance(x, inception4e.call(x), scope);
        // N x 832 x 14 x 14
        x = Advance(x, Pooling.Call(maxpool4, x), scope);
        // N x 832 x 7 x 7
        x = Advance(x, inception5a.call(x), scope);
        // N x 832 x 7 x 7
        x = Advance(x, inception5b.call(x), scope);
        // N x 1024 x 7 x 7
        return x.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        using var scope = NewDisposeScope();
        var x = flatten(avgpool.call(features), 1);
        // N x 1024
        if (preLogits) return x.MoveToOuterDisposeScope();
        x = dropout.call(x);
        return fc.call(x).MoveToOuterDisposeScope();
        // N x num_classes
    }

    /// <summary>The evaluation-mode forward pass as ONNX: the aux heads and dropout are left out.</summary>
    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue x)
    {
        x = graph.Call(conv1, x, nameof(conv1));
        x = graph.Call(maxpool1, x, nameof(maxpool1));
        if (lrn1 is not null) x = graph.Call(lrn1, x, nameof(lrn1));
        x = graph.Call(conv2, x, nameof(conv2));
        x = graph.Call(conv3, x, nameof(conv3));
        if (lrn2 is not null) x = graph.Call(lrn2, x, nameof(lrn2));
        x = graph.Call(maxpool2, x, nameof(maxpool2));
        x = graph.Call(inception3a, x, nameof(inception3a));
        x = graph.Call(inception3b, x, nameof(inception3b));
        x = graph.Call(maxpool3, x, nameof(maxpool3));
        x = graph.Call(inception4a, x, nameof(inception4a));
        x = graph.Call(inception4b, x, nameof(inception4b));
        x = graph.Call(inception4c, x, nameof(inception4c));
        x = graph.Call(inception4d, x, nameof(inception4d));
        x = graph.Call(inception4e, x, nameof(inception4e));
        x = graph.Call(maxpool4, x, nameof(maxpool4));
        x = graph.Call(inception5a, x, nameof(inception5a));
        x = graph.Call(inception5b, x, nameof(inception5b));
        x = graph.Flatten(graph.Call(avgpool, x, nameof(avgpool)));
        return graph.Call(fc, x, nameof(fc));
    }
}
