using Incept.Export;
using Incept.Layers;
using Incept.Models.InceptionV4;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV1;

/// <summary>
/// Inception-ResNet-v1 as facenet-pytorch builds it (<c>InceptionResnetV1</c>, v2.5.3): the module tree and
/// state-dict keys of that implementation, so its VGGFace2 and CASIA-WebFace checkpoints load unchanged.
/// </summary>
/// <remarks>
/// <para>The network ends in a 512-d face embedding: global average pool, dropout, <c>last_linear</c> (1792→512, no
/// bias) and <c>last_bn</c> (BatchNorm1d, eps 1e-3). With classes, <c>logits</c> (512→classes) is applied to the
/// <c>last_bn</c> output and the forward pass returns those logits, not normalised. With
/// <see cref="ModelConfig.NumClasses"/> = 0 the model has no <c>logits</c> module and returns the L2-normalised
/// embedding, like facenet-pytorch's <c>classify=False</c>. <see cref="ForwardHead"/> with <c>preLogits</c>
/// returns that normalised embedding in both cases.</para>
/// <para>The embedding stays 512-d at every <see cref="ModelConfig.Width"/>: it is the model's output, like the
/// classes; the convolutions before it scale.</para>
/// <para>With <see cref="ModelConfig.SmallInput"/>, <c>conv2d_1a</c> has stride 1 and, like <c>conv2d_2a</c> and
/// <c>conv2d_4a</c>, padding 1; <c>maxpool_3a</c> is an identity and <c>conv2d_4b</c> (3×3/2) is padded. A 28-pixel
/// image then runs the stem at 28×28, <c>repeat_1</c> at 14×14, <c>repeat_2</c> at 6×6 and <c>repeat_3</c> and
/// <c>block8</c> at 2×2 (<c>mixed_6a</c> and <c>mixed_7a</c> stay unpadded, as in the reference).</para>
/// </remarks>
public sealed class InceptionResNetV1 : InceptionModel, IOnnxExportable
{
    /// <summary>Width of the face embedding (the output of <c>last_bn</c>).</summary>
    public const int EmbeddingSize = 512;

    private const int SmallMin = 13;

    private readonly BasicConv2d conv2d_1a;
    private readonly BasicConv2d conv2d_2a;
    private readonly BasicConv2d conv2d_2b;
    private readonly nn.Module<Tensor, Tensor> maxpool_3a;
    private readonly BasicConv2d conv2d_3b;
    private readonly BasicConv2d conv2d_4a;
    private readonly BasicConv2d conv2d_4b;
    private readonly Sequential repeat_1;
    private readonly ReductionA mixed_6a;
    private readonly Sequential repeat_2;
    private readonly InceptionResNetV2.Mixed7a mixed_7a;
    private readonly Sequential repeat_3;
    private readonly Block8 block8;
    private readonly AdaptiveAvgPool2d avgpool_1a;
    private readonly Dropout dropout;
    private readonly Linear last_linear;
    private readonly BatchNorm1d last_bn;
    private Linear? logits;

    /// <summary>Builds the network. Weights keep TorchSharp's default initialisation, as the reference does.</summary>
    public InceptionResNetV1(ModelConfig config) : base("InceptionResNetV1", config)
    {
        var u = ConvUnit.BatchNorm.For(config);
        bool small = config.SmallInput;
        int pad = small ? 1 : 0;
        long c32 = u.Scaled(32), c64 = u.Scaled(64), c80 = u.Scaled(80), c192 = u.Scaled(192), c256 = u.Scaled(256);
        conv2d_1a = u.Build(config.InChannels, c32, 3, stride: small ? 1 : 2, padding: pad);
        conv2d_2a = u.Build(c32, c32, 3, padding: pad);
        conv2d_2b = u.Build(c32, c64, 3, padding: 1);
        maxpool_3a = small ? nn.Identity() : nn.MaxPool2d(3, stride: 2);
        conv2d_3b = u.Build(c64, c80, 1);
        conv2d_4a = u.Build(c80, c192, 3, padding: pad);
        conv2d_4b = u.Build(c192, c256, 3, stride: 2, padding: pad);
        repeat_1 = nn.Sequential(Enumerable.Range(0, 5).Select(_ => (nn.Module<Tensor, Tensor>)new Block35(c256, 0.17, u)).ToArray());
        mixed_6a = new ReductionA(c256, 192, 192, 256, 384, u);
        long c896 = mixed_6a.OutChannels;
        repeat_2 = nn.Sequential(Enumerable.Range(0, 10).Select(_ => (nn.Module<Tensor, Tensor>)new Block17(c896, 0.10, u)).ToArray());
        mixed_7a = new InceptionResNetV2.Mixed7a(c896, u, branch1Out: 256, branch2Mid: 256, branch2Out: 256);
        long final = mixed_7a.OutChannels;
        repeat_3 = nn.Sequential(Enumerable.Range(0, 5).Select(_ => (nn.Module<Tensor, Tensor>)new Block8(final, 0.20, u)).ToArray());
        block8 = new Block8(final, 1.0, u, noReLU: true);
        avgpool_1a = nn.AdaptiveAvgPool2d(1);
        dropout = nn.Dropout(config.DropRate ?? 0.6);
        last_linear = nn.Linear(final, EmbeddingSize, hasBias: false);
        last_bn = nn.BatchNorm1d(EmbeddingSize, eps: 1e-3, momentum: 0.1);
        if (config.NumClasses > 0) logits = nn.Linear(EmbeddingSize, config.NumClasses);
        // The small stem does not reduce until conv2d_4b, so every later stride is 4 times smaller.
        int r = small ? 4 : 1;
        FeatureInfo =
        [
            new((int)c64, small ? 1 : 2, "conv2d_2b"), new((int)c192, small ? 1 : 4, "conv2d_4a"),
            new((int)c256, 8 / r, "repeat_1"), new((int)c896, 16 / r, "repeat_2"), new((int)final, 32 / r, "block8"),
        ];
        RegisterComponents();
    }

    /// <summary>The embedding width: <c>logits</c> reads the 512-d output of <c>last_bn</c>.</summary>
    public override int NumFeatures => EmbeddingSize;

    /// <summary>
    /// 75: the last 3×3/2 reductions (<c>mixed_7a</c>) need a 3×3 map; with <see cref="ModelConfig.SmallInput"/>
    /// they get it from 13 pixels.
    /// </summary>
    public override int MinInputSize => Config.SmallInput ? SmallMin : 75;

    /// <inheritdoc/>
    public override IReadOnlyList<FeatureInfo> FeatureInfo { get; }

    /// <summary>
    /// Replaces <c>logits</c> by a fresh 512→<paramref name="numClasses"/> layer; 0 removes it, so that the model
    /// returns the normalised embedding.
    /// </summary>
    public override void ResetClassifier(int numClasses)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numClasses);
        bool registered = logits is not null;
        logits?.Dispose();
        logits = numClasses > 0 ? nn.Linear(EmbeddingSize, numClasses) : null;
        if (logits is not null && registered) ReplaceChild(nameof(logits), logits);
        else if (logits is not null) register_module(nameof(logits), logits);
        else if (registered) _internal_submodules.Remove(nameof(logits));
        NumClasses = numClasses;
    }

    /// <inheritdoc/>
    protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux)
    {
        using var scope = NewDisposeScope();
        // N x 3 x 160 x 160
        x = Advance(x, conv2d_1a.call(x), scope);
        // N x 32 x 79 x 79
        x = Advance(x, conv2d_2a.call(x), scope);
        // N x 32 x 77 x 77
        x = Advance(x, conv2d_2b.call(x), scope);
        // N x 64 x 77 x 77
        x = Advance(x, Pooling.Call(maxpool_3a, x), scope);
        // N x 64 x 38 x 38
        x = Advance(x, conv2d_3b.call(x), scope);
        // N x 80 x 38 x 38
        x = Advance(x, conv2d_4a.call(x), scope);
        // N x 192 x 36 x 36
        x = Advance(x, conv2d_4b.call(x), scope);
        // N x 256 x 17 x 17
        x = Advance(x, repeat_1.call(x), scope);
        // N x 256 x 17 x 17
        x = Advance(x, mixed_6a.call(x), scope);
        // N x 896 x 8 x 8
        x = Advance(x, repeat_2.call(x), scope);
        // N x 896 x 8 x 8
        x = Advance(x, mixed_7a.call(x), scope);
        // N x 1792 x 3 x 3
        x = Advance(x, repeat_3.call(x), scope);
        // N x 1792 x 3 x 3
        x = Advance(x, block8.call(x), scope);
        // N x 1792 x 3 x 3
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Pools, applies dropout, <c>last_linear</c> and <c>last_bn</c>; then returns the logits of <c>logits</c>, or,
    /// with <paramref name="preLogits"/> or without classes, the L2-normalised 512-d face embedding.
    /// </summary>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        using var scope = NewDisposeScope();
        var x = dropout.call(avgpool_1a.call(features));
        // N x 1792 x 1 x 1
        x = last_linear.call(flatten(x, 1));
        // N x 512
        x = BatchNormForward.Apply(last_bn, x);
        // N x 512
        if (preLogits || logits is null) return nn.functional.normalize(x, p: 2, dim: 1).MoveToOuterDisposeScope();
        return logits.call(x).MoveToOuterDisposeScope();
        // N x num_classes
    }

    /// <summary>
    /// The evaluation-mode forward pass as ONNX: dropout is left out; without a classifier the output is the
    /// L2-normalised embedding.
    /// </summary>
    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue x)
    {
        x = graph.Call(conv2d_1a, x, nameof(conv2d_1a));
        x = graph.Call(conv2d_2a, x, nameof(conv2d_2a));
        x = graph.Call(conv2d_2b, x, nameof(conv2d_2b));
        x = graph.Call(maxpool_3a, x, nameof(maxpool_3a));
        x = graph.Call(conv2d_3b, x, nameof(conv2d_3b));
        x = graph.Call(conv2d_4a, x, nameof(conv2d_4a));
        x = graph.Call(conv2d_4b, x, nameof(conv2d_4b));
        x = graph.Call(repeat_1, x, nameof(repeat_1));
        x = graph.Call(mixed_6a, x, nameof(mixed_6a));
        x = graph.Call(repeat_2, x, nameof(repeat_2));
        x = graph.Call(mixed_7a, x, nameof(mixed_7a));
        x = graph.Call(repeat_3, x, nameof(repeat_3));
        x = graph.Call(block8, x, nameof(block8));
        x = graph.Flatten(graph.Call(avgpool_1a, x, nameof(avgpool_1a)));
        x = graph.Linear(last_linear, last_bn, x, nameof(last_linear), nameof(last_bn));
        return logits is null ? graph.L2Normalize(x) : graph.Call(logits, x, nameof(logits));
    }
}
