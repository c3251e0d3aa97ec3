using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.BNInception;

/// <summary>
/// Convolution → BatchNorm → ReLU whose two modules live on the model itself under Caffe-style flat names
/// (<c>inception_3a_3x3</c> and <c>inception_3a_3x3_bn</c>), as in Cadene's BN-Inception. The unit is not a
/// registered module: it only groups the two for the forward pass and for summaries.
/// </summary>
public sealed class FlatConvBn : nn.Module<Tensor, Tensor>, IOnnxExportable, IConvBnUnit
{
    private readonly Conv2d conv;
    private readonly BatchNorm2d? bn;
    private bool folded;
    private long columnBudget;
    private WinogradConvolution? winograd;
    private PanelProduct? panels;
    private bool trainsWithWinograd;

    /// <summary>
    /// Builds the unit and registers its convolution on <paramref name="owner"/> as <paramref name="name"/> and its
    /// BatchNorm as <paramref name="name"/><c>_bn</c>.
    /// </summary>
    public FlatConvBn(nn.Module owner, string name, long inChannels, long outChannels, long kernel, ConvUnit unit,
        long stride = 1, long padding = 0) : base(name)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(unit);
        conv = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: padding, bias: unit.ConvBias);
        owner.register_module(name, conv);
        if (unit.Norm)
        {
            bn = nn.BatchNorm2d(outChannels, eps: unit.Eps, momentum: unit.Momentum);
            owner.register_module(name + "_bn", bn);
        }

        Name = name;
    }

    /// <summary>The convolution's module name on the model, which prefixes both modules' keys.</summary>
    public string Name { get; }

    /// <summary>Channels of the output.</summary>
    public long OutChannels => conv.out_channels;

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

    /// <summary>Written under the flat names: <c>{Name}.weight</c>, <c>{Name}_bn.running_mean</c>, ….</summary>
    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
        => graph.Relu(graph.Conv(conv, bn, input, Name, Name + "_bn"), Name + "_relu");

    /// <summary>Registers nothing: the modules are registered on the model under their flat names.</summary>
    protected override void RegisterComponents() { }
}
