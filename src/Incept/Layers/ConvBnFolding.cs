using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// A convolution followed by a BatchNorm that can be merged for inference: after <see cref="FoldBatchNorm"/> the
/// convolution alone (with a bias) computes what convolution → BatchNorm computed in evaluation mode.
/// </summary>
internal interface IConvBnUnit
{
    /// <summary>The convolution.</summary>
    Conv2d Conv { get; }

    /// <summary>The BatchNorm, or null where the unit has none.</summary>
    BatchNorm2d? Bn { get; }

    /// <summary>Whether the unit has been prepared for inference by <see cref="FoldBatchNorm"/>.</summary>
    bool BatchNormFolded { get; }

    /// <summary>
    /// Prepares the unit for inference only: folds the BatchNorm, if any, into the convolution (see
    /// <see cref="ConvBnFolding.Fold"/>) and applies the ReLU in place from then on. The unit can no longer be trained.
    /// </summary>
    void FoldBatchNorm();

    /// <summary>
    /// Once folded: the largest im2col buffer, in bytes, that the unit's convolution may ask libtorch for at once; a
    /// batch that would need more is convolved in slices (see <see cref="BatchSplitConvolution"/>). 0, the default, never
    /// splits. Training and unfolded evaluation always convolve the whole batch, so that hooks on the convolution see
    /// it whole.
    /// </summary>
    long ColumnBudgetBytes { get; set; }

    /// <summary>
    /// Once folded, for inference copies in float32 only: where <see cref="WinogradConvolution.Takes"/> the convolution,
    /// transforms its weights for Winograd's method, frees the convolution's own weight and computes the unit that way
    /// from then on (the convolution module keeps an empty weight). Returns whether it did.
    /// </summary>
    bool PrepareWinograd();

    /// <summary>Whether the unit computes its convolution by Winograd's method (see <see cref="PrepareWinograd"/>).</summary>
    bool WinogradPrepared { get; }

    /// <summary>
    /// Once folded, for inference copies in float32 only, where Winograd's method has not taken the convolution: where
    /// <see cref="PanelProduct.TakesConvolution"/> it, lays its weights out in panels, frees the convolution's own
    /// weight and computes the unit as a <see cref="PanelProduct"/> from then on. Returns whether it did.
    /// </summary>
    bool PreparePanels();

    /// <summary>Whether the unit computes its convolution as a panel product (see <see cref="PreparePanels"/>).</summary>
    bool PanelsPrepared { get; }

    /// <summary>
    /// Whether, in training mode, the unit computes its convolution by Winograd's method wherever
    /// <see cref="WinogradTraining.Applies"/> (forward pass and both gradients; set for a whole model by
    /// <see cref="WinogradTraining.Use"/>). Off by default; independent of the inference preparation above.
    /// </summary>
    bool TrainsWithWinograd { get; set; }
}

/// <summary>Merges an evaluation-mode BatchNorm into the convolution before it.</summary>
internal static class ConvBnFolding
{
    /// <summary>
    /// Rewrites <paramref name="conv"/> so that it computes <c>bn(conv(x))</c> of evaluation mode: with
    /// s = γ / √(running_var + ε), the weight becomes W·s per output channel and the bias β + (b − running_mean)·s
    /// (b = 0 for a convolution without bias, which gets one). The arithmetic is done in float64 and rounded once.
    /// The BatchNorm is left as it was; its owner must stop applying it.
    /// </summary>
    public static void Fold(Conv2d conv, BatchNorm2d bn)
    {
        ArgumentNullException.ThrowIfNull(conv);
        ArgumentNullException.ThrowIfNull(bn);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var weight = conv.weight!;
        var (foldedWeight, foldedBias) = Folded(weight, conv.bias, bn);
        weight.copy_(foldedWeight);
        if (conv.bias is { } existing) existing.copy_(foldedBias);
        else conv.bias = new Parameter(foldedBias.DetachFromDisposeScope(), requires_grad: false);
    }

    /// <summary>
    /// The weight and bias of a convolution or linear layer (output channels first) with the evaluation-mode
    /// <paramref name="bn"/> that follows it merged in: W·s and β + (b − running_mean)·s with
    /// s = γ / √(running_var + ε), computed in float64 and rounded once to the weight's type. The inputs are unchanged.
    /// </summary>
    public static (Tensor Weight, Tensor Bias) Folded(Tensor weight, Tensor? bias, BatchNorm bn)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(bn);
        if (bn.running_mean is null || bn.running_var is null)
            throw new InvalidOperationException("A BatchNorm without running statistics cannot be folded into the layer before it.");
        var dtype = weight.dtype;
        long outChannels = weight.shape[0];
        var mean = bn.running_mean.detach().to_type(ScalarType.Float64);
        var gamma = bn.weight?.detach().to_type(ScalarType.Float64) ?? ones(outChannels, ScalarType.Float64, weight.device);
        var beta = bn.bias?.detach().to_type(ScalarType.Float64) ?? zeros(outChannels, ScalarType.Float64, weight.device);
        using var eps = bn.eps.ToScalar();
        var scale = gamma / bn.running_var.detach().to_type(ScalarType.Float64).add(eps, Runtime.Scalars.One).sqrt();
        var shape = new long[weight.dim()];
        Array.Fill(shape, 1L);
        shape[0] = outChannels;
        var foldedWeight = weight.detach().to_type(ScalarType.Float64) * scale.reshape(shape);
        var shift = bias is null ? -mean : bias.detach().to_type(ScalarType.Float64) - mean;
        return (foldedWeight.to_type(dtype), beta.add(shift * scale, Runtime.Scalars.One).to_type(dtype));
    }
}
