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
public sealed class GoogLeNet : InceptionModel
{
    private readonly BasicConv2d conv1;
    private readonly MaxPool2d maxpool1;
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
        var u = arch.Unit;
        conv1 = u.Build(config.InChannels, 64, 7, stride: 2, padding: 3);
        maxpool1 = nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        conv2 = u.Build(64, 64, 1);
        conv3 = u.Build(64, 192, 3, padding: 1);
        maxpool2 = nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        if (arch.LocalResponseNorm)
        {
            lrn1 = nn.LocalResponseNorm(5, alpha: 1e-4, beta: 0.75, k: 1.0);
            lrn2 = nn.LocalResponseNorm(5, alpha: 1e-4, beta: 0.75, k: 1.0);
        }

        inception3a = new Inception(192, 64, 96, 128, 16, 32, 32, arch);
        inception3b = new Inception(256, 128, 128, 192, 32, 96, 64, arch);
        maxpool3 = nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        inception4a = new Inception(480, 192, 96, 208, 16, 48, 64, arch);
        inception4b = new Inception(512, 160, 112, 224, 24, 64, 64, arch);
        inception4c = new Inception(512, 128, 128, 256, 24, 64, 64, arch);
        inception4d = new Inception(512, 112, 144, 288, 32, 64, 64, arch);
        inception4e = new Inception(528, 256, 160, 320, 32, 128, 128, arch);
        maxpool4 = nn.MaxPool2d(arch.Pool4Kernel, stride: 2, ceil_mode: true);
        inception5a = new Inception(832, 256, 160, 320, 32, 128, 128, arch);
        inception5b = new Inception(832, 384, 192, 384, 48, 128, 128, arch);
        if (config.AuxLogits)
        {
            aux1 = new InceptionAux(512, config.NumClasses, arch);
            aux2 = new InceptionAux(528, config.NumClasses, arch);
        }

        avgpool = nn.AdaptiveAvgPool2d(1);
        dropout = nn.Dropout(config.DropRate ?? arch.DropRate);
        fc = Classifier(1024, config.NumClasses);
        RegisterComponents();
    }

    /// <summary>The variant's architecture data.</summary>
    public GoogLeNetArch Arch { get; }

    /// <inheritdoc/>
    public override int NumFeatures => 1024;

    /// <inheritdoc/>
    public override int MinInputSize => Arch.Pool4Kernel == 2 ? 15 : 31;

    /// <inheritdoc/>
    public override int MinAuxInputSize => Arch.AuxPaperPool ? 223 : MinInputSize;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; } =
    [
        new(64, 2, "conv1"), new(192, 4, "conv3"), new(480, 8, "inception3b"),
        new(832, 16, "inception4e"), new(1024, 32, "inception5b"),
    ];

    /// <inheritdoc/>
    public override void ResetClassifier(int numClasses)
    {
        fc.Dispose();
        fc = Classifier(1024, numClasses);
        ReplaceChild(nameof(fc), fc);
        NumClasses = numClasses;
    }

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        using var scope = NewDisposeScope();
        // N x 3 x 224 x 224
        x = conv1.call(x);
        // N x 64 x 112 x 112
        x = maxpool1.call(x);
        // N x 64 x 56 x 56
        if (lrn1 is not null) x = lrn1.call(x);
        x = conv2.call(x);
        // N x 64 x 56 x 56
        x = conv3.call(x);
        // N x 192 x 56 x 56
        if (lrn2 is not null) x = lrn2.call(x);
        x = maxpool2.call(x);
        // N x 192 x 28 x 28
        x = inception3a.call(x);
        // N x 256 x 28 x 28
        x = inception3b.call(x);
        // N x 480 x 28 x 28
        x = maxpool3.call(x);
        // N x 480 x 14 x 14
        x = inception4a.call(x);
        // N x 512 x 14 x 14
        if (aux is not null && aux1 is not null) aux.Add(new AuxOutput(nameof(aux1), aux1.call(x).MoveToOuterDisposeScope()));
        x = inception4b.call(x);
        // N x 512 x 14 x 14
        x = inception4c.call(x);
        // N x 512 x 14 x 14
        x = inception4d.call(x);
        // N x 528 x 14 x 14
        if (aux is not null && aux2 is not null) aux.Add(new AuxOutput(nameof(aux2), aux2.call(x).MoveToOuterDisposeScope()));
        x = inception4e.call(x);
        // N x 832 x 14 x 14
        x = maxpool4.call(x);
        // N x 832 x 7 x 7
        x = inception5a.call(x);
        // N x 832 x 7 x 7
        x = inception5b.call(x);
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
}
