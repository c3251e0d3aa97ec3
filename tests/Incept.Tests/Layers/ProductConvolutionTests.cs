using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>
/// Image-stem and small-grid convolutions as matrix products over the input's windows give libtorch's output.
/// </summary>
public class ProductConvolutionTests
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
        AssertGivesLibtorchsOutput(conv, input);
    }

    public static TheoryData<long, long, long, long, long, long, long, long, long, bool> SmallGrids => new()
    {
        // in, out, kh, kw, sh, sw, ph, pw, input size, bias
        { 40, 24, 1, 1, 1, 1, 0, 0, 8, true },    // a pointwise layer on an 8×8 grid: the input is the columns
        { 24, 16, 3, 3, 1, 1, 1, 1, 7, false },   // googlenet's 7×7 stage
        { 16, 12, 1, 3, 1, 1, 0, 1, 8, true },    // inception_v3's 1×3 on 8×8
        { 12, 20, 3, 3, 2, 2, 0, 0, 17, true },   // a reduction onto an 8×8 grid
        { 18, 10, 1, 1, 2, 2, 0, 0, 15, true },   // a strided 1×1, which needs columns
    };

    [Theory]
    [MemberData(nameof(SmallGrids))]
    public void Gives_the_convolutions_output_on_small_grids(long cin, long cout, long kh, long kw, long sh, long sw, long ph, long pw, long size, bool bias)
    {
        manual_seed(22);
        using var conv = nn.Conv2d(cin, cout, (kh, kw), stride: (sh, sw), padding: (ph, pw), bias: bias);
        MemoryFormat.ToChannelsLast(conv);
        using var raw = randn(5, cin, size, size);
        using var input = MemoryFormat.ToChannelsLast(raw);
        AssertGivesLibtorchsOutput(conv, input);
    }

    /// <summary>
    /// The path applies and gives libtorch's output in channels-last layout, with no budget (one product for the batch)
    /// and with a one-byte budget (one image's columns at a time where there are columns).
    /// </summary>
    private static void AssertGivesLibtorchsOutput(TorchSharp.Modules.Conv2d conv, Tensor input)
    {
        using var _ = inference_mode();
        Assert.True(ProductConvolution.Applies(conv, input));
        using var expected = conv.call(input);
        foreach (long budget in new[] { 0L, 1L })
        {
            using var actual = ProductConvolution.Forward(conv, input, budget);
            Assert.Equal(expected.shape, actual.shape);
            Assert.Equal(MemoryFormat.ChannelsLastStrides(expected.shape), actual.stride());
            double error = (actual - expected).abs().max().item<float>() / expected.abs().max().item<float>();
            Assert.True(error < 1e-5, $"budget {budget}: relative error {error}");
        }
    }

    [Fact]
    public void Small_grids_take_the_path_only_for_more_than_one_image()
    {
        using var pointwise = nn.Conv2d(40, 24, 1L);
        using var threeByThree = nn.Conv2d(24, 16, 3L, padding: 1L);
        using var eightByEight = MemoryFormat.ToChannelsLast(randn(2, 40, 8, 8));
        using var oneImage = MemoryFormat.ToChannelsLast(randn(1, 40, 8, 8));
        using var nineByNine = MemoryFormat.ToChannelsLast(randn(2, 40, 9, 9));
        using var sevenBySeven = MemoryFormat.ToChannelsLast(randn(4, 24, 7, 7));
        using var nchw = randn(2, 40, 8, 8);

        using var _ = inference_mode();
        Assert.True(ProductConvolution.Applies(pointwise, eightByEight));
        Assert.True(ProductConvolution.Applies(threeByThree, sevenBySeven));
        Assert.False(ProductConvolution.Applies(pointwise, oneImage));
        Assert.False(ProductConvolution.Applies(pointwise, nineByNine));
        Assert.False(ProductConvolution.Applies(pointwise, nchw));
    }

    [Fact]
    public void Only_channels_last_inputs_of_few_channels_without_gradients_take_the_path()
    {
        // 12×12 inputs: outputs larger than the small grids, which take the path whatever their channels.
        using var stem = nn.Conv2d(3, 8, 3L);
        using var wide = nn.Conv2d(5, 8, 3L);
        using var pointwise = nn.Conv2d(3, 8, 1L);
        using var dilated = nn.Conv2d(3, 8, 3L, dilation: 2L);
        using var grouped = nn.Conv2d(4, 8, 3L, groups: 2);
        using var nchw = randn(2, 3, 12, 12);
        using var channelsLast = MemoryFormat.ToChannelsLast(nchw);
        using var fiveChannels = MemoryFormat.ToChannelsLast(randn(2, 5, 12, 12));
        using var fourChannels = MemoryFormat.ToChannelsLast(randn(2, 4, 12, 12));

        using (inference_mode())
        {
            Assert.True(ProductConvolution.Applies(stem, channelsLast));
            Assert.False(ProductConvolution.Applies(stem, nchw));
            Assert.False(ProductConvolution.Applies(wide, fiveChannels));
            Assert.False(ProductConvolution.Applies(pointwise, channelsLast));
            Assert.False(ProductConvolution.Applies(dilated, channelsLast));
            Assert.False(ProductConvolution.Applies(grouped, fourChannels));
        }

        // With autograd on, the weight needs a gradient: libtorch's own convolution.
        Assert.False(ProductConvolution.Applies(stem, channelsLast));
    }
}
