using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>A training step's 1×1 convolutions as one product over the whole batch, and its image stems as products, equal libtorch's convolution.</summary>
public class TrainingConvolutionTests
{
    [Theory]
    [InlineData(24, 40, 5, 7, true)]
    [InlineData(32, 16, 17, 17, false)]
    public void A_1x1_convolution_as_one_product_gives_the_convolutions_output_and_all_three_gradients(long cin, long cout, long height, long width, bool bias)
    {
        manual_seed(5);
        using var conv = nn.Conv2d(cin, cout, 1L, bias: bias);
        MemoryFormat.ToChannelsLast(conv);
        conv.train();
        using var raw = randn(3, cin, height, width);
        using var input = MemoryFormat.ToChannelsLast(raw).requires_grad_();
        using var upstream = randn(3, cout, height, width);
        Assert.True(TrainingConvolution.Pointwise.Applies(conv, input));

        (Tensor Output, Tensor Input, Tensor Weight, Tensor? Bias) Run(bool product)
        {
            conv.zero_grad();
            input.grad = null;
            using var scope = NewDisposeScope();
            var y = product ? TrainingConvolution.Pointwise.Forward(conv, input) : conv.call(input);
            y.backward([upstream]);
            return (y.detach().MoveToOuterDisposeScope(), input.grad!.clone().MoveToOuterDisposeScope(),
                conv.weight!.grad!.clone().MoveToOuterDisposeScope(), conv.bias?.grad!.clone().MoveToOuterDisposeScope());
        }

        var expected = Run(product: false);
        var actual = Run(product: true);
        Assert.True(MemoryFormat.IsChannelsLast(actual.Output), "the output is channels-last");
        AssertClose(expected.Output, actual.Output, "output");
        AssertClose(expected.Input, actual.Input, "input gradient");
        AssertClose(expected.Weight, actual.Weight, "weight gradient");
        if (bias) AssertClose(expected.Bias!, actual.Bias!, "bias gradient");
    }

    [Fact]
    public void Only_recorded_channels_last_1x1_convolutions_without_stride_padding_groups_or_hooks_are_products()
    {
        using var plain = nn.Conv2d(16, 32, 1L);
        using var strided = nn.Conv2d(16, 32, 1L, stride: 2L);
        using var padded = nn.Conv2d(16, 32, 1L, padding: 1L);
        using var grouped = nn.Conv2d(16, 32, 1L, groups: 2L);
        using var square = nn.Conv2d(16, 32, 3L, padding: 1L);
        using var raw = randn(2, 16, 6, 6);
        using var channelsLast = MemoryFormat.ToChannelsLast(raw);
        Assert.True(TrainingConvolution.Pointwise.Applies(plain, channelsLast));
        Assert.False(TrainingConvolution.Pointwise.Applies(plain, raw), "NCHW input");
        Assert.False(TrainingConvolution.Pointwise.Applies(strided, channelsLast), "stride 2");
        Assert.False(TrainingConvolution.Pointwise.Applies(padded, channelsLast), "padding");
        Assert.False(TrainingConvolution.Pointwise.Applies(grouped, channelsLast), "groups");
        Assert.False(TrainingConvolution.Pointwise.Applies(square, channelsLast), "3×3");
        using (no_grad()) Assert.False(TrainingConvolution.Pointwise.Applies(plain, channelsLast), "nothing recorded");

        // A hook keeps the module's call, which runs it; so does evaluation mode.
        int calls = 0;
        var hook = plain.register_forward_hook((_, _, y) => { calls++; return y; });
        Assert.False(TrainingConvolution.Pointwise.Applies(plain, channelsLast));
        plain.train();
        using (var scope = NewDisposeScope()) TrainingConvolution.Forward(plain, channelsLast, winograd: true);
        Assert.Equal(1, calls);
        hook.remove();
        using (var scope = NewDisposeScope())
        {
            plain.eval();
            var evaluated = TrainingConvolution.Forward(plain, channelsLast, winograd: true);
            plain.train();
            var trained = TrainingConvolution.Forward(plain, channelsLast, winograd: true);
            AssertClose(evaluated.detach(), trained.detach(), "eval and training outputs");
        }
    }

    [Theory]
    [InlineData(3, 16, 7, 2, 3, true, 2, 38)]      // googlenet's 7×7 stem
    [InlineData(3, 8, 3, 2, 0, false, 3, 31)]      // inception_v3's 3×3 stem
    [InlineData(1, 8, 5, 1, 2, true, 2, 17)]       // a one-channel image
    [InlineData(3, 8, 7, 2, 3, false, 3, 224)]     // columns in three parts (two images, then one)
    public void An_image_stem_as_products_gives_the_convolutions_output_and_weight_gradients(long cin, long cout, long kernel, long stride, long padding, bool bias, long batch, long size)
    {
        manual_seed(6);
        using var conv = nn.Conv2d(cin, cout, kernel, stride: stride, padding: padding, bias: bias);
        MemoryFormat.ToChannelsLast(conv);
        conv.train();
        using var raw = randn(batch, cin, size, size);
        using var input = MemoryFormat.ToChannelsLast(raw);
        Assert.True(TrainingConvolution.Stem.Applies(conv, input));
        using var probe = conv.call(input);
        using var upstream = MemoryFormat.ToChannelsLast(randn(probe.shape));

        (Tensor Output, Tensor Weight, Tensor? Bias) Run(bool product)
        {
            conv.zero_grad();
            using var scope = NewDisposeScope();
            var y = product ? TrainingConvolution.Stem.Forward(conv, input) : conv.call(input);
            y.backward([upstream]);
            return (y.detach().MoveToOuterDisposeScope(), conv.weight!.grad!.clone().MoveToOuterDisposeScope(), conv.bias?.grad!.clone().MoveToOuterDisposeScope());
        }

        var expected = Run(product: false);
        var actual = Run(product: true);
        Assert.True(MemoryFormat.IsChannelsLast(actual.Output), "the output is channels-last");
        AssertClose(expected.Output, actual.Output, "output");
        AssertClose(expected.Weight, actual.Weight, "weight gradient");
        if (bias) AssertClose(expected.Bias!, actual.Bias!, "bias gradient");
        Assert.False(input.requires_grad);
    }

    [Fact]
    public void Only_stems_whose_input_needs_no_gradient_and_that_have_no_hooks_are_products()
    {
        using var stem = nn.Conv2d(3, 8, 7L, stride: 2L, padding: 3L);
        using var pointwise = nn.Conv2d(3, 8, 1L);
        using var wide = nn.Conv2d(8, 8, 3L, padding: 1L);
        using var raw = randn(2, 3, 16, 16);
        using var channelsLast = MemoryFormat.ToChannelsLast(raw);
        using var recorded = channelsLast.detach().requires_grad_();
        using var wideInput = MemoryFormat.ToChannelsLast(randn(2, 8, 16, 16));
        Assert.True(TrainingConvolution.Stem.Applies(stem, channelsLast));
        Assert.False(TrainingConvolution.Stem.Applies(stem, raw), "NCHW input");
        Assert.False(TrainingConvolution.Stem.Applies(stem, recorded), "an input that needs a gradient");
        Assert.False(TrainingConvolution.Stem.Applies(pointwise, channelsLast), "1×1");
        Assert.False(TrainingConvolution.Stem.Applies(wide, wideInput), "8 input channels");
        using (no_grad()) Assert.False(TrainingConvolution.Stem.Applies(stem, channelsLast), "nothing recorded");
        var hook = stem.register_forward_hook((_, _, y) => y);
        Assert.False(TrainingConvolution.Stem.Applies(stem, channelsLast), "a hook");
        hook.remove();
        foreach (var p in stem.parameters()) p.requires_grad_(false);
        Assert.False(TrainingConvolution.Stem.Applies(stem, channelsLast), "a frozen weight");
    }

    [Fact]
    public void An_image_stem_call_leaves_only_its_output_and_its_backward_only_the_gradients_in_the_callers_scope()
    {
        manual_seed(7);
        using var conv = nn.Conv2d(3, 8, 7L, stride: 2L, padding: 3L);
        MemoryFormat.ToChannelsLast(conv);
        using var raw = randn(2, 3, 32, 32);
        using var input = MemoryFormat.ToChannelsLast(raw);
        using var scope = NewDisposeScope();
        var upstream = MemoryFormat.ToChannelsLast(randn(2, 8, 16, 16));
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var output = TrainingConvolution.Stem.Forward(conv, input);
        Assert.Equal(before + 1, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        long beforeBackward = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        output.backward([upstream]);
        Assert.Equal(beforeBackward + 2, DisposeScopeManager.Statistics.ThreadTotalLiveCount);   // weight and bias gradients
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = expected.abs().max().item<float>();
        double error = (expected - actual).abs().max().item<float>();
        Assert.True(error <= 1e-5 * Math.Max(scale, 1), $"{what}: largest difference {error:G3} against a largest value of {scale:G3}");
    }
}
