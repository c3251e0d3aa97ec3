using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>Slicing an inference convolution over the batch bounds libtorch's im2col buffer and keeps the output.</summary>
public class BatchSplitConvolutionTests
{
    [Fact]
    public void The_column_size_counts_one_images_unfolded_input()
    {
        using var input = zeros(2, 32, 10, 10);
        using var padded3x3 = nn.Conv2d(32, 64, 3L, padding: 1L);
        using var strided1x1 = nn.Conv2d(32, 64, 1L, stride: 2L);
        using var plain1x1 = nn.Conv2d(32, 64, 1L);
        using var wide = nn.Conv2d(32, 8, (1L, 7L), padding: (0L, 3L));

        Assert.Equal(32L * 3 * 3 * 10 * 10 * 4, BatchSplitConvolution.ColumnBytesPerImage(padded3x3, input));
        Assert.Equal(32L * 5 * 5 * 4, BatchSplitConvolution.ColumnBytesPerImage(strided1x1, input));
        Assert.Equal(32L * 7 * 10 * 10 * 4, BatchSplitConvolution.ColumnBytesPerImage(wide, input));
        // A 1×1 convolution with stride 1 and no padding multiplies the input itself: no buffer.
        Assert.Equal(0L, BatchSplitConvolution.ColumnBytesPerImage(plain1x1, input));
    }

    [Theory]
    [InlineData(false, 1L)]
    [InlineData(true, 1L)]
    [InlineData(true, 2L * 16 * 9 * 7 * 7 * 4)]
    public void Slices_give_the_whole_batch_output_in_the_same_layout(bool channelsLast, long budget)
    {
        manual_seed(11);
        using var conv = nn.Conv2d(16, 24, 3L, stride: 2L, padding: 1L);
        using var raw = randn((2 * get_num_threads()) + 1, 16, 13, 13);
        var input = channelsLast ? MemoryFormat.ToChannelsLast(raw) : raw;
        if (channelsLast) MemoryFormat.ToChannelsLast(conv);
        using var _ = inference_mode();

        using var expected = conv.call(input);
        using var actual = BatchSplitConvolution.Forward(conv, input, budget);

        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(expected.stride(), actual.stride());
        double error = (actual - expected).abs().max().item<float>() / expected.abs().max().item<float>();
        Assert.True(error < 1e-6, $"relative error {error}");
        if (!ReferenceEquals(input, raw)) input.Dispose();
    }

    [Fact]
    public void A_batch_within_the_budget_or_no_budget_is_one_call()
    {
        manual_seed(12);
        using var conv = nn.Conv2d(4, 4, 3L, padding: 1L);
        using var input = randn(3, 4, 6, 6);
        using var _ = inference_mode();
        using var expected = conv.call(input);
        foreach (long budget in new[] { 0L, 3L * 4 * 9 * 36 * 4 })
        {
            using var actual = BatchSplitConvolution.Forward(conv, input, budget);
            Assert.True(actual.equal(expected).all().item<bool>());
        }
    }
}
