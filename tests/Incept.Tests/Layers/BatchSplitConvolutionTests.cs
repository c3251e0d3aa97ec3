using Incept.Layers;
using Incept.Models;
using Incept.Registry;
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

    [Fact]
    public void With_autograd_the_slices_give_the_same_output_and_gradients()
    {
        manual_seed(15);
        using var conv = nn.Conv2d(6, 8, 3L, padding: 1L);
        // Slices hold at least one image per thread: more than two slices whatever the thread count.
        int batch = (2 * get_num_threads()) + 1;
        using var input = randn(batch, 6, 9, 9).requires_grad_(true);
        using var upstream = randn(batch, 8, 9, 9);

        var (wholeOut, wholeInputGrad, wholeWeightGrad) = Gradients(conv, input, upstream, 0);
        var (slicedOut, slicedInputGrad, slicedWeightGrad) = Gradients(conv, input, upstream, 1);

        Assert.True(Close(slicedOut, wholeOut));
        Assert.True(Close(slicedInputGrad, wholeInputGrad));
        Assert.True(Close(slicedWeightGrad, wholeWeightGrad));
    }

    [Fact]
    public void A_training_step_with_sliced_convolutions_computes_the_same_gradients()
    {
        var spec = ModelRegistry.Get("googlenet");
        manual_seed(16);
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 5, SmallInput = true });
        model.train();
        int batch = (2 * get_num_threads()) + 1;
        using var input = randn(batch, 3, 32, 32);
        using var targets = arange(batch, dtype: ScalarType.Int64).remainder(5);

        Tensor[] Step(long budget)
        {
            foreach (var unit in model.ConvBnUnits()) unit.ColumnBudgetBytes = budget;
            model.zero_grad();
            manual_seed(17); // the same dropout mask both times
            using (var scope = NewDisposeScope())
                nn.functional.cross_entropy(model.call(input).Logits, targets).backward();
            return model.parameters().Select(p => p.grad!.clone()).ToArray();
        }

        // BatchNorm's running statistics move with every training step; the gradients do not depend on them.
        var whole = Step(0);
        var sliced = Step(1);
        Assert.Equal(whole.Length, sliced.Length);
        for (int i = 0; i < whole.Length; i++)
            Assert.True(Close(sliced[i], whole[i], 1e-4), $"parameter {i}: gradients differ");
        foreach (var unit in model.ConvBnUnits()) unit.ColumnBudgetBytes = null;
    }

    private static (Tensor Output, Tensor InputGrad, Tensor WeightGrad) Gradients(TorchSharp.Modules.Conv2d conv, Tensor input, Tensor upstream, long budget)
    {
        conv.zero_grad();
        input.grad?.zero_();
        var output = BatchSplitConvolution.Forward(conv, input, budget);
        Assert.True(output.requires_grad);
        output.backward([upstream]);
        return (output.detach(), input.grad!.clone(), conv.weight!.grad!.clone());
    }

    private static bool Close(Tensor actual, Tensor expected, double tolerance = 1e-5)
        => (actual - expected).abs().max().item<float>() <= tolerance * Math.Max(1e-12, expected.abs().max().item<float>());
}
