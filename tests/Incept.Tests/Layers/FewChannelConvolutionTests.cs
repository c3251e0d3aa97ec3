using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>An image-stem convolution as one matrix product over the input's windows gives libtorch's output.</summary>
public class FewChannelConvolutionTests
{
    public static TheoryData<long, long, long, long, long, long, long, long, bool> Shapes => new()
    {
        // in, out, kh, kw, sh, sw, ph, pw, bias
        { 3, 16, 7, 7, 2, 2, 3, 3, true },   // googlenet's and BN-Inception's stem
        { 3, 8, 3, 3, 2, 2, 0, 0, false },   // inception_v3's stem (no bias before folding)
        { 1, 5, 5, 3, 1, 2, 2, 0, true },    // grey input, rectangular kernel, stride and padding
        { 4, 6, 2, 2, 2, 2, 1, 1, true },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Gives_the_convolutions_output_in_channels_last(long cin, long cout, long kh, long kw, long sh, long sw, long ph, long pw, bool bias)
    {
        manual_seed(21);
        using var conv = nn.Conv2d(cin, cout, (kh, kw), stride: (sh, sw), padding: (ph, pw), bias: bias);
        MemoryFormat.ToChannelsLast(conv);
        using var raw = randn(3, cin, 17, 15);
        using var input = MemoryFormat.ToChannelsLast(raw);
        using var _ = inference_mode();
        Assert.True(FewChannelConvolution.Applies(conv, input));

        using var expected = conv.call(input);
        // No budget (one product), and a one-byte budget (columns of one image at a time).
        foreach (long budget in new[] { 0L, 1L })
        {
            using var actual = FewChannelConvolution.Forward(conv, input, budget);
            Assert.Equal(expected.shape, actual.shape);
            Assert.Equal(MemoryFormat.ChannelsLastStrides(expected.shape), actual.stride());
            double error = (actual - expected).abs().max().item<float>() / expected.abs().max().item<float>();
            Assert.True(error < 1e-5, $"budget {budget}: relative error {error}");
        }
    }

    [Fact]
    public void Only_channels_last_inputs_of_few_channels_without_gradients_take_the_path()
    {
        using var stem = nn.Conv2d(3, 8, 3L);
        using var wide = nn.Conv2d(5, 8, 3L);
        using var pointwise = nn.Conv2d(3, 8, 1L);
        using var dilated = nn.Conv2d(3, 8, 3L, dilation: 2L);
        using var grouped = nn.Conv2d(4, 8, 3L, groups: 2);
        using var nchw = randn(2, 3, 9, 9);
        using var channelsLast = MemoryFormat.ToChannelsLast(nchw);
        using var fiveChannels = MemoryFormat.ToChannelsLast(randn(2, 5, 9, 9));
        using var fourChannels = MemoryFormat.ToChannelsLast(randn(2, 4, 9, 9));

        using (inference_mode())
        {
            Assert.True(FewChannelConvolution.Applies(stem, channelsLast));
            Assert.False(FewChannelConvolution.Applies(stem, nchw));
            Assert.False(FewChannelConvolution.Applies(wide, fiveChannels));
            Assert.False(FewChannelConvolution.Applies(pointwise, channelsLast));
            Assert.False(FewChannelConvolution.Applies(dilated, channelsLast));
            Assert.False(FewChannelConvolution.Applies(grouped, fourChannels));
        }

        // With autograd on, the weight needs a gradient: libtorch's own convolution.
        Assert.False(FewChannelConvolution.Applies(stem, channelsLast));
    }
}
