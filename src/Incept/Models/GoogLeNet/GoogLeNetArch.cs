using Incept.Layers;

namespace Incept.Models.GoogLeNet;

/// <summary>How a GoogLeNet variant differs from the others: the data behind <c>googlenet</c> and <c>googlenet_paper</c>.</summary>
/// <param name="Unit">The convolution unit (BatchNorm for torchvision, plain conv + bias for the paper).</param>
/// <param name="Branch3Kernel">Kernel of the "5×5" branch: 3 in torchvision (a known quirk kept for its weights), 5 in the paper.</param>
/// <param name="LocalResponseNorm">Whether LRN (size 5, α 1e-4, β 0.75, k 1) follows pool1 and conv3, as in the paper.</param>
/// <param name="Pool4Kernel">Kernel of the max pool before 5a: 2 (torchvision) or 3 (paper), stride 2, ceil mode.</param>
/// <param name="DropRate">Default dropout before the classifier.</param>
/// <param name="AuxDropRate">Dropout inside the auxiliary heads.</param>
/// <param name="AuxPaperPool">Auxiliary heads pool with a 5×5/3 average pool (paper) instead of an adaptive 4×4 pool (torchvision).</param>
/// <param name="Init">The reference's weight initialisation.</param>
public sealed record GoogLeNetArch(
    ConvUnit Unit, int Branch3Kernel, bool LocalResponseNorm, int Pool4Kernel,
    double DropRate, double AuxDropRate, bool AuxPaperPool, GoogLeNetInit Init)
{
    /// <summary>
    /// Whether the 3×3 and "5×5" branches start with their 1×1 reductions (the paper's Figure 2b, true for every
    /// registered model). Without them (an ablation, Figure 2a with the pool projection kept) those convolutions read
    /// the module's full input; the module's output widths stay the same, the keys of those two branches shift.
    /// </summary>
    public bool Reductions { get; init; } = true;

    /// <summary>torchvision's <c>googlenet</c>.</summary>
    public static GoogLeNetArch TorchVision { get; } = new(ConvUnit.BatchNorm, 3, false, 2, 0.2, 0.7, false, GoogLeNetInit.TruncatedNormal);

    /// <summary>The network of <i>Going Deeper with Convolutions</i>, Table 1.</summary>
    public static GoogLeNetArch Paper { get; } = new(ConvUnit.Plain, 5, true, 3, 0.4, 0.7, true, GoogLeNetInit.XavierConstantBias);
}

/// <summary>Weight initialisation schemes of the GoogLeNet references.</summary>
public enum GoogLeNetInit
{
    /// <summary>torchvision: truncated normal (std 0.01, cut at ±2) for conv and linear weights.</summary>
    TruncatedNormal,

    /// <summary>The Caffe model of the paper: Xavier weights, biases 0.2.</summary>
    XavierConstantBias,
}
