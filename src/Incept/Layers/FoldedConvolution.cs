using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// The convolution and ReLU of a conv unit whose BatchNorm is folded in (the fast engine's inference copies): chooses
/// how the convolution is computed.
/// </summary>
internal static class FoldedConvolution
{
    /// <summary>
    /// ReLU of <paramref name="conv"/> applied to <paramref name="input"/>: where <paramref name="allowWinograd"/>, a 3×3,
    /// 1×n or n×1 convolution with stride 1 by Winograd's method (<see cref="WinogradConvolution"/>, whose transformed weights
    /// <paramref name="winograd"/> keeps once made),
    /// an image stem or a small grid as matrix products over several images (<see cref="ProductConvolution"/>), any
    /// other by libtorch in slices of the batch where its im2col buffer would pass <paramref name="budgetBytes"/>
    /// (<see cref="BatchSplitConvolution"/>).
    /// </summary>
    public static Tensor ForwardRelu(Conv2d conv, Tensor input, long budgetBytes, bool allowWinograd, ref WinogradConvolution? winograd)
    {
        if (allowWinograd && WinogradConvolution.Applies(conv, input))
        {
            if (winograd is null)
            {
                var prepared = WinogradConvolution.Prepare(conv);
                if (Interlocked.CompareExchange(ref winograd, prepared, null) is not null) prepared.Dispose();
            }

            return winograd.Forward(input, relu: true);
        }

        var output = ProductConvolution.Applies(conv, input)
            ? ProductConvolution.Forward(conv, input, budgetBytes)
            : BatchSplitConvolution.Forward(conv, input, budgetBytes);
        // The output is fresh, so the ReLU can be in place.
        return output.relu_();
    }
}
