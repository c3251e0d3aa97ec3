using Incept.Export;
using Incept.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// How a family builds its convolution unit: convolution, optional BatchNorm, ReLU, and how wide the
/// model's layers are. Chosen once per model and handed to every block, so that the norm and activation
/// choice and the width multiplier live in one place.
/// </summary>
/// <param name="Norm">Whether a BatchNorm follows the convolution.</param>
/// <param name="Eps">BatchNorm epsilon (1e-3 for the TensorFlow-derived references, 1e-5 for Cadene's BN-Inception).</param>
/// <param name="ConvBias">Whether the convolution has a bias.</param>
/// <param name="Momentum">BatchNorm running-statistics momentum (PyTorch convention).</param>
public sealed record ConvUnit(bool Norm = true, double Eps = 1e-3, bool ConvBias = false, double Momentum = 0.1)
{
    /// <summary>Conv without bias, BatchNorm eps 1e-3, ReLU: torchvision, timm and facenet-pytorch.</summary>
    public static ConvUnit BatchNorm { get; } = new();

    /// <summary>Conv with bias and ReLU, no normalisation: the original GoogLeNet.</summary>
    public static ConvUnit Plain { get; } = new(Norm: false, ConvBias: true);

    /// <summary>The model's width multiplier (<see cref="ModelConfig.Width"/>); 1 builds the reference widths.</summary>
    public double Width { get; init; } = 1.0;

    /// <summary>This unit with the width multiplier of <paramref name="config"/>.</summary>
    public ConvUnit For(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return this with { Width = config.Width };
    }

    /// <summary>
    /// The channels of a layer that has <paramref name="channels"/> in the reference, at this unit's width
    /// (see <see cref="ModelConfig.Scaled"/>). Blocks pass reference widths through it; input
    /// channels come from the previous layer's actual output.
    /// </summary>
    public long Scaled(long channels) => ModelConfig.ScaleChannels(channels, Width);

    /// <summary>Builds one unit with square kernel, stride and padding.</summary>
    public BasicConv2d Build(long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0)
        => new(inChannels, outChannels, (kernel, kernel), (stride, stride), (padding, padding), this);

    /// <summary>Builds one unit with rectangular kernel and padding (for 1×n and n×1 factorisations).</summary>
    public BasicConv2d Build(long inChannels, long outChannels, (long, long) kernel, (long, long) padding, long stride = 1)
        => new(inChannels, outChannels, kernel, (stride, stride), padding, this);
}

/// <summary>
/// Convolution → BatchNorm → ReLU, with the submodule names <c>conv</c> and <c>bn</c> that torchvision,
/// timm and facenet-pytorch use, so that their checkpoint keys load unchanged.
/// </summary>
public sealed class BasicConv2d : nn.Module<Tensor, Tensor>, IOnnxExportable, IConvBnUnit
{
    private readonly Conv2d conv;
    private readonly BatchNorm2d? bn;
    private bool folded;
    private long columnBudget;
    private WinogradConvolution? winograd;
    private PanelProduct? panels;
    private bool trainsWithWinograd;

    /// <summary>Builds the unit.</summary>
    public BasicConv2d(long inChannels, long outChannels, (long, long) kernel, (long, long) stride, (long, long) padding, ConvUnit unit)
        : base(nameof(BasicConv2d))
    {
        ArgumentNullException.ThrowIfNull(unit);
        conv = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: padding, bias: unit.ConvBias);
        if (unit.Norm) bn = nn.BatchNorm2d(outChannels, eps: unit.Eps, momentum: unit.Momentum);
        RegisterComponents();
    }

    /// <summary>The convolution.</summary>
    public Conv2d Conv => conv;

    /// <summary>The BatchNorm, or null where the unit has none.</summary>
    public BatchNorm2d? Bn => bn;

    /// <inheritdoc/>
    bool IConvBnUnit.BatchNormFolded => folded;

    /// <inheritdoc/>
    long IConvBnUnit.ColumnBudgetBytes
    {
        get => columnBudget;
        set => columnBudget = value;
    }

    /// <inheritdoc/>
    bool IConvBnUnit.WinogradPrepared => winograd is not null;

    /// <inheritdoc/>
    bool IConvBnUnit.TrainsWithWinograd
    {
        get => trainsWithWinograd;
        set => trainsWithWinograd = value;
    }

    /// <inheritdoc/>
    bool IConvBnUnit.PrepareWinograd() => folded && WinogradConvolution.Replace(conv, ref winograd);

    /// <inheritdoc/>
    bool IConvBnUnit.PanelsPrepared => panels is not null;

    /// <inheritdoc/>
    bool IConvBnUnit.PreparePanels() => folded && winograd is null && PanelProduct.ReplaceConvolution(conv, ref panels);

    /// <inheritdoc/>
    void IConvBnUnit.FoldBatchNorm()
    {
        if (folded) return;
        if (bn is not null) ConvBnFolding.Fold(conv, bn);
        folded = true;
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        // Folded (inference copies only).
        if (winograd is not null) return winograd.Forward(input, relu: true);
        if (panels is not null) return panels.Convolution(input, relu: true);
        if (folded) return FoldedConvolution.ForwardRelu(conv, input, columnBudget);
        using var scope = NewDisposeScope();
        var x = TrainingConvolution.Forward(conv, input, trainsWithWinograd);
        if (bn is not null) x = BatchNormForward.Apply(bn, x);
        return x.relu_().MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            winograd?.Dispose();
            panels?.Dispose();
        }

        base.Dispose(disposing);
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input) => graph.Relu(graph.Conv(conv, bn, input));
}
