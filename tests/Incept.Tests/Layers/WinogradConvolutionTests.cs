using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>3×3, 1×n and n×1 convolutions by Winograd's method give libtorch's output, with and without the ReLU.</summary>
public class WinogradConvolutionTests
{
    public static TheoryData<long, long, long, long, long, long, long, long, long, bool> Shapes => new()
    {
        // batch, in, out, height, width, kernel height, kernel width, padding height, padding width, bias
        { 1, 16, 32, 8, 8, 3, 3, 1, 1, true },      // one image, even grid
        { 3, 32, 16, 7, 9, 3, 3, 1, 1, false },     // odd sides: the last tiles are cut
        { 2, 16, 48, 6, 5, 3, 3, 0, 0, true },      // no padding: the output is two smaller
        { 2, 48, 16, 3, 3, 3, 3, 0, 0, true },      // a 1×1 output: a single cut tile
        { 2, 16, 16, 41, 37, 3, 3, 1, 1, true },    // many chunks, split between the cores
        { 2, 32, 16, 9, 11, 1, 7, 0, 3, true },     // inception_v3's 1×7
        { 2, 16, 32, 11, 9, 7, 1, 3, 0, false },    // and 7×1
        { 1, 16, 16, 8, 8, 1, 5, 0, 2, true },      // 1×5 on 8×8
        { 3, 16, 16, 8, 7, 5, 1, 2, 0, true },      // 5×1 with an odd number of rows
        { 2, 16, 16, 5, 9, 1, 7, 0, 0, true },      // 1×7 without padding: 3 columns out, one whole tile of F(3, 7)
        { 1, 16, 16, 4, 10, 1, 7, 0, 0, false },    // 4 columns out: the second tile cut to one output
        { 1, 16, 16, 9, 6, 6, 1, 2, 0, true },      // 6×1: F(3, 6) has F(2, 7)'s eight points but not its transforms
        { 1, 32, 32, 6, 6, 3, 3, 0, 0, false },     // exactly one 4×4 tile
        { 2, 16, 32, 13, 10, 3, 3, 1, 1, true },    // 4×4 tiles cut by one row and by two columns
        { 2, 48, 64, 11, 9, 5, 5, 2, 2, true },     // inception_v3's 5×5 (F(2×2, 5×5)) on odd sides
        { 1, 16, 16, 7, 6, 5, 5, 0, 0, false },     // 5×5 without padding: 3×2 outputs
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Gives_the_convolutions_output_in_channels_last(long batch, long cin, long cout, long height, long width, long kh, long kw, long ph, long pw, bool bias)
    {
        manual_seed(31);
        using var conv = nn.Conv2d(cin, cout, (kh, kw), padding: (ph, pw), bias: bias);
        MemoryFormat.ToChannelsLast(conv);
        using var raw = randn(batch, cin, height, width);
        using var input = MemoryFormat.ToChannelsLast(raw);
        // On two threads, where a small grid's few tiles go through in three shared steps and a large one in parts.
        TwoThreads.Run(() => AssertGivesLibtorchsOutput(conv, input));
    }

    [Fact]
    public void The_shapes_take_both_the_stepwise_path_of_few_tiles_and_the_parts_of_many()
    {
        if (!WideVectors.Fast || !PanelProduct.Supported) return;
        TwoThreads.Run(() =>
        {
            var taken = new List<bool>();
            foreach (var row in Shapes)
            {
                var (batch, cin, cout, height, width) = ((long)row[0], (long)row[1], (long)row[2], (long)row[3], (long)row[4]);
                var (kh, kw, ph, pw) = ((long)row[5], (long)row[6], (long)row[7], (long)row[8]);
                using var conv = nn.Conv2d(cin, cout, (kh, kw), padding: (ph, pw));
                using var winograd = WinogradConvolution.Prepare(conv, panels: true);
                var (tileRows, tileColumns) = winograd.TileOutputs;
                long outHeight = height + 2 * ph - kh + 1, outWidth = width + 2 * pw - kw + 1;
                long tiles = batch * ((outHeight + tileRows - 1) / tileRows) * ((outWidth + tileColumns - 1) / tileColumns);
                taken.Add(winograd.InPhases(tiles));
            }

            Assert.Contains(true, taken);
            Assert.Contains(false, taken);
            // MKL's layout keeps the parts (the stepwise path was measured with the panels only).
            using var plain = nn.Conv2d(16, 16, 3L, padding: 1L);
            using var mkl = WinogradConvolution.Prepare(plain, panels: false);
            Assert.False(mkl.InPhases(1));
        });
    }

    [Fact]
    public void A_slice_of_a_batch_is_read_from_its_own_images()
    {
        manual_seed(32);
        using var conv = nn.Conv2d(16, 16, 3L, padding: 1L);
        MemoryFormat.ToChannelsLast(conv);
        using var raw = randn(4, 16, 10, 10);
        using var batch = MemoryFormat.ToChannelsLast(raw);
        using var slice = batch.narrow(0, 2, 2);
        Assert.True(slice.storage_offset() > 0);
        AssertGivesLibtorchsOutput(conv, slice);
    }

    [Fact]
    public void Only_stride_one_float_convolutions_of_the_kernels_it_knows_on_channel_blocks_take_the_path()
    {
        using var plain = nn.Conv2d(16, 32, 3L, padding: 1L);
        using var line = nn.Conv2d(16, 32, (1L, 7L), padding: (0L, 3L));
        using var lineWithCrossPadding = nn.Conv2d(16, 32, (1L, 7L), padding: (1L, 3L));
        using var longLine = nn.Conv2d(16, 32, (1L, 9L), padding: (0L, 4L));
        using var shortLine = nn.Conv2d(16, 32, (3L, 1L), padding: (1L, 0L));
        using var fiveByFive = nn.Conv2d(16, 32, 5L, padding: 2L);
        using var widelyPaddedFive = nn.Conv2d(16, 32, 5L, padding: 3L);
        using var sevenBySeven = nn.Conv2d(16, 32, 7L, padding: 3L);
        using var strided = nn.Conv2d(16, 32, 3L, stride: 2L, padding: 1L);
        using var rectangle = nn.Conv2d(16, 32, (3L, 5L), padding: (1L, 2L));
        using var widePadding = nn.Conv2d(16, 32, 3L, padding: 2L);
        using var dilated = nn.Conv2d(16, 32, 3L, padding: 2L, dilation: 2L);
        using var grouped = nn.Conv2d(16, 32, 3L, padding: 1L, groups: 2);
        using var oddChannels = nn.Conv2d(24, 32, 3L, padding: 1L);
        using var doubles = nn.Conv2d(16, 32, 3L, padding: 1L, dtype: ScalarType.Float64);
        using var nchw = randn(2, 16, 9, 9);
        using var channelsLast = MemoryFormat.ToChannelsLast(nchw);
        using var twentyFour = MemoryFormat.ToChannelsLast(randn(2, 24, 9, 9));
        using var float64 = MemoryFormat.ToChannelsLast(randn(2, 16, 9, 9, ScalarType.Float64));

        using (inference_mode())
        {
            Assert.Equal(WideVectors.Fast, WinogradConvolution.Applies(plain, channelsLast));
            Assert.Equal(WideVectors.Fast, WinogradConvolution.Applies(line, channelsLast));
            Assert.False(WinogradConvolution.Applies(lineWithCrossPadding, channelsLast));
            Assert.False(WinogradConvolution.Applies(longLine, channelsLast));
            Assert.False(WinogradConvolution.Applies(shortLine, channelsLast));
            Assert.Equal(WideVectors.Fast, WinogradConvolution.Applies(fiveByFive, channelsLast));
            Assert.False(WinogradConvolution.Applies(widelyPaddedFive, channelsLast));
            Assert.False(WinogradConvolution.Applies(sevenBySeven, channelsLast));
            Assert.False(WinogradConvolution.Applies(plain, nchw));
            Assert.False(WinogradConvolution.Applies(strided, channelsLast));
            Assert.False(WinogradConvolution.Applies(rectangle, channelsLast));
            Assert.False(WinogradConvolution.Applies(widePadding, channelsLast));
            Assert.False(WinogradConvolution.Applies(dilated, channelsLast));
            Assert.False(WinogradConvolution.Applies(grouped, channelsLast));
            Assert.False(WinogradConvolution.Applies(oddChannels, twentyFour));
            Assert.False(WinogradConvolution.Applies(doubles, float64));
        }

        // With autograd on, the weight needs a gradient: libtorch's own convolution.
        Assert.False(WinogradConvolution.Applies(plain, channelsLast));
    }

    [Fact]
    public void Replacing_frees_the_convolutions_weight_and_keeps_its_output_for_any_layout()
    {
        if (!WideVectors.Fast) return;
        manual_seed(33);
        using var conv = nn.Conv2d(16, 32, (7L, 1L), padding: (3L, 0L));
        using var nchw = randn(2, 16, 9, 6);
        using var _ = inference_mode();
        using var expected = conv.call(nchw);

        WinogradConvolution? winograd = null;
        Assert.True(WinogradConvolution.Replace(conv, ref winograd));
        using (winograd)
        {
            Assert.Equal(0, conv.weight!.numel());
            // An NCHW input is taken too; the output is channels-last.
            using var actual = winograd!.Forward(nchw, relu: false);
            Assert.Equal(MemoryFormat.ChannelsLastStrides(expected.shape), actual.stride());
            double error = (actual - expected).abs().max().item<float>() / expected.abs().max().item<float>();
            Assert.True(error < 1e-5, $"relative error {error}");

            using var wrongChannels = randn(2, 8, 9, 6);
            Assert.Contains("16-channel", Assert.Throws<ArgumentException>(() => winograd.Forward(wrongChannels, relu: true)).Message);
        }

        using var unpadded = nn.Conv2d(16, 16, 3L);
        Assert.Throws<ArgumentOutOfRangeException>(() => WinogradConvolution.Prepare(unpadded, 3));
        using var small = WinogradConvolution.Prepare(unpadded);
        using var twoRows = randn(1, 16, 2, 5);
        Assert.Contains("smaller than the 3×3 kernel", Assert.Throws<ArgumentException>(() => small.Forward(twoRows, relu: true)).Message);
    }

    [Fact]
    public void Layers_with_many_channels_get_the_smaller_tiles_that_need_fewer_transformed_weights()
    {
        if (!WideVectors.Fast) return;
        using var narrow = nn.Conv2d(64, 96, 3L, padding: 1L);
        using var atLimit = nn.Conv2d(256, 256, 3L, padding: 1L);
        using var wide = nn.Conv2d(448, 384, 3L, padding: 1L);
        using var line = nn.Conv2d(448, 384, (1L, 7L), padding: (0L, 3L));
        var tiles = new[] { narrow, atLimit, wide, line }.Select(conv =>
        {
            WinogradConvolution? winograd = null;
            Assert.True(WinogradConvolution.Replace(conv, ref winograd));
            using (winograd) return winograd!.TileOutputs;
        }).ToArray();
        Assert.Equal([(4, 4), (4, 4), (2, 2), (1, WinogradConvolution.LineTile)], tiles);
    }

    [Fact]
    public void A_failing_part_is_rethrown_on_the_caller_after_the_others_finish()
    {
        int parts = Math.Max(2, CpuTeam.Size), finished = 0;
        var error = Assert.Throws<InvalidOperationException>(() => CpuTeam.Run(parts, part =>
        {
            if (part == 1) throw new InvalidOperationException("part 1 failed");
            Interlocked.Increment(ref finished);
        }));
        Assert.Equal("part 1 failed", error.Message);
        Assert.Equal(parts - 1, finished);

        // Every part runs once, and the team is usable again.
        var seen = new int[parts];
        CpuTeam.Run(parts, part => Interlocked.Increment(ref seen[part]));
        Assert.All(seen, count => Assert.Equal(1, count));
    }

    /// <summary>
    /// A part that runs on one of OpenMP's threads is outside every dispose scope, where a TorchSharp temporary (say the
    /// result of <c>narrow</c> passed on to <c>view</c>) can be finalised by the garbage collector while libtorch still
    /// reads it: a use-after-free that crashed a training run. So the parts create no TorchSharp tensor at all, which
    /// TorchSharp's per-thread counts show on every thread of the team.
    /// </summary>
    [Fact]
    public void The_parts_create_no_TorchSharp_tensors_on_the_teams_threads()
    {
        if (!WideVectors.Fast || CpuTeam.Size < 2) return;
        int caller = Environment.CurrentManagedThreadId;
        // Each thread's count of the tensors it made, by thread; part 0 waits until another thread has a part, so that
        // both the caller and a thread of the team are seen.
        Dictionary<int, long> Count()
        {
            var counts = new System.Collections.Concurrent.ConcurrentDictionary<int, long>();
            int others = 0;
            CpuTeam.Run(8, part =>
            {
                int thread = Environment.CurrentManagedThreadId;
                counts[thread] = DisposeScopeManager.Statistics.CreatedOutsideScopeCount + DisposeScopeManager.Statistics.CreatedInScopeCount;
                if (thread != caller) Interlocked.Increment(ref others);
                var waited = System.Diagnostics.Stopwatch.StartNew();
                while (part == 0 && Volatile.Read(ref others) == 0 && waited.ElapsedMilliseconds < 5000) Thread.SpinWait(100);
            });
            Assert.True(counts.Keys.Any(t => t != caller), "no thread of the team took a part");
            return new Dictionary<int, long>(counts);
        }

        using var conv = nn.Conv2d(16, 32, 3L, padding: 1L);
        WinogradConvolution? winograd = null;
        Assert.True(WinogradConvolution.Replace(conv, ref winograd));
        using (winograd)
        using (var scope = NewDisposeScope())
        using (inference_mode())
        {
            // 2 × 16 × 16 outputs are 32 tiles of 4×4: enough for a part per thread.
            var input = MemoryFormat.ToChannelsLast(randn(2, 16, 16, 16));
            var before = Count();
            for (int i = 0; i < 3; i++) winograd!.Forward(input, relu: true);
            var after = Count();
            // The team's threads made no tensor in the forward passes' parts (the caller made the outputs).
            foreach (var (thread, count) in after.Where(kv => kv.Key != caller && before.ContainsKey(kv.Key)))
                Assert.Equal(before[thread], count);
            // The counts are live: a tensor made in a part shows up in its thread's count.
            var made = new System.Collections.Concurrent.ConcurrentBag<(long Before, long After)>();
            CpuTeam.Run(8, part =>
            {
                long start = DisposeScopeManager.Statistics.CreatedOutsideScopeCount + DisposeScopeManager.Statistics.CreatedInScopeCount;
                using var tensor = zeros(1);
                made.Add((start, DisposeScopeManager.Statistics.CreatedOutsideScopeCount + DisposeScopeManager.Statistics.CreatedInScopeCount));
            });
            Assert.All(made, m => Assert.Equal(m.Before + 1, m.After));
        }
    }

    /// <summary>
    /// The path applies (on CPUs with 512-bit vectors) and gives libtorch's output in channels-last layout, and with the
    /// ReLU its ReLU.
    /// </summary>
    private static void AssertGivesLibtorchsOutput(TorchSharp.Modules.Conv2d conv, Tensor input)
    {
        using var _ = inference_mode();
        if (!WideVectors.Fast)
        {
            Assert.False(WinogradConvolution.Applies(conv, input));
            return;
        }

        Assert.True(WinogradConvolution.Applies(conv, input));
        using var expected = conv.call(input);
        using var expectedRelu = expected.relu();
        long kh = conv.weight!.shape[2], kw = conv.weight.shape[3];
        bool square = kh == 3 && kw == 3;
        // Both layouts of the transformed weights: MKL's, and Incept's panels where the CPU runs the panel product.
        bool[] layouts = PanelProduct.Supported ? [false, true] : [false];
        foreach (bool panels in layouts)
        foreach (int tile in square ? new[] { 2, 4 } : new[] { WinogradConvolution.SquareTile })
        {
            using var winograd = WinogradConvolution.Prepare(conv, tile, panels);
            Assert.Equal(panels, winograd.InPanels);
            // Along a line kernel of 6 or 7, F(3, ·); of 5 (and for 5×5 kernels), F(2, 5).
            int Line(long k) => k == 1 ? 1 : k == 5 ? 2 : WinogradConvolution.LineTile;
            Assert.Equal(square ? (tile, tile) : (Line(kh), Line(kw)), winograd.TileOutputs);
            // 4×4 tiles and F(3, 7) round about ten times more than 2×2 tiles and F(2, 5) (larger transform coefficients).
            double tolerance = tile == 4 && square || kh == 7 || kw == 7 ? 5e-5 : 1e-5;
            foreach (bool relu in new[] { false, true })
            {
                using var actual = winograd.Forward(input, relu);
                var reference = relu ? expectedRelu : expected;
                Assert.Equal(reference.shape, actual.shape);
                Assert.Equal(MemoryFormat.ChannelsLastStrides(reference.shape), actual.stride());
                double error = (actual - reference).abs().max().item<float>() / reference.abs().max().item<float>();
                Assert.True(error < tolerance, $"panels {panels}, tile {tile}, relu {relu}: relative error {error}");
            }
        }
    }
}
