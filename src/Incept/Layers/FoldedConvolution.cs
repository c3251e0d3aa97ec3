using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// The convolution of a conv unit whose BatchNorm is folded in (the fast engine's inference copies): chooses how
/// libtorch is asked to compute it.
/// </summary>
internal static class FoldedConvolution
{
    /// <summary>
    /// <paramref name="conv"/> applied to <paramref name="input"/>: an image stem or a small grid as matrix products
    /// over several images (<see cref="ProductConvolution"/>), any other in slices of the batch where libtorch's im2col
    /// buffer would pass <paramref name="budgetBytes"/> (<see cref="BatchSplitConvolution"/>).
    /// </summary>
    public static Tensor Forward(Conv2d conv, Tensor input, long budgetBytes)
        => ProductConvolution.Applies(conv, input)
            ? ProductConvolution.Forward(conv, input, budgetBytes)
            : BatchSplitConvolution.Forward(conv, input, budgetBytes);
}
