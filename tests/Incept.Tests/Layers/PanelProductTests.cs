using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>
/// The panel product gives libtorch's matrix product, with its 256-bit kernels and (on AVX-512) its 512-bit ones: for any
/// number of rows (blocks of six, and the shorter kernels for the rows left over, whole or cut), any number of
/// output channels (whole and cut panels of 16), with the ReLU or the scaled residual sum, shared among the cores by
/// panels or by rows; and as a 1×1 convolution, in channels-last layout.
/// </summary>
public class PanelProductTests
{
    public static TheoryData<long, long, long, bool, bool> Shapes => new()
    {
        // rows, inputs, outputs, bias, relu
        { 1, 64, 32, true, true },        // a single row: the two-row kernel repeats it
        { 2, 24, 16, true, true },        // exactly the two-row kernel
        { 9, 40, 24, true, true },        // batch-1 3×3 grid: six rows, then three in the four-row kernel; a cut panel of 8
        { 10, 32, 48, false, true },      // six rows and a whole four-row block
        { 14, 20, 32, true, false },      // two blocks of six and two rows left
        { 13, 17, 16, false, false },     // odd inputs, one whole panel, two cut blocks
        { 10, 34, 24, true, false },      // inputs not a multiple of four: the six- and the four-row kernel end on two single steps
        { 64, 96, 200, true, true },      // more outputs than rows: split by panels
        { 600, 256, 40, true, false },    // many rows, few outputs: split by rows, several chunks
        { 2500, 24, 48, false, true },    // very short rows: large chunks
        { 38, 64, 32, true, true },       // more than FewRows (the kernels without prefetching), two rows left for the two-row kernel
        { 5, 3, 5, true, true },          // fewer outputs than a vector
    };

    // Every shape with the 256-bit kernels and, where the CPU has AVX-512, the 512-bit ones (two panels at a time, the
    // last of an odd number alone; six-row and three-row blocks).
    public static TheoryData<long, long, long, bool, bool, bool> ShapesByKernel
    {
        get
        {
            var data = new TheoryData<long, long, long, bool, bool, bool>();
            foreach (var wide in new[] { false, true })
                foreach (var row in Shapes)
                    data.Add((long)row[0], (long)row[1], (long)row[2], (bool)row[3], (bool)row[4], wide);
            return data;
        }
    }

    private static void SkipUnlessRuns(bool wide)
    {
        Skip.IfNot(PanelProduct.Supported, "the CPU has no AVX2 with FMA");
        Skip.If(wide && !PanelProduct.WideSupported, "the CPU has no AVX-512");
    }

    private static double RelativeError(Tensor actual, Tensor expected)
        => (actual - expected).abs().max().item<float>() / Math.Max(1e-12, expected.abs().max().item<float>());

    [SkippableTheory]
    [MemberData(nameof(ShapesByKernel))]
    public unsafe void Gives_the_matrix_product_with_bias_and_relu(long rows, long inputs, long outputs, bool bias, bool relu, bool wide)
    {
        SkipUnlessRuns(wide);
        manual_seed(41);
        using var x = randn(rows, inputs);
        using var w = randn(outputs, inputs);
        using var b = bias ? randn(outputs) : null;
        using var expectedRaw = b is null ? x.mm(w.t()) : x.mm(w.t()).Plus(b);
        using var expected = relu ? expectedRaw.relu() : expectedRaw.clone();
        using var product = PanelProduct.From(w, b);
        product.Wide = wide;
        using var y = empty(rows, outputs).Plus(double.NaN);
        product.Multiply(TensorData.Floats(x), rows, inputs, TensorData.Floats(y), outputs, relu);
        Assert.True(RelativeError(y, expected) < 1e-5, $"relative error {RelativeError(y, expected)}");
    }

    [SkippableTheory]
    [InlineData(7L, 0.17f, false)]
    [InlineData(200L, 1.0f, false)]
    [InlineData(7L, 0.17f, true)]
    [InlineData(200L, 1.0f, true)]
    public unsafe void Adds_the_scaled_product_to_the_residual(long rows, float scale, bool wide)
    {
        SkipUnlessRuns(wide);
        manual_seed(42);
        using var x = randn(rows, 48);
        using var w = randn(40, 48);
        using var b = randn(40);
        using var residual = randn(rows, 40);
        using var expected = x.mm(w.t()).Plus(b).Times(scale).Plus(residual);
        using var product = PanelProduct.From(w, b);
        product.Wide = wide;
        using var y = empty(rows, 40);
        product.Multiply(TensorData.Floats(x), rows, 48, TensorData.Floats(y), 40, relu: false, TensorData.Floats(residual), 40, scale);
        Assert.True(RelativeError(y, expected) < 1e-5, $"relative error {RelativeError(y, expected)}");
    }

    [SkippableFact]
    public void A_pointwise_convolution_gives_libtorchs_output_in_channels_last()
    {
        Skip.IfNot(PanelProduct.Supported, "the CPU has no AVX2 with FMA");
        manual_seed(43);
        using var conv = nn.Conv2d(24, 40, 1L);
        using var raw = randn(3, 24, 5, 7);
        using var _ = inference_mode();
        using var expected = conv.call(raw).relu();
        Assert.True(PanelProduct.TakesPointwise(conv));
        PanelProduct? product = null;
        Assert.True(PanelProduct.ReplacePointwise(conv, ref product));
        using (product)
        {
            // The convolution's own weight is freed: the panels replace it.
            Assert.Equal(0, conv.weight!.numel());
            // An NCHW input is taken too (made channels-last first); the output is channels-last.
            using var actual = product!.Pointwise(raw, relu: true);
            Assert.Equal(MemoryFormat.ChannelsLastStrides(expected.shape), actual.stride());
            Assert.True(RelativeError(actual, expected) < 1e-5, $"relative error {RelativeError(actual, expected)}");
            // A channels-last batch slice (the fast engine's passes) is read from its own first image.
            using var channelsLast = MemoryFormat.ToChannelsLast(raw);
            using var slice = channelsLast.narrow(0, 1, 2);
            using var sliced = product.Pointwise(slice, relu: true);
            using var expectedSlice = expected.narrow(0, 1, 2);
            Assert.True(RelativeError(sliced, expectedSlice) < 1e-5, $"relative error {RelativeError(sliced, expectedSlice)}");
        }
    }

    public static TheoryData<long, long, long, long, long, long, long, long, long, long> Convolutions => new()
    {
        // batch, in, out, height, width, kernel height, kernel width, stride, padding height, padding width
        { 1, 16, 24, 8, 8, 3, 3, 2, 0, 0 },       // a reduction block's 3×3 with stride 2: few windows, copied at once
        { 1, 32, 16, 3, 3, 1, 3, 1, 0, 1 },       // inception_resnet_v1's 1×3 on a 3×3 grid
        { 2, 8, 16, 5, 4, 3, 1, 1, 1, 0 },        // and 3×1, on a batch
        { 2, 3, 20, 64, 60, 7, 7, 2, 3, 3 },      // an RGB stem: many windows, copied chunk by chunk on each core
        { 3, 24, 40, 30, 30, 3, 3, 1, 1, 1 },     // padded 3×3 with a cut panel, chunked
        { 2, 16, 32, 9, 9, 1, 1, 2, 0, 0 },       // 1×1 with stride 2
        { 1, 16, 16, 6, 6, 1, 1, 1, 1, 1 },       // 1×1 with padding: zeros around the grid
    };

    [SkippableTheory]
    [MemberData(nameof(Convolutions))]
    public void A_convolution_gives_libtorchs_output_in_channels_last(long batch, long cin, long cout, long height, long width, long kh, long kw, long stride, long ph, long pw)
    {
        Skip.IfNot(PanelProduct.Supported, "the CPU has no AVX2 with FMA");
        manual_seed(45);
        using var conv = nn.Conv2d(cin, cout, (kh, kw), stride: (stride, stride), padding: (ph, pw));
        using var raw = randn(batch, cin, height, width);
        using var input = MemoryFormat.ToChannelsLast(raw);
        using var _ = inference_mode();
        using var expected = conv.call(raw).relu();
        Assert.True(PanelProduct.TakesConvolution(conv));
        PanelProduct? product = null;
        Assert.True(PanelProduct.ReplaceConvolution(conv, ref product));
        using (product)
        {
            Assert.Equal(0, conv.weight!.numel());
            foreach (var x in new[] { input, raw })
            {
                using var actual = product!.Convolution(x, relu: true);
                Assert.Equal(expected.shape, actual.shape);
                Assert.Equal(MemoryFormat.ChannelsLastStrides(expected.shape), actual.stride());
                Assert.True(RelativeError(actual, expected) < 1e-5, $"relative error {RelativeError(actual, expected)}");
            }
        }
    }

    [SkippableFact]
    public void The_residual_close_of_a_block_equals_projection_scaling_and_sum()
    {
        Skip.IfNot(PanelProduct.Supported, "the CPU has no AVX2 with FMA");
        manual_seed(44);
        using var projection = nn.Conv2d(12, 20, 1L);
        using var branches = MemoryFormat.ToChannelsLast(randn(2, 12, 6, 6));
        using var input = MemoryFormat.ToChannelsLast(randn(2, 20, 6, 6));
        using var _ = inference_mode();
        using var expected = projection.call(branches).Times(0.2).Plus(input);
        PanelProduct? product = null;
        Assert.True(PanelProduct.ReplacePointwise(projection, ref product));
        using (product)
        {
            using var actual = Residual.ProjectedSum(projection, product, branches, 0.2, input, fused: true);
            Assert.Equal(MemoryFormat.ChannelsLastStrides(expected.shape), actual.stride());
            Assert.True(RelativeError(actual, expected) < 1e-5, $"relative error {RelativeError(actual, expected)}");
            // The block's ReLU after the sum, applied as the product writes (the sum has values of both signs).
            using var expectedRelu = expected.relu();
            using var rectified = Residual.ProjectedSum(projection, product, branches, 0.2, input, fused: true, relu: true);
            Assert.True(expected.min().item<float>() < 0);
            Assert.True(RelativeError(rectified, expectedRelu) < 1e-5, $"relative error {RelativeError(rectified, expectedRelu)}");
        }
    }

    [SkippableTheory]
    [InlineData(4L, 32L, 48L, false)]     // a 2×2 grid of Winograd tiles; three panels
    [InlineData(4L, 32L, 48L, true)]      // a pair of panels, then the last alone
    [InlineData(50L, 17L, 64L, true)]     // odd inputs (the pair kernel's single last step), blocks of six and two rows
    [InlineData(9L, 64L, 32L, true)]      // six rows and three: both pair kernels
    public unsafe void Multiplies_weights_already_in_panels(long rows, long inputs, long outputs, bool wide)
    {
        SkipUnlessRuns(wide);
        manual_seed(46);
        using var x = randn(rows, inputs);
        using var w = randn(inputs, outputs);
        using var expected = x.mm(w);
        // [outputs / 16][inputs][16], as Winograd's transformed weights are laid out.
        using var panels = w.reshape(inputs, outputs / PanelProduct.Width, PanelProduct.Width).permute(1, 0, 2).contiguous();
        using var y = empty(rows, outputs).Plus(double.NaN);
        PanelProduct.MultiplyPanels(TensorData.Floats(x), rows, inputs, TensorData.Floats(panels), inputs, outputs, TensorData.Floats(y), outputs, wide);
        Assert.True(RelativeError(y, expected) < 1e-5, $"relative error {RelativeError(y, expected)}");
    }

    [Fact]
    public void The_defaults_follow_the_cpu()
    {
        Assert.Equal(System.Runtime.Intrinsics.X86.Avx512F.IsSupported, PanelProduct.WideSupported);
        Assert.Equal(PanelProduct.Supported, PanelProduct.Pays);
        // Winograd's tile products go to the panels on 256-bit machines only.
        Assert.Equal(PanelProduct.Supported && !System.Runtime.Intrinsics.X86.Avx512F.IsSupported, PanelProduct.PaysForTiles);
    }

    [Fact]
    public void The_wide_kernels_are_refused_without_avx512()
    {
        using var w = randn(8, 6);
        using var product = PanelProduct.From(w, null);
        Assert.Equal(PanelProduct.WideSupported, product.Wide);
        if (PanelProduct.WideSupported) return;
        Assert.Throws<PlatformNotSupportedException>(() => product.Wide = true);
    }

    [Fact]
    public void Only_float_convolutions_without_groups_or_dilation_take_the_path_and_only_plain_one_by_ones_the_pointwise_one()
    {
        using var strided = nn.Conv2d(16, 32, 1L, stride: 2L);
        using var padded = nn.Conv2d(16, 32, 1L, padding: 1L);
        using var wide = nn.Conv2d(16, 32, 3L, padding: 1L);
        using var grouped = nn.Conv2d(16, 32, 1L, groups: 2);
        using var dilated = nn.Conv2d(16, 32, 1L, dilation: 2L);
        using var doubles = nn.Conv2d(16, 32, 1L);
        doubles.to(ScalarType.Float64);
        using var reflecting = nn.Conv2d(16, 32, 3L, padding: 1L, padding_mode: PaddingModes.Reflect);
        foreach (var conv in new[] { strided, padded, wide, grouped, dilated, doubles })
            Assert.False(PanelProduct.TakesPointwise(conv));
        using var plain = nn.Conv2d(16, 32, 1L);
        Assert.Equal(PanelProduct.Supported, PanelProduct.TakesPointwise(plain));
        // Any kernel, stride and zero padding for the general convolution; not groups, dilation, other padding or float64.
        foreach (var conv in new[] { grouped, dilated, doubles, reflecting })
            Assert.False(PanelProduct.TakesConvolution(conv));
        foreach (var conv in new[] { strided, padded, wide, plain })
            Assert.Equal(PanelProduct.Supported, PanelProduct.TakesConvolution(conv));
    }

    [Fact]
    public void Wrong_inputs_are_refused_with_a_clear_message()
    {
        using var w = randn(8, 6);
        using var product = PanelProduct.From(w, null);
        using var wrongChannels = randn(1, 5, 3, 3);
        var e = Assert.Throws<ArgumentException>(() => product.Pointwise(wrongChannels, relu: false));
        Assert.Contains("6-channel", e.Message, StringComparison.Ordinal);
        using var integers = ones(new long[] { 4, 6 }, ScalarType.Int32);
        Assert.Throws<ArgumentException>(() => PanelProduct.From(integers, null));
    }
}
