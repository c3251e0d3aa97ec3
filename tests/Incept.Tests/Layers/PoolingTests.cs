using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>Inference pooling of channels-last batches gives libtorch's values, shapes and layout.</summary>
public class PoolingTests
{
    // Channel counts with and without a partial block of 16; odd grids; strides 1 to 3; floor and ceiling mode.
    public static TheoryData<long, long, long, long, long, long, bool> Cases => new()
    {
        { 2, 32, 9, 9, 3, 1, false },
        { 2, 32, 9, 9, 3, 2, true },
        { 1, 21, 8, 7, 3, 2, false },
        { 3, 48, 7, 7, 3, 2, true },
        { 2, 64, 10, 11, 2, 2, true },
        { 1, 16, 13, 13, 5, 3, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Max_pooling_gives_libtorchs_values_and_shape_without_and_with_padding(long n, long c, long h, long w, long kernel, long stride, bool ceil)
    {
        manual_seed(11);
        using var raw = randn(n, c, h, w);
        using var input = MemoryFormat.ToChannelsLast(raw);
        foreach (long pad in new long[] { 0, kernel / 2 })
        {
            using var scope = NewDisposeScope();
            long before = Pooling.FastCount;
            var actual = Pooling.Max(input, [kernel], [stride], [pad], ceil);
            Assert.Equal(before + Taken, Pooling.FastCount);
            AssertLibtorchs(nn.functional.max_pool2d(raw, [kernel], [stride], [pad], ceil_mode: ceil), actual, $"max pooling with padding {pad}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Average_pooling_gives_libtorchs_values_with_and_without_the_padding_counted(long n, long c, long h, long w, long kernel, long stride, bool ceil)
    {
        manual_seed(12);
        using var raw = randn(n, c, h, w);
        using var input = MemoryFormat.ToChannelsLast(raw);
        foreach (bool countPadding in new[] { true, false })
        {
            using var scope = NewDisposeScope();
            long pad = kernel / 2;
            var actual = Pooling.Average(input, [kernel], [stride], [pad], ceil, countPadding);
            // The same sum in the same order, then the same division: libtorch's values exactly.
            AssertLibtorchs(nn.functional.avg_pool2d(raw, [kernel], [stride], [pad], ceil_mode: ceil, count_include_pad: countPadding), actual, $"average pooling with count_include_pad {countPadding}");
        }
    }

    [Fact]
    public void A_NaN_in_a_window_gives_NaN_as_in_libtorch()
    {
        using var raw = zeros(1, 32, 4, 4);
        raw[0, 3, 1, 1] = float.NaN;
        raw[0, 20, 2, 2] = float.NaN;
        using var input = MemoryFormat.ToChannelsLast(raw);
        using var actual = Pooling.Max(input, [2], [2], [0]);
        using var expected = nn.functional.max_pool2d(raw, [2], [2]);
        Assert.True(expected.isnan().eq(actual.isnan()).all().item<bool>());
        Assert.Equal(2, actual.isnan().sum().item<long>());
    }

    [Fact]
    public void Recorded_NCHW_double_and_hooked_inputs_go_to_libtorch()
    {
        using var raw = randn(2, 16, 6, 6);
        using var channelsLast = MemoryFormat.ToChannelsLast(raw);
        using var recorded = channelsLast.detach().requires_grad_();
        using var doubles = channelsLast.to(ScalarType.Float64);
        Assert.Equal(WideVectors.Fast, Pooling.Applies(channelsLast));
        Assert.False(Pooling.Applies(raw), "NCHW input");
        Assert.False(Pooling.Applies(recorded), "a gradient to record");
        Assert.False(Pooling.Applies(doubles), "float64");
        using (no_grad()) Assert.Equal(WideVectors.Fast, Pooling.Applies(recorded));

        // A pool that needs a gradient still gets one: from libtorch for the NCHW layout, recorded here for channels-last.
        using var recordedNchw = raw.detach().requires_grad_();
        using (var scope = NewDisposeScope())
        {
            long recordedBefore = Pooling.RecordedCount;
            Pooling.Max(recordedNchw, [3], [2], [1]).sum().backward();
            Assert.NotNull(recordedNchw.grad);
            Assert.Equal(recordedBefore, Pooling.RecordedCount);
            Pooling.Max(recorded, [3], [2], [1]).sum().backward();
            Assert.NotNull(recorded.grad);
            Assert.Equal(recordedBefore + Taken, Pooling.RecordedCount);
        }

        // A hook on the module keeps the module's call, which runs it.
        using var pool = nn.MaxPool2d(3, stride: 1, padding: 1);
        int calls = 0;
        var hook = pool.register_forward_hook((_, _, y) => { calls++; return y; });
        long before = Pooling.FastCount;
        using (var scope = NewDisposeScope()) Pooling.Call(pool, channelsLast);
        Assert.Equal(1, calls);
        Assert.Equal(before, Pooling.FastCount);
        hook.remove();
    }

    [Fact]
    public void A_sequence_of_a_pool_and_a_projection_runs_module_by_module_with_the_same_output()
    {
        manual_seed(13);
        using var sequence = nn.Sequential(nn.AvgPool2d(3, stride: 1, padding: 1, count_include_pad: false), nn.Conv2d(16, 8, 1L));
        MemoryFormat.ToChannelsLast(sequence);
        sequence.eval();
        using var raw = randn(2, 16, 5, 5);
        using var input = MemoryFormat.ToChannelsLast(raw);
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        long before = Pooling.FastCount;
        var actual = Pooling.Call(sequence, input);
        Assert.Equal(before + Taken, Pooling.FastCount);
        var expected = sequence.call(input);
        double error = (expected - actual).abs().max().item<float>();
        Assert.True(error <= 1e-5, $"the sequence's output is off by {error}");
    }

    [Theory]
    [InlineData(112, 3, 2, 0, true, 56)]
    [InlineData(147, 3, 2, 0, false, 73)]
    [InlineData(14, 2, 2, 0, true, 7)]
    [InlineData(7, 3, 2, 1, true, 4)]
    [InlineData(6, 3, 2, 1, true, 4)]
    [InlineData(6, 3, 2, 0, true, 3)]
    [InlineData(5, 2, 2, 1, true, 3)]
    [InlineData(5, 5, 3, 0, false, 1)]
    public void The_output_size_follows_libtorchs_rule(long size, long kernel, long stride, long pad, bool ceil, long expected)
    {
        Assert.Equal(expected, Pooling.Window.OutputSize(size, kernel, stride, pad, ceil));
        using var input = zeros(1, 1, size, size);
        using var pooled = nn.functional.max_pool2d(input, [kernel], [stride], [pad], ceil_mode: ceil);
        Assert.Equal(expected, pooled.shape[2]);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Recorded_max_pooling_gives_libtorchs_output_and_input_gradient_with_ties(long n, long c, long h, long w, long kernel, long stride, bool ceil)
    {
        manual_seed(14);
        // Values from a few integers, so that most windows hold their maximum twice or more: the gradient must go to the
        // same one of them as libtorch's (the first in row-major order).
        using var raw = randint(-3, 4, [n, c, h, w]).to(ScalarType.Float32);
        foreach (long pad in new long[] { 0, kernel / 2 })
        {
            using var scope = NewDisposeScope();
            var plain = raw.detach().requires_grad_();
            var expected = nn.functional.max_pool2d(plain, [kernel], [stride], [pad], ceil_mode: ceil);
            var upstream = randn(expected.shape);
            expected.backward([upstream]);

            var input = MemoryFormat.ToChannelsLast(raw).detach().requires_grad_();
            long before = Pooling.RecordedCount;
            var actual = Pooling.Max(input, [kernel], [stride], [pad], ceil);
            Assert.Equal(before + Taken, Pooling.RecordedCount);
            AssertLibtorchs(expected, actual, $"recorded max pooling with padding {pad}");
            // The output gradient in either layout; overlapping windows add in the same order as libtorch's.
            actual.backward([pad == 0 ? MemoryFormat.ToChannelsLast(upstream) : upstream]);
            AssertLibtorchs(plain.grad!, input.grad!, $"input gradient with padding {pad}");
        }
    }

    [Fact]
    public void Recorded_max_pooling_takes_a_NaN_where_libtorch_does_and_keeps_a_byte_per_output()
    {
        using var raw = randn(1, 32, 5, 5);
        raw[0, 3, 1, 1] = float.NaN;
        raw[0, 20, 2, 3] = float.NaN;
        raw[0, 31, 0, 0] = float.NegativeInfinity;
        using var scope = NewDisposeScope();
        var plain = raw.detach().requires_grad_();
        var expected = nn.functional.max_pool2d(plain, [3], [2], [1]);
        expected.backward([ones_like(expected)]);
        var input = MemoryFormat.ToChannelsLast(raw).detach().requires_grad_();
        var actual = Pooling.Max(input, [3], [2], [1]);
        actual.backward([ones_like(actual)]);
        Assert.True(expected.isnan().eq(actual.isnan()).all().item<bool>());
        Assert.True(plain.grad!.eq(input.grad!).all().item<bool>(), "the gradient went elsewhere than libtorch's");
    }

    private static void AssertLibtorchs(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        Assert.True(MemoryFormat.IsChannelsLast(actual), $"{what}: the output is not channels-last");
        double error = (expected - actual).abs().max().item<float>();
        Assert.True(expected.eq(actual).all().item<bool>(), $"{what}: off libtorch's values by up to {error}");
    }

    // Without 512-bit vectors everything is pooled by libtorch; the values are checked either way.
    private static long Taken => WideVectors.Fast ? 1 : 0;
}
