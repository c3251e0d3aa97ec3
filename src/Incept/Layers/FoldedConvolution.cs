using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// The convolution and ReLU of a conv unit whose BatchNorm is folded in (the fast engine's inference copies): chooses
/// how libtorch is asked to compute the convolution. (Units whose convolution Winograd's method takes skip this: see
/// <see cref="WinogradConvolution"/>.)
/// </summary>
internal static class FoldedConvolution
{
    /// <summary>
    /// ReLU of <paramref name="conv"/> applied to <paramref name="input"/>: an image stem or a small grid as matrix
    /// products over several images (<see cref="ProductConvolution"/>), any other in slices of the batch where libtorch's
    /// im2col buffer would pass <paramref name="budgetBytes"/> (<see cref="BatchSplitConvolution"/>).
    /// </summary>
    public static Tensor ForwardRelu(Conv2d conv, Tensor input, long budgetBytes)
    {
        var output = ProductConvolution.Applies(conv, input)
            ? ProductConvolution.Forward(conv, input, budgetBytes)
            : BatchSplitConvolution.Forward(conv, input, budgetBytes);
        // The output is fresh, so the ReLU can be in place.
        return output.relu_();
    }
}
