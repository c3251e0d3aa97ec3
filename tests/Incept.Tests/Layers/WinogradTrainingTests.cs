using Incept.Layers;
using Incept.Models;
using Incept.Registry;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>Training convolutions by Winograd's method give libtorch's output and all three gradients.</summary>
public class WinogradTrainingTests
{
    public static TheoryData<long, long, long, long, long, long, long, long, bool> Shapes => new()
    {
        // in, out, height, width, kernel height, kernel width, padding height, padding width, bias
        { 16, 32, 28, 28, 3, 3, 1, 1, true },     // 4×4 tiles, with a bias
        { 32, 16, 30, 29, 3, 3, 0, 0, false },    // no padding: the input gradient needs a padding of 2
        { 16, 16, 15, 17, 3, 3, 2, 2, false },    // padding 2: the output is larger, the input gradient unpadded
        { 48, 32, 17, 19, 5, 5, 2, 2, true },     // 5×5
        { 32, 16, 13, 17, 1, 7, 0, 3, false },    // 1×7
        { 16, 32, 17, 13, 7, 1, 3, 0, true },     // 7×1
        { 16, 16, 11, 14, 1, 5, 0, 1, false },    // 1×5 padded by 1: the input gradient is padded by 3
        { 272, 256, 15, 15, 3, 3, 1, 1, false },  // more than 256 × 256 channels: 2×2 tiles
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Gives_libtorchs_output_and_gradients(long cin, long cout, long height, long width, long kh, long kw, long ph, long pw, bool bias)
    {
        if (!WideVectors.Fast) return;
        manual_seed(41);
        using var conv = nn.Conv2d(cin, cout, (kh, kw), padding: (ph, pw), bias: bias);
        MemoryFormat.ToChannelsLast(conv);
        Assert.True(WinogradTraining.Takes(conv));
        using var raw = randn(2, cin, height, width);
        using var input = MemoryFormat.ToChannelsLast(raw).requires_grad_(true);
        using var expected = conv.call(input);
        using var upstream = MemoryFormat.ToChannelsLast(randn(expected.shape));
        expected.backward([upstream]);
        using var inputGradient = input.grad!.clone();
        using var weightGradient = conv.weight!.grad!.clone();
        using var biasGradient = bias ? conv.bias!.grad!.clone() : null;
        input.grad!.zero_();
        conv.weight.grad!.zero_();
        if (bias) conv.bias!.grad!.zero_();

        long before = WinogradTraining.ForwardCount;
        using var actual = WinogradTraining.Forward(conv, input);
        Assert.True(WinogradTraining.ForwardCount > before);
        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(MemoryFormat.ChannelsLastStrides(expected.shape), actual.stride());
        actual.backward([upstream]);

        // 4×4 tiles round about ten times more than libtorch's im2col, in the outputs and in both gradients.
        AssertClose(expected, actual, 1e-4, "output");
        AssertClose(inputGradient, input.grad!, 1e-4, "input gradient");
        AssertClose(weightGradient, conv.weight.grad!, 1e-4, "weight gradient");
        Assert.Equal(MemoryFormat.ChannelsLastStrides(conv.weight.shape), conv.weight.grad!.stride());
        if (biasGradient is not null) AssertClose(biasGradient, conv.bias!.grad!, 1e-5, "bias gradient");
    }

    public static TheoryData<long, long, long, long, int, long, long, long> WeightGradientShapes => new()
    {
        // kernel height, kernel width, padding height, padding width, 3×3 tile, images, grid height, grid width
        { 3, 3, 1, 1, 4, 3, 23, 21 },   // 4×4 tiles, the last row and column of tiles partly outside the output
        { 3, 3, 0, 0, 4, 2, 30, 29 },
        { 3, 3, 2, 2, 4, 2, 15, 17 },   // padding 2: every edge tile reads zeros
        { 3, 3, 1, 1, 2, 3, 19, 22 },   // 2×2 tiles, as for layers with many channels
        { 5, 5, 2, 2, 4, 2, 17, 19 },   // F(2×2, 5×5)
        { 1, 7, 0, 3, 4, 3, 13, 17 },   // F(2, 7) along the rows
        { 7, 1, 3, 0, 4, 3, 17, 13 },   // and down the columns
        { 1, 5, 0, 1, 4, 2, 11, 14 },   // a line kernel whose transforms come from the sparse rows
    };

    [Theory]
    [MemberData(nameof(WeightGradientShapes))]
    public void The_weight_gradient_by_tiles_matches_a_float64_sum_in_any_chunking(long kh, long kw, long ph, long pw, int tile, long images, long height, long width)
    {
        if (!WideVectors.Fast) return;
        manual_seed(42);
        using var scope = NewDisposeScope();
        var input = MemoryFormat.ToChannelsLast(randn(images, 16, height, width));
        var weight = zeros(new long[] { 32, 16, kh, kw }, ScalarType.Float64).requires_grad_(true);
        var output = nn.functional.conv2d(input.to(ScalarType.Float64), weight, padding: [ph, pw]);
        var upstream = MemoryFormat.ToChannelsLast(randn(output.shape));
        output.backward([upstream.to(ScalarType.Float64)]);
        var expected = weight.grad!.to(ScalarType.Float32);

        // A 1 KiB budget gives chunks of the fewest tiles (16), many to each thread; the default takes a few chunks, or one.
        var small = WinogradConvolution.WeightGradient(input, upstream, kh, kw, ph, pw, tile, chunkBytes: 1024);
        AssertClose(expected, small, 1e-4, "weight gradient in chunks of 16 tiles");
        Assert.Equal(MemoryFormat.ChannelsLastStrides(expected.shape), small.stride());
        var whole = WinogradConvolution.WeightGradient(input, upstream, kh, kw, ph, pw, tile);
        AssertClose(expected, whole, 1e-4, "weight gradient in large chunks");
        AssertClose(small, whole, 5e-5, "the two chunkings");   // sums taken in another order: 10⁻⁵ for 5×5
        using (var again = WinogradConvolution.WeightGradient(input, upstream, kh, kw, ph, pw, tile, chunkBytes: 1024))
            Assert.True(again.equal(small).all().item<bool>(), "a second call gave other numbers");

        // An output gradient in the contiguous layout is read the same.
        var contiguousGradient = WinogradConvolution.WeightGradient(input, upstream.contiguous(), kh, kw, ph, pw, tile);
        AssertClose(whole, contiguousGradient, 1e-6, "from a contiguous output gradient");
    }

    [Fact]
    public void The_weight_gradient_by_tiles_names_a_mismatched_gradient_and_uneven_channels()
    {
        if (!WideVectors.Fast) return;
        using var scope = NewDisposeScope();
        var input = MemoryFormat.ToChannelsLast(randn(2, 16, 9, 9));
        var wrong = MemoryFormat.ToChannelsLast(randn(2, 32, 8, 9));
        Assert.Contains("does not match", Assert.Throws<ArgumentException>(() => WinogradConvolution.WeightGradient(input, wrong, 3, 3, 1, 1)).Message);
        var uneven = MemoryFormat.ToChannelsLast(randn(2, 24, 9, 9));
        Assert.Contains("multiples of 16", Assert.Throws<ArgumentException>(() => WinogradConvolution.WeightGradient(input, uneven, 3, 3, 1, 1)).Message);
        var fine = MemoryFormat.ToChannelsLast(randn(2, 32, 9, 9));
        Assert.Throws<ArgumentOutOfRangeException>(() => WinogradConvolution.WeightGradient(input, fine, 3, 3, 1, 1, squareTile: 3));
        var sevenBySeven = MemoryFormat.ToChannelsLast(randn(2, 32, 9, 9));
        Assert.Contains("7×7", Assert.Throws<ArgumentException>(() => WinogradConvolution.WeightGradient(input, sevenBySeven, 7, 7, 3, 3)).Message);
    }

    [Fact]
    public void Only_recorded_channels_last_convolutions_on_large_enough_grids_without_hooks_take_the_path()
    {
        if (!WideVectors.Fast) return;
        Assert.True(WinogradTraining.SeesHooks);
        using var conv = nn.Conv2d(16, 32, 3L, padding: 1L);
        using var wide = nn.Conv2d(96, 96, 3L, padding: 1L);
        using var strided = nn.Conv2d(16, 32, 3L, stride: 2L, padding: 1L);
        using var line = nn.Conv2d(16, 32, (1L, 7L), padding: (0L, 3L));
        using var column = nn.Conv2d(16, 32, (7L, 1L), padding: (3L, 0L));
        using var paddedAcross = nn.Conv2d(16, 32, (1L, 7L), padding: (1L, 3L));
        using var shortLine = nn.Conv2d(16, 32, (1L, 3L), padding: (0L, 1L));
        using var five = nn.Conv2d(16, 32, 5L, padding: 2L);
        using var oddChannels = nn.Conv2d(24, 32, 3L, padding: 1L);
        using var widePadding = nn.Conv2d(16, 32, 3L, padding: 3L);
        foreach (var c in new[] { conv, wide, strided, line, column, paddedAcross, shortLine, five, oddChannels, widePadding }) MemoryFormat.ToChannelsLast(c);
        using var large = MemoryFormat.ToChannelsLast(randn(2, 16, 28, 28));
        using var middle = MemoryFormat.ToChannelsLast(randn(2, 16, 14, 14));
        using var middleWide = MemoryFormat.ToChannelsLast(randn(2, 96, 14, 14));
        using var small = MemoryFormat.ToChannelsLast(randn(2, 96, 12, 12));
        using var nchw = randn(2, 16, 28, 28);
        using var twentyFour = MemoryFormat.ToChannelsLast(randn(2, 24, 28, 28));

        Assert.True(WinogradTraining.Applies(conv, large));           // the weight needs a gradient
        Assert.True(WinogradTraining.Applies(wide, middleWide));      // 14×14 with 96 × 96 channels
        Assert.False(WinogradTraining.Applies(conv, middle));         // 14×14 with 16 × 32 channels
        Assert.False(WinogradTraining.Applies(wide, small));          // under 14×14
        Assert.False(WinogradTraining.Applies(conv, nchw));
        Assert.False(WinogradTraining.Applies(strided, large));
        Assert.True(WinogradTraining.Applies(five, large));
        Assert.True(WinogradTraining.Applies(line, large));
        Assert.True(WinogradTraining.Applies(column, large));
        Assert.False(WinogradTraining.Applies(paddedAcross, large)); // a line padded across its width
        Assert.False(WinogradTraining.Applies(shortLine, large));    // 1×3: below the shortest line taken
        Assert.False(WinogradTraining.Applies(oddChannels, twentyFour));
        Assert.False(WinogradTraining.Applies(widePadding, large));
        using (no_grad()) Assert.False(WinogradTraining.Applies(conv, large));
        conv.weight!.requires_grad_(false);
        Assert.False(WinogradTraining.Applies(conv, large));          // nothing to record
        using var recorded = large.detach().requires_grad_(true);
        Assert.True(WinogradTraining.Applies(conv, recorded));        // the input's gradient is enough

        // A hook on the convolution keeps libtorch's path, which calls it.
        var hook = conv.register_forward_hook((_, _, y) => y);
        Assert.False(WinogradTraining.Applies(conv, recorded));
        hook.remove();
        Assert.True(WinogradTraining.Applies(conv, recorded));
    }

    [Fact]
    public void A_unit_in_training_mode_takes_the_path_only_when_asked_and_calls_hooks_on_its_convolution()
    {
        if (!WideVectors.Fast) return;
        manual_seed(43);
        using var unit = ConvUnit.BatchNorm.Build(64, 128, 3, padding: 1);
        MemoryFormat.ToChannelsLast(unit);
        unit.train();
        // BatchNorm's shift well above its outputs' spread, so that no output lies within rounding of the ReLU's edge: one
        // that fell on the other side in one path only would move the whole weight gradient by about 10⁻³.
        using (var shift = 8.0.ToScalar())
        using (no_grad()) unit.Bn!.bias!.fill_(shift);
        using var raw = randn(4, 64, 28, 28);
        using var input = MemoryFormat.ToChannelsLast(raw);
        using var upstream = MemoryFormat.ToChannelsLast(randn(4, 128, 28, 28));
        var asUnit = (IConvBnUnit)unit;
        Assert.False(asUnit.TrainsWithWinograd);

        (Tensor Output, Tensor Gradient) Step()
        {
            unit.zero_grad();
            var y = unit.call(input);
            y.mul(upstream).sum().backward();
            return (y.detach(), unit.Conv.weight!.grad!.clone());
        }

        long before = WinogradTraining.ForwardCount;
        var (plainOutput, plainGradient) = Step();
        asUnit.TrainsWithWinograd = true;
        var (output, gradient) = Step();
        Assert.True(WinogradTraining.ForwardCount > before);
        AssertClose(plainOutput, output, 1e-4, "unit output");
        AssertClose(plainGradient, gradient, 1e-4, "weight gradient through BatchNorm");

        int calls = 0;
        var hook = unit.Conv.register_forward_hook((_, _, y) => { calls++; return y; });
        Step();
        hook.remove();
        Assert.Equal(1, calls);
    }

    [Fact]
    public void A_whole_model_trains_with_the_path_only_where_libtorch_convolves_without_onednn()
    {
        manual_seed(44);
        using var model = ModelFactory.Create(ModelRegistry.Get("googlenet"), new ModelConfig { NumClasses = 4 });
        Assert.Equal(Incept.Runtime.TorchRuntime.OneDnnInUse != true, TrainingConvolution.OwnKernelsPay);

        int units = WinogradTraining.Use(model);
        Assert.True(units > 0);
        Assert.All(model.ConvBnUnits(), unit => Assert.Equal(TrainingConvolution.OwnKernelsPay, unit.TrainsWithWinograd));

        // At 64 pixels conv3 (64 → 192 channels on a 16×16 grid) is in the path's range.
        MemoryFormat.ToChannelsLast(model);
        model.train();
        using var raw = randn(2, 3, 64, 64);
        using var input = MemoryFormat.ToChannelsLast(raw);
        long before = WinogradTraining.ForwardCount;
        using (var scope = NewDisposeScope()) model.call(input).Logits.sum().backward();
        if (TrainingConvolution.OwnKernelsPay) Assert.True(WinogradTraining.ForwardCount > before, "no convolution of the step went through Winograd's method");
        else Assert.Equal(before, WinogradTraining.ForwardCount);

        WinogradTraining.Use(model, on: false);
        Assert.All(model.ConvBnUnits(), unit => Assert.False(unit.TrainsWithWinograd));
    }

    [Fact]
    public void A_call_leaves_only_its_output_and_its_backward_only_the_gradients_in_the_callers_scope()
    {
        if (!WideVectors.Fast) return;
        manual_seed(46);
        using var conv = nn.Conv2d(16, 16, 3, padding: 1, bias: false);
        MemoryFormat.ToChannelsLast(conv);
        using var raw = randn(2, 16, 28, 28);
        using var input = MemoryFormat.ToChannelsLast(raw).requires_grad_(true);
        using var scope = NewDisposeScope();
        var upstream = MemoryFormat.ToChannelsLast(randn(2, 16, 28, 28));

        // TorchSharp's custom functions keep a tensor the size of each output for zero gradients, which this function
        // does not ask for, and wrap the output gradient in a handle of the caller's scope: neither may stay there.
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var output = WinogradTraining.Forward(conv, input);
        Assert.Equal(before + 1, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        long beforeBackward = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        output.backward([upstream]);
        Assert.Equal(beforeBackward + 2, DisposeScopeManager.Statistics.ThreadTotalLiveCount);   // input and weight gradients
    }

    [Fact]
    public void Training_steps_with_the_path_leave_no_tensors_behind()
    {
        if (!WideVectors.Fast) return;
        // googlenet at 64 pixels: conv3 (64 → 192) runs on a 16×16 grid, inside the path's range.
        using var model = ModelFactory.Create(ModelRegistry.Get("googlenet"), new ModelConfig { NumClasses = 4 });
        MemoryFormat.ToChannelsLast(model);
        foreach (var unit in model.ConvBnUnits()) unit.TrainsWithWinograd = true;
        using var optimizer = new Incept.Training.Sgd(model.parameters(), 0.01, momentum: 0.9);
        using var raw = randn(2, 3, 64, 64);
        using var x = MemoryFormat.ToChannelsLast(raw);
        using var y = tensor(new long[] { 1, 3 });
        model.train();
        long Step() => Incept.Tests.Models.LiveTensorProbe.StepAndCount(model, optimizer, x, y);

        Step();
        long before = WinogradTraining.ForwardCount;
        long after1 = Step();
        Assert.True(WinogradTraining.ForwardCount > before);
        long after3 = Step() + 0 * Step();
        Assert.Equal(after1, after3);
    }

    private static void AssertClose(Tensor expected, Tensor actual, double tolerance, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double error = (actual - expected).abs().max().item<float>() / expected.abs().max().item<float>();
        Assert.True(error < tolerance, $"{what}: relative error {error}");
    }
}
