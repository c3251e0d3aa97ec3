using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// Stride-1 convolutions by Winograd's minimal filtering (Lavin and Gray, 2016): a 3×3 kernel by F(4×4, 3×3), where
/// every 4×4 block of outputs comes from a 6×6 input tile through 36 products of transformed values instead of 144
/// (or, for layers with many channels, F(2×2, 3×3): 16 products for 2×2 outputs instead of 36), and the factorised 1×7
/// and 7×1 kernels of Inception-v3, -v4 and the Inception-ResNets by F(3, 7) along their axis (9 products for 3 outputs
/// instead of 21; F(2, 7), 8 for 2, where training calls it), and the 5×5 kernels of Inception-v3 and
/// Inception-ResNet-v2 by F(2×2, 5×5) (36 products for 2×2 outputs instead of 100). For the fast engine's inference
/// copies, on CPUs with 256-bit or 512-bit vectors (<see cref="WideVectors"/>).
/// </summary>
/// <remarks>
/// <para>The products of a tile position become one matrix product per position over all tiles, <c>[tiles, C] ×
/// [C, K]</c>, which MKL runs at the rate of an ordinary convolution's im2col products, so most of the saved
/// multiplications are kept: for 3×3 with 4×4 tiles, 1.9–2.4× faster than libtorch's convolution per layer on a Zen 5
/// core pair at batch 8 (1.4–2.2× with 2×2 tiles); for 1×7 and 7×1, 1.05–1.3×. Where Incept's panel product pays
/// (<see cref="PanelProduct.PaysForTiles"/>: AVX2 without AVX-512) the transformed weights are laid out once in its panels
/// instead and it runs the products, with no copy of the weights per call (MKL packs them on every call, which at batch 1
/// costs as much as the arithmetic). The transforms are sums over 16 channels at a time on the channels-last input and
/// output, and the tiles go through in chunks whose transformed values (about <see cref="ChunkBytes"/>) stay in a
/// core's cache between the transform, the product and the inverse transform. Each core takes its own run of chunks
/// (<see cref="CpuTeam"/>); a grid with too few tiles for that (batch 1's small grids) goes through in three steps
/// shared among the cores instead: the input transform, the products by tile position, the output transform.</para>
/// <para>The transforms are Cook–Toom's, built from the interpolation points 0, 1, −1, 2, −2, ½, −½, ¼ and ∞ (exact
/// in binary; ¼ only for F(3, 7)). The transformed weights are computed once, in float64, and replace the weights: the
/// fast engine frees a convolution's own weight once this class has taken it. The outputs differ from libtorch's by float32 rounding:
/// about 10⁻⁵ of the largest output per layer with 4×4 tiles, 5·10⁻⁷ with 2×2, 10⁻⁵ for 1×7 with F(3, 7) (2·10⁻⁶
/// with F(2, 7)).</para>
/// </remarks>
internal sealed unsafe partial class WinogradConvolution : IDisposable
{
    /// <summary>Channels are transformed in blocks of this many (one 512-bit vector); both channel counts must be multiples of it.</summary>
    public const long ChannelBlock = 16;

    /// <summary>About how many bytes of transformed input and product one chunk of tiles holds.</summary>
    public const long ChunkBytes = 512L << 10;

    /// <summary>How many outputs a side a 3×3 kernel's tiles give unless asked otherwise: F(4×4, 3×3).</summary>
    public const int SquareTile = 4;

    /// <summary>
    /// The largest product of a 3×3 layer's channel counts that <see cref="Replace"/> gives 4×4 tiles (36 transformed
    /// weights per pair of channels, 9 MiB here); larger layers get 2×2 tiles (16 per pair). The large layers sit on the
    /// small grids, where 4×4 tiles gain least (0.9–1.2× over 2×2 for inception_v3's 448 → 384 at 8×8) and would add
    /// 25 MB to inception_v3.
    /// </summary>
    public const long MaxLargeTileChannelProduct = 1L << 16;

    /// <summary>The shortest 1×n or n×1 kernel taken. The 1×3 and 3×1 layers of the 8×8 stages gain little (1.1–1.3×
    /// per layer) for a third more weights (inception_v4: 10 MB), so they stay with libtorch.</summary>
    public const long MinLineKernel = 5;

    /// <summary>
    /// How many outputs a tile gives along a 1×n or n×1 kernel at inference: F(3, 7), 9 products for 3 outputs. Against
    /// F(2, 7) (8 for 2) the 17×17 layers of the Inception networks ran 1.13–1.21× faster on two cores (128 → 128 and
    /// 192 → 224 at batch 1 and 16, alternated in one process), for 9 transformed weights per pair of channels instead
    /// of 8 and five times the rounding (about 10⁻⁵ of the largest output, as 4×4 tiles of 3×3 kernels). Training's
    /// weights change every step and keep F(2, 7).
    /// </summary>
    public const int LineTile = 3;

    /// <summary>The longest 1×n or n×1 kernel taken (inception_v3's and inception_v4's 1×7 and 7×1).</summary>
    public const long MaxLineKernel = 7;

    private readonly Tensor transformed;
    private readonly Tensor bias;
    private readonly long inChannels;
    private readonly long outChannels;
    private readonly Axis rows;
    private readonly Axis columns;
    private readonly Tiling tiling;
    private readonly bool panels;

    private WinogradConvolution(Tensor transformed, Tensor bias, long inChannels, long outChannels, Axis rows, Axis columns, bool panels = false)
    {
        this.panels = panels;
        this.transformed = transformed;
        this.bias = bias;
        this.inChannels = inChannels;
        this.outChannels = outChannels;
        this.rows = rows;
        this.columns = columns;
        tiling = TilingOf(rows, columns);
    }

    private static Tiling TilingOf(Axis rows, Axis columns)
        => (rows.Kernel, rows.Outputs, columns.Kernel) switch
        {
            (3, 2, 3) => Tiling.Square2,
            (3, 4, 3) => Tiling.Square4,
            (5, 2, 5) => Tiling.Square5,
            _ => Tiling.Line,
        };

    /// <summary>
    /// Whether <paramref name="conv"/> on <paramref name="input"/> can run here: <see cref="Takes"/> the convolution, and
    /// the input is a channels-last 4-d CPU tensor large enough for the kernel, with nothing needing a gradient.
    /// </summary>
    public static bool Applies(Conv2d conv, Tensor input)
    {
        if (!Takes(conv) || input.dim() != 4 || input.device_type != DeviceType.CPU || input.dtype != ScalarType.Float32) return false;
        var weight = conv.weight!;
        if (input.shape[2] + 2 * (conv.padding?[0] ?? 0) < weight.shape[2] || input.shape[3] + 2 * (conv.padding?[1] ?? 0) < weight.shape[3]) return false;
        if (is_grad_enabled() && (input.requires_grad || weight.requires_grad)) return false;
        return MemoryFormat.IsChannelsLast(input);
    }

    /// <summary>
    /// Whether this class computes <paramref name="conv"/>: float32 CPU weights, stride 1, no dilation or groups, zero
    /// padding, and either a 3×3 kernel padded by 0 or 1 on every side, a 5×5 one padded by 0 to 2, or a 1×n or n×1 kernel (n from
    /// <see cref="MinLineKernel"/> to <see cref="MaxLineKernel"/>) padded along its length only; channel counts that are multiples of
    /// <see cref="ChannelBlock"/>; a CPU with 256-bit or 512-bit vectors in hardware; and MKL's batched product (<see cref="MklBatch"/>).
    /// </summary>
    public static bool Takes(Conv2d conv)
    {
        if (!TakesLayout(conv, out long kh, out long kw, out long ph, out long pw)) return false;
        bool square = kh == 3 && kw == 3 && ph == pw && ph is 0 or 1 || kh == 5 && kw == 5 && ph == pw && ph is >= 0 and <= 2;
        bool line = kh == 1 && kw is >= MinLineKernel and <= MaxLineKernel && ph == 0 && pw >= 0 && pw < kw
            || kw == 1 && kh is >= MinLineKernel and <= MaxLineKernel && pw == 0 && ph >= 0 && ph < kh;
        return square || line;
    }

    /// <summary>
    /// What every convolution this class computes has, whatever its kernel: float32 CPU weights, stride 1, no dilation or
    /// groups, zero padding, channel counts that are multiples of <see cref="ChannelBlock"/>, a CPU with 256-bit
    /// or 512-bit vectors in hardware, and MKL's batched product. Gives the kernel's sides and the padding.
    /// </summary>
    internal static bool TakesLayout(Conv2d conv, out long kernelHeight, out long kernelWidth, out long padRows, out long padColumns)
    {
        ArgumentNullException.ThrowIfNull(conv);
        kernelHeight = kernelWidth = padRows = padColumns = 0;
        var weight = conv.weight;
        if (!WideVectors.Fast || !MklBatch.Available || weight is null || weight.dim() != 4) return false;
        if (weight.dtype != ScalarType.Float32 || weight.device_type != DeviceType.CPU) return false;
        if (conv.stride.Any(s => s != 1) || conv.dilation.Any(d => d != 1)) return false;
        if (conv.groups != 1 || conv.padding_type is not null || conv.padding_mode != PaddingModes.Zeros) return false;
        if (weight.shape[0] % ChannelBlock != 0 || weight.shape[1] % ChannelBlock != 0) return false;
        (kernelHeight, kernelWidth, padRows, padColumns) = (weight.shape[2], weight.shape[3], conv.padding?[0] ?? 0, conv.padding?[1] ?? 0);
        return true;
    }

    /// <summary>
    /// Transforms <paramref name="conv"/>'s weights (a convolution this class <see cref="Takes"/>). The result does not
    /// refer to the convolution: its weight may be freed afterwards. <paramref name="panels"/> lays them out for Incept's
    /// panel product (true) or MKL's batch (false); null chooses the panels where they pay (<see cref="PanelProduct.PaysForTiles"/>).
    /// </summary>
    public static WinogradConvolution Prepare(Conv2d conv, int squareTile = SquareTile, bool? panels = null)
    {
        if (!Takes(conv)) throw new ArgumentException("Winograd's method does not take this convolution.", nameof(conv));
        if (squareTile is not (2 or 4)) throw new ArgumentOutOfRangeException(nameof(squareTile), squareTile, "A 3×3 kernel's tiles give 2×2 or 4×4 outputs.");
        var weight = conv.weight!;
        long outChannels = weight.shape[0], inChannels = weight.shape[1];
        var rows = Axis.For(weight.shape[2], conv.padding?[0] ?? 0, squareTile, LineTile);
        var columns = Axis.For(weight.shape[3], conv.padding?[1] ?? 0, squareTile, LineTile);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var gRows = tensor(rows.Weight, [rows.Size, rows.Kernel], ScalarType.Float64);
        var gColumns = tensor(columns.Weight, [columns.Size, columns.Kernel], ScalarType.Float64).t();
        bool inPanels = panels ?? PanelProduct.PaysForTiles;
        if (inPanels && !PanelProduct.Supported) throw new PlatformNotSupportedException("The panel product needs AVX2 with FMA.");
        int positions = rows.Size * columns.Size;
        const int width = PanelProduct.Width;
        // One matrix [in, out] per tile position for MKL, or for Incept's panel product the same in panels of 16 output
        // channels, [out / 16][in][16], written block by block so that no second copy of the layer is made.
        var transformed = inPanels ? empty(positions, outChannels / width, inChannels, width) : empty(positions, inChannels, outChannels);
        // U = G_rows·w·G_columnsᵀ per (out, in) pair; in float64, a block of output channels at a time so that the float64
        // copies stay small.
        for (long first = 0; first < outChannels; first += ChannelBlock * 4)
        {
            using var block = NewDisposeScope();
            long count = Math.Min(ChannelBlock * 4, outChannels - first);
            var u = gRows.matmul(weight.narrow(0, first, count).to(ScalarType.Float64)).matmul(gColumns);
            var perPosition = u.permute(2, 3, 1, 0).reshape(positions, inChannels, count);
            if (inPanels)
                transformed.narrow(1, first / width, count / width).copy_(perPosition.view(positions, inChannels, count / width, width).permute(0, 2, 1, 3));
            else
                transformed.narrow(2, first, count).copy_(perPosition);
        }

        var shift = conv.bias is { } b ? b.to(ScalarType.Float32).contiguous().clone() : zeros(outChannels);
        return new WinogradConvolution(transformed.DetachFromDisposeScope(), shift.DetachFromDisposeScope(), inChannels, outChannels, rows, columns, inPanels);
    }

    /// <summary>
    /// For training, where the weights change every step: the convolution by <paramref name="weight"/> ([out, in, kh, kw],
    /// float32 on the CPU, in any layout) with the given zero padding and optional <paramref name="bias"/>, or, with
    /// <paramref name="turned"/>, the convolution that maps that one's output gradient to its input gradient (channels
    /// swapped, kernel turned by 180°; give it the padding <c>kernel − 1 − padding</c>). The weights are transformed in
    /// float32 by one matrix product with the Kronecker product of the two axes' G, which is cheap enough to do per call;
    /// the result holds no reference to <paramref name="weight"/>. Both channel counts must be multiples of <see cref="ChannelBlock"/>.
    /// </summary>
    internal static WinogradConvolution ForWeight(Tensor weight, Tensor? bias, long padRows, long padColumns, int squareTile, bool turned)
    {
        ArgumentNullException.ThrowIfNull(weight);
        long kh = weight.shape[2], kw = weight.shape[3];
        long outChannels = weight.shape[turned ? 1 : 0], inChannels = weight.shape[turned ? 0 : 1];
        if (outChannels % ChannelBlock != 0 || inChannels % ChannelBlock != 0)
            throw new ArgumentException($"Both channel counts must be multiples of {ChannelBlock}; got {inChannels} → {outChannels}.", nameof(weight));
        var rows = Axis.For(kh, padRows, squareTile, lineTile: 2);
        var columns = Axis.For(kw, padColumns, squareTile, lineTile: 2);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var kernelTransform = KernelTransform(rows, columns);
        if (turned) kernelTransform = kernelTransform.flip(1);
        var taps = (turned ? weight.permute(2, 3, 0, 1) : weight.permute(2, 3, 1, 0)).reshape(kh * kw, inChannels * outChannels);
        var transformed = kernelTransform.mm(taps).view(rows.Size * columns.Size, inChannels, outChannels);
        var shift = bias is null ? zeros(outChannels) : bias.detach().to(ScalarType.Float32).contiguous().clone();
        return new WinogradConvolution(transformed.DetachFromDisposeScope(), shift.DetachFromDisposeScope(), inChannels, outChannels, rows, columns);
    }

    // G_rows ⊗ G_columns as a float32 [positions, kh·kw] matrix: entry (a·columns + b, i·kw + j) is G_rows[a, i]·G_columns[b, j].
    private static Tensor KernelTransform(Axis rows, Axis columns)
    {
        int kh = rows.Kernel, kw = columns.Kernel;
        var k = new float[rows.Size * columns.Size * kh * kw];
        for (int a = 0; a < rows.Size; a++)
            for (int b = 0; b < columns.Size; b++)
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                        k[((a * columns.Size + b) * kh + i) * kw + j] = (float)(rows.Weight[a * kh + i] * columns.Weight[b * kw + j]);
        return tensor(k, [rows.Size * columns.Size, kh * kw]);
    }

    /// <summary>
    /// Where this class <see cref="Takes"/> <paramref name="conv"/>: prepares it into <paramref name="winograd"/> (3×3
    /// kernels with 4×4 tiles up to <see cref="MaxLargeTileChannelProduct"/>, 2×2 above it), then frees the convolution's
    /// weight (an empty one takes its place). Returns whether it did.
    /// </summary>
    public static bool Replace(Conv2d conv, ref WinogradConvolution? winograd)
    {
        if (winograd is not null) return true;
        if (!Takes(conv)) return false;
        winograd = Prepare(conv, TileFor(conv));
        var weight = conv.weight!;
        conv.weight = new TorchSharp.Modules.Parameter(empty(0), requires_grad: false);
        weight.Dispose();
        return true;
    }

    /// <summary>The tile a 3×3 <paramref name="conv"/> gets from <see cref="Replace"/>: 4 outputs a side, or 2 for a large layer.</summary>
    internal static int TileFor(Conv2d conv)
        => conv.weight!.shape[0] * conv.weight.shape[1] <= MaxLargeTileChannelProduct ? SquareTile : 2;

    /// <summary>The outputs a side of this layer's tiles (1 across a 1×n or n×1 kernel).</summary>
    public (int Rows, int Columns) TileOutputs => (rows.Outputs, columns.Outputs);

    /// <summary>
    /// The convolution of <paramref name="input"/> (float32 on the CPU; converted to channels-last where it is not), in
    /// channels-last layout; with <paramref name="relu"/>, followed by a ReLU.
    /// </summary>
    public Tensor Forward(Tensor input, bool relu)
    {
        if (input.dim() != 4 || input.size(1) != inChannels)
            throw new ArgumentException($"The convolution takes batches of {inChannels}-channel images; got a tensor of shape [{string.Join(", ", input.shape)}].", nameof(input));
        if (input.dtype != ScalarType.Float32 || input.device_type != DeviceType.CPU)
            throw new ArgumentException($"The convolution takes float32 tensors on the CPU; got {input.dtype} on {input.device}.", nameof(input));
        var grid = new Grid(input.size(0), input.size(2), input.size(3), inChannels, rows, columns);
        if (grid.OutHeight < 1 || grid.OutWidth < 1)
            throw new ArgumentException($"A {input.size(2)}×{input.size(3)} input is smaller than the {rows.Kernel}×{columns.Kernel} kernel.", nameof(input));
        var output = MemoryFormat.EmptyChannelsLast(grid.Batch, outChannels, grid.OutHeight, grid.OutWidth);
        if (grid.Tiles == 0) return output;
        using var converted = MemoryFormat.IsChannelsLast(input) ? null : MemoryFormat.ToChannelsLast(input);
        float* source = TensorData.ChannelsLastFloats(converted ?? input), target = TensorData.ChannelsLastFloats(output), shift = TensorData.Floats(bias), weights = TensorData.Floats(transformed);
        int positions = rows.Size * columns.Size;
        if (InPhases(grid.Tiles))
        {
            ForwardInPhases(grid, source, target, shift, weights, positions, relu);
            return output;
        }

        // Equal parts of 16 tiles at least, several per core where the tiles allow, even where all of them would fit in
        // one chunk; a part goes through its tiles a chunk at a time.
        int parts = CpuTeam.PartsFor(grid.Tiles / 16);
        long fullChunk = ChunkTiles(positions, inChannels, outChannels);
        long chunk = Math.Min(fullChunk, (grid.Tiles + parts - 1) / parts);
        long valueCount = positions * chunk * inChannels, productCount = positions * chunk * outChannels;
        // Nothing in a part calls TorchSharp: the parts may run on OpenMP's threads, outside .NET's dispose scopes.
        CpuTeam.Run(parts, part =>
        {
            long first = grid.Tiles * part / parts, end = grid.Tiles * (part + 1) / parts;
            Scratch.ForThisThread(valueCount, productCount, out float* buffer, out float* products);
            for (long start = first; start < end; start += chunk)
            {
                long count = Math.Min(chunk, end - start);
                TransformInput(source, buffer, grid, start, count, chunk);
                Multiply(0, positions, count, buffer, chunk, weights, products);
                TransformOutput(products, shift, target, grid, start, count, chunk, relu);
            }
        });
        return output;
    }

    /// <summary>
    /// Whether a call with <paramref name="tiles"/> tiles goes through <see cref="ForwardInPhases"/>: weights in panels and
    /// too few tiles for a part of 16 on every thread (with MKL's layout, where it was not measured, never).
    /// </summary>
    internal bool InPhases(long tiles) => panels && CpuTeam.PartsFor(tiles / 16) < CpuTeam.Size;

    /// <summary>Whether the transformed weights are in panels for Incept's own product (else in MKL's layout).</summary>
    internal bool InPanels => panels;

    // Too few tiles for a part of 16 per thread (a small grid at batch 1): the tiles' inputs are transformed in parts,
    // then the positions' products are shared out, then the outputs are transformed in parts, all through one store, so
    // that both cores work on every step (a single part would leave one core idle, and MKL's threads for a few tiles cost
    // more than they give).
    private void ForwardInPhases(Grid grid, float* source, float* target, float* shift, float* weights, int positions, bool relu)
    {
        long tiles = grid.Tiles;
        Scratch.ForThisThread(positions * tiles * inChannels, positions * tiles * outChannels, out float* values, out float* products);
        int tileParts = CpuTeam.PartsFor(tiles);
        // Nothing in a part calls TorchSharp: the parts may run on OpenMP's threads, outside .NET's dispose scopes.
        CpuTeam.Run(tileParts, part =>
        {
            long first = tiles * part / tileParts, end = tiles * (part + 1) / tileParts;
            TransformInput(source, values + first * inChannels, grid, first, end - first, tiles);
        });
        int positionParts = CpuTeam.PartsFor(positions);
        CpuTeam.Run(positionParts, part => Multiply(positions * part / positionParts, positions * (part + 1) / positionParts, tiles, values, tiles, weights, products));
        CpuTeam.Run(tileParts, part =>
        {
            long first = tiles * part / tileParts, end = tiles * (part + 1) / tileParts;
            TransformOutput(products + first * outChannels, shift, target, grid, first, end - first, tiles, relu);
        });
    }

    private void TransformInput(float* source, float* values, Grid grid, long start, long count, long stride)
        => TransformInput(tiling, source, values, grid, start, count, stride);

    private static void TransformInput(Tiling tiling, float* source, float* values, Grid grid, long start, long count, long stride)
    {
        switch (tiling)
        {
            case Tiling.Square2: TransformInput<Square2Input>(source, values, grid, start, count, stride); break;
            case Tiling.Square4 or Tiling.Square5: TransformInput<Square4Input>(source, values, grid, start, count, stride); break;
            default: TransformInput<LineInput>(source, values, grid, start, count, stride); break;
        }
    }

    private void TransformOutput(float* products, float* shift, float* target, Grid grid, long start, long count, long stride, bool relu)
    {
        switch (tiling)
        {
            case Tiling.Square2: TransformSquare2Output(products, shift, target, grid, start, count, stride, outChannels, relu); break;
            case Tiling.Square4: TransformSquare4Output(products, shift, target, grid, start, count, stride, outChannels, relu); break;
            case Tiling.Square5: TransformSquare5Output(products, shift, target, grid, start, count, stride, outChannels, relu); break;
            default: TransformLineOutput(products, shift, target, grid, start, count, stride, outChannels, relu); break;
        }
    }

    // The products of positions [first, end) for `count` tiles: values [positions][stride][in] · weights → products
    // [positions][stride][out], by Incept's panel product where the weights are in panels, else by MKL's batch.
    private void Multiply(int first, int end, long count, float* values, long stride, float* weights, float* products)
    {
        if (end <= first) return;
        long matrix = inChannels * outChannels;
        if (!panels)
        {
            MklBatch.Multiply(end - first, count, outChannels, inChannels, values + first * stride * inChannels, stride * inChannels, inChannels,
                weights + first * matrix, products + first * stride * outChannels, stride * outChannels);
            return;
        }

        for (int k = first; k < end; k++)
            PanelProduct.MultiplyPanels(values + k * stride * inChannels, count, inChannels, weights + k * matrix, inChannels, outChannels,
                products + k * stride * outChannels, outChannels, PanelProduct.WideSupported);
    }

    /// <summary>Frees the transformed weights.</summary>
    public void Dispose()
    {
        transformed.Dispose();
        bias.Dispose();
    }

    /// <summary>How many tiles go through at a time: about <see cref="ChunkBytes"/> of transformed input and products.</summary>
    private static long ChunkTiles(int positions, long inChannels, long outChannels)
        => Math.Max(16, ChunkBytes / (positions * sizeof(float) * (inChannels + outChannels)));

    /// <summary>The input offsets of tile <paramref name="t"/>'s positions, row by row; −1 for those in the padding.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileOffsets(Grid grid, long t, long* at)
    {
        var (n, top, left) = grid.Origin(t);
        for (int a = 0; a < grid.Rows.Size; a++)
        {
            for (int b = 0; b < grid.Columns.Size; b++)
            {
                long row = top + a, column = left + b;
                bool inside = row >= 0 && row < grid.Height && column >= 0 && column < grid.Width;
                at[a * grid.Columns.Size + b] = inside ? ((n * grid.Height + row) * grid.Width + column) * grid.Channels : -1;
            }
        }
    }

    /// <summary>
    /// The input transform of one tile: <c>d</c> holds the tile's positions row by row for 16 channels, and the transformed
    /// values of position k go to <c>into + k·plane</c>.
    /// </summary>
    private interface ITileInput
    {
        static abstract void Apply(Vector512<float>* d, float* into, long plane, Grid grid);
    }

    // Bᵀ·d·B (or Bᵀ·d along a line) for the tiles [start, start + count): position k of tile t goes to values[k, t - start, :].
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformInput<T>(float* source, float* values, Grid grid, long start, long count, long stride)
        where T : struct, ITileInput
    {
        int size = grid.Rows.Size * grid.Columns.Size;
        var d = stackalloc Vector512<float>[size];
        var at = stackalloc long[size];
        long channels = grid.Channels, plane = stride * channels, rowStep = grid.Width * channels;
        for (long t = 0; t < count; t++)
        {
            float* into = values + t * channels;
            if (typeof(T) == typeof(Square4Input))
            {
                // A 6×6 tile wholly inside the image (most of them, on all but small grids) is read where it lies.
                var (n, top, left) = grid.Origin(start + t);
                if (top >= 0 && left >= 0 && top + grid.Rows.Size <= grid.Height && left + grid.Columns.Size <= grid.Width)
                {
                    float* corner = source + ((n * grid.Height + top) * grid.Width + left) * channels;
                    for (long c = 0; c < channels; c += ChannelBlock) Square4Input.ApplyInPlace(corner + c, rowStep, channels, d, into + c, plane);
                    continue;
                }
            }

            TileOffsets(grid, start + t, at);
            for (long c = 0; c < channels; c += ChannelBlock)
            {
                for (int k = 0; k < size; k++) d[k] = at[k] >= 0 ? Vector512.Load(source + at[k] + c) : Vector512<float>.Zero;
                T.Apply(d, into + c, plane, grid);
            }
        }
    }

    // F(2×2, 3×3): Bᵀ = [-1 0 1 0; 0 1 1 0; 0 -1 1 0; 0 -1 0 1] (Axis.CookToom(2, 3)), down the columns, then along the rows.
    private struct Square2Input : ITileInput
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Apply(Vector512<float>* d, float* into, long plane, Grid grid)
        {
            for (int b = 0; b < 4; b++)
            {
                Vector512<float> d0 = d[b], d1 = d[4 + b], d2 = d[8 + b], d3 = d[12 + b];
                d[b] = d2 - d0;
                d[4 + b] = d1 + d2;
                d[8 + b] = d2 - d1;
                d[12 + b] = d3 - d1;
            }

            for (int a = 0; a < 4; a++)
            {
                Vector512<float> e0 = d[4 * a], e1 = d[4 * a + 1], e2 = d[4 * a + 2], e3 = d[4 * a + 3];
                float* o = into + 4 * a * plane;
                Vector512.Store(e2 - e0, o);
                Vector512.Store(e1 + e2, o + plane);
                Vector512.Store(e2 - e1, o + 2 * plane);
                Vector512.Store(e3 - e1, o + 3 * plane);
            }
        }
    }

    // F(2×2, 3×3): Aᵀ·m·A plus the bias for the tiles [start, start + count), from products[16, count, K] into the NHWC output.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformSquare2Output(float* products, float* shift, float* output, Grid grid, long start, long count, long stride, long channels, bool relu)
    {
        var m = stackalloc Vector512<float>[16];
        long plane = stride * channels;
        for (long t = 0; t < count; t++)
        {
            var (n, top, left) = grid.Origin(start + t);
            long row = top + grid.Rows.Padding, column = left + grid.Columns.Padding;
            bool secondRow = row + 1 < grid.OutHeight, secondColumn = column + 1 < grid.OutWidth;
            float* first = output + ((n * grid.OutHeight + row) * grid.OutWidth + column) * channels;
            float* from = products + t * channels;
            for (long c = 0; c < channels; c += ChannelBlock)
            {
                for (int k = 0; k < 16; k++) m[k] = Vector512.Load(from + k * plane + c);
                // Aᵀ = [1 1 1 0; 0 1 -1 1], down the columns, then along the rows.
                for (int b = 0; b < 4; b++)
                {
                    Vector512<float> m0 = m[b], m1 = m[4 + b], m2 = m[8 + b], m3 = m[12 + b];
                    m[b] = m0 + m1 + m2;
                    m[4 + b] = m1 - m2 + m3;
                }

                var offset = Vector512.Load(shift + c);
                for (int r = 0; r < (secondRow ? 2 : 1); r++)
                {
                    Vector512<float> s0 = m[4 * r], s1 = m[4 * r + 1], s2 = m[4 * r + 2], s3 = m[4 * r + 3];
                    var y0 = s0 + s1 + s2 + offset;
                    var y1 = s1 - s2 + s3 + offset;
                    if (relu)
                    {
                        y0 = Vector512.Max(y0, Vector512<float>.Zero);
                        y1 = Vector512.Max(y1, Vector512<float>.Zero);
                    }

                    float* o = first + r * grid.OutWidth * channels + c;
                    Vector512.Store(y0, o);
                    if (secondColumn) Vector512.Store(y1, o + channels);
                }
            }
        }
    }

    // F(4×4, 3×3), and F(2×2, 5×5) on the same points: Bᵀ·d·B, down the columns in place, then along the rows.
    private struct Square4Input : ITileInput
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Apply(Vector512<float>* d, float* into, long plane, Grid grid)
        {
            for (int b = 0; b < 6; b++) Square4Line(d + b, 6, (float*)(d + b), 6 * ChannelBlock);
            for (int a = 0; a < 6; a++) Square4Line(d + 6 * a, 1, into + 6 * a * plane, plane);
        }

        // As Apply for a tile wholly inside the image, read where it lies (its top-left value at `corner`, rows `rowStep`
        // floats apart and positions `columnStep`): down the columns straight from the image into d, then along d's rows.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void ApplyInPlace(float* corner, long rowStep, long columnStep, Vector512<float>* d, float* into, long plane)
        {
            for (int b = 0; b < 6; b++) Square4Line(corner + b * columnStep, rowStep, (float*)(d + b), 6 * ChannelBlock);
            for (int a = 0; a < 6; a++) Square4Line(d + 6 * a, 1, into + 6 * a * plane, plane);
        }
    }

    // Bᵀ of F(4, 3) on 0, 1, −1, 2, −2, ∞ (Axis.CookToom(4, 3)) applied to six vectors x[0], x[step], …; the results go
    // to y, y + outStep, … (floats apart; all six are read first, so y may be x itself).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Square4Line(Vector512<float>* x, int step, float* y, long outStep)
        => Square4Line(x[0], x[step], x[2 * step], x[3 * step], x[4 * step], x[5 * step], y, outStep);

    // The same on six vectors of 16 floats at x, x + step, … (floats apart).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Square4Line(float* x, long step, float* y, long outStep)
        => Square4Line(Vector512.Load(x), Vector512.Load(x + step), Vector512.Load(x + 2 * step), Vector512.Load(x + 3 * step),
            Vector512.Load(x + 4 * step), Vector512.Load(x + 5 * step), y, outStep);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Square4Line(Vector512<float> x0, Vector512<float> x1, Vector512<float> x2, Vector512<float> x3, Vector512<float> x4, Vector512<float> x5, float* y, long outStep)
    {
        var four = Vector512.Create(4f);
        var five = Vector512.Create(5f);
        Vector512<float> p = x4 - four * x2, q = four * x1 - x3, r = x4 - x2, s = (x3 - x1) + (x3 - x1);
        Vector512.Store(four * x0 - five * x2 + x4, y);
        Vector512.Store(p - q, y + outStep);
        Vector512.Store(p + q, y + 2 * outStep);
        Vector512.Store(r + s, y + 3 * outStep);
        Vector512.Store(r - s, y + 4 * outStep);
        Vector512.Store(four * x1 - five * x3 + x5, y + 5 * outStep);
    }

    // F(4×4, 3×3): Aᵀ·m·A plus the bias for the tiles [start, start + count), from products[36, count, K] into the NHWC output.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformSquare4Output(float* products, float* shift, float* output, Grid grid, long start, long count, long stride, long channels, bool relu)
    {
        var m = stackalloc Vector512<float>[36];
        long plane = stride * channels;
        for (long t = 0; t < count; t++)
        {
            var (n, top, left) = grid.Origin(start + t);
            long row = top + grid.Rows.Padding, column = left + grid.Columns.Padding;
            long rowsInside = Math.Min(4, grid.OutHeight - row), columnsInside = Math.Min(4, grid.OutWidth - column);
            float* first = output + ((n * grid.OutHeight + row) * grid.OutWidth + column) * channels;
            float* from = products + t * channels;
            for (long c = 0; c < channels; c += ChannelBlock)
            {
                // Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1], down the columns (read where the products
                // lie), then along the rows.
                for (int b = 0; b < 6; b++) Square4Output(from + b * plane + c, 6 * plane, m + b, 6);
                var offset = Vector512.Load(shift + c);
                for (int r = 0; r < rowsInside; r++)
                {
                    Square4Output(m + 6 * r, 1);
                    float* o = first + r * grid.OutWidth * channels + c;
                    for (int j = 0; j < columnsInside; j++)
                    {
                        var y = m[6 * r + j] + offset;
                        if (relu) y = Vector512.Max(y, Vector512<float>.Zero);
                        Vector512.Store(y, o + j * channels);
                    }
                }
            }
        }
    }

    // F(2×2, 5×5), whose 6×6 tiles share F(4×4, 3×3)'s input transform (the same six points): Aᵀ·m·A plus the bias,
    // Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 1].
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformSquare5Output(float* products, float* shift, float* output, Grid grid, long start, long count, long stride, long channels, bool relu)
    {
        var m = stackalloc Vector512<float>[36];
        long plane = stride * channels;
        var two = Vector512.Create(2f);
        for (long t = 0; t < count; t++)
        {
            var (n, top, left) = grid.Origin(start + t);
            long row = top + grid.Rows.Padding, column = left + grid.Columns.Padding;
            bool secondRow = row + 1 < grid.OutHeight, secondColumn = column + 1 < grid.OutWidth;
            float* first = output + ((n * grid.OutHeight + row) * grid.OutWidth + column) * channels;
            float* from = products + t * channels;
            for (long c = 0; c < channels; c += ChannelBlock)
            {
                for (int k = 0; k < 36; k++) m[k] = Vector512.Load(from + k * plane + c);
                for (int b = 0; b < 6; b++)
                {
                    Vector512<float> m0 = m[b], m1 = m[6 + b], m2 = m[12 + b], m3 = m[18 + b], m4 = m[24 + b], m5 = m[30 + b];
                    m[b] = m0 + m1 + m2 + m3 + m4;
                    m[6 + b] = m1 - m2 + two * (m3 - m4) + m5;
                }

                var offset = Vector512.Load(shift + c);
                for (int r = 0; r < (secondRow ? 2 : 1); r++)
                {
                    Vector512<float> s0 = m[6 * r], s1 = m[6 * r + 1], s2 = m[6 * r + 2], s3 = m[6 * r + 3], s4 = m[6 * r + 4], s5 = m[6 * r + 5];
                    var y0 = s0 + s1 + s2 + s3 + s4 + offset;
                    var y1 = s1 - s2 + two * (s3 - s4) + s5 + offset;
                    if (relu)
                    {
                        y0 = Vector512.Max(y0, Vector512<float>.Zero);
                        y1 = Vector512.Max(y1, Vector512<float>.Zero);
                    }

                    float* o = first + r * grid.OutWidth * channels + c;
                    Vector512.Store(y0, o);
                    if (secondColumn) Vector512.Store(y1, o + channels);
                }
            }
        }
    }

    // Aᵀ of F(4, 3) applied in place to six vectors x[0], x[step], …: the four results replace the first four.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Square4Output(Vector512<float>* x, int step)
        => Square4Output(x[0], x[step], x[2 * step], x[3 * step], x[4 * step], x[5 * step], x, step);

    // The same on six vectors of 16 floats at x, x + step, … (floats apart), the four results to y[0], y[yStep], ….
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Square4Output(float* x, long step, Vector512<float>* y, int yStep)
        => Square4Output(Vector512.Load(x), Vector512.Load(x + step), Vector512.Load(x + 2 * step), Vector512.Load(x + 3 * step),
            Vector512.Load(x + 4 * step), Vector512.Load(x + 5 * step), y, yStep);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Square4Output(Vector512<float> x0, Vector512<float> x1, Vector512<float> x2, Vector512<float> x3, Vector512<float> x4, Vector512<float> x5, Vector512<float>* y, int step)
    {
        Vector512<float> a = x1 + x2, b = x1 - x2, c = x3 + x4, e = x3 - x4;
        y[0] = x0 + a + c;
        y[step] = b + e + e;
        y[2 * step] = a + Vector512.Create(4f) * c;
        y[3 * step] = b + Vector512.Create(8f) * e + x5;
    }

    // F(m, n) along one axis (the other is 1 wide): Bᵀ·d, by hand for F(2, 7) and F(3, 7), from the sparse rows otherwise.
    private struct LineInput : ITileInput
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Apply(Vector512<float>* d, float* into, long plane, Grid grid)
        {
            var line = grid.Rows.Size > 1 ? grid.Rows : grid.Columns;
            if (line.IsF27) Line7Input(d, into, plane);
            else if (line.IsF37) Line37Input(d, into, plane);
            else for (int k = 0; k < line.Size; k++) Vector512.Store(line.InputTransform.Apply(k, d), into + k * plane);
        }
    }

    // F(m, n) along one axis: Aᵀ·m plus the bias for the tiles [start, start + count).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformLineOutput(float* products, float* shift, float* output, Grid grid, long start, long count, long stride, long channels, bool relu)
    {
        bool alongRows = grid.Rows.Size > 1;
        var line = alongRows ? grid.Rows : grid.Columns;
        bool f27 = line.IsF27, f37 = line.IsF37, byHand = f27 || f37;
        var m = stackalloc Vector512<float>[line.Size];
        long plane = stride * channels, step = (alongRows ? grid.OutWidth : 1) * channels;
        for (long t = 0; t < count; t++)
        {
            var (n, top, left) = grid.Origin(start + t);
            long row = top + grid.Rows.Padding, column = left + grid.Columns.Padding;
            long inside = Math.Min(line.Outputs, alongRows ? grid.OutHeight - row : grid.OutWidth - column);
            float* first = output + ((n * grid.OutHeight + row) * grid.OutWidth + column) * channels;
            float* from = products + t * channels;
            for (long c = 0; c < channels; c += ChannelBlock)
            {
                for (int k = 0; k < line.Size; k++) m[k] = Vector512.Load(from + k * plane + c);
                var offset = Vector512.Load(shift + c);
                if (f27) Line7Output(m);
                else if (f37) Line37Output(m);
                for (int i = 0; i < inside; i++)
                {
                    var y = (byHand ? m[i] : line.OutputTransform.Apply(i, m)) + offset;
                    if (relu) y = Vector512.Max(y, Vector512<float>.Zero);
                    Vector512.Store(y, first + i * step + c);
                }
            }
        }
    }

    // Bᵀ of F(2, 7) on 0, 1, −1, 2, −2, ½, −½, ∞ (Axis.CookToom(2, 7)).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Line7Input(Vector512<float>* x, float* y, long plane)
    {
        Line7Finite(x[0], x[1], x[2], x[3], x[4], x[5], x[6], y, plane);
        Vector512.Store(Line7Last(x[1], x[3], x[5], x[7]), y + 7 * plane);
    }

    // Bᵀ of F(3, 7) on 0, 1, −1, 2, −2, ½, −½, ¼, ∞ (Axis.CookToom(3, 7)). Each row is a polynomial's coefficients: for a
    // point p of F(2, 7)'s seven and for ∞, (x − ¼) times F(2, 7)'s row, so those rows are F(2, 7)'s applied to the
    // differences x[t + 1] − ¼·x[t]; the row of ¼ itself is F(2, 7)'s row of ∞ on x.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Line37Input(Vector512<float>* x, float* y, long plane)
    {
        var quarter = Vector512.Create(0.25f);
        Vector512<float> x1 = x[1], x3 = x[3], x5 = x[5], x7 = x[7];
        Vector512<float> d0 = x1 - quarter * x[0], d1 = x[2] - quarter * x1, d2 = x3 - quarter * x[2], d3 = x[4] - quarter * x3;
        Vector512<float> d4 = x5 - quarter * x[4], d5 = x[6] - quarter * x5, d6 = x7 - quarter * x[6], d7 = x[8] - quarter * x7;
        Line7Finite(d0, d1, d2, d3, d4, d5, d6, y, plane);
        Vector512.Store(Line7Last(x1, x3, x5, x7), y + 7 * plane);
        Vector512.Store(Line7Last(d1, d3, d5, d7), y + 8 * plane);
    }

    // The rows of F(2, 7)'s Bᵀ for the points 0, ±1, ±2, ±½, each the coefficients of the product of (x − p) over the
    // other six: the rows of ±p pair up as e ± o, an even-position part and an odd-position one.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Line7Finite(Vector512<float> x0, Vector512<float> x1, Vector512<float> x2, Vector512<float> x3, Vector512<float> x4, Vector512<float> x5, Vector512<float> x6, float* y, long plane)
    {
        var c21 = Vector512.Create(21f / 4);
        var c17 = Vector512.Create(17f / 4);
        var c5 = Vector512.Create(5f);
        var c4 = Vector512.Create(4f);
        var half = Vector512.Create(0.5f);
        var quarter = Vector512.Create(0.25f);
        var c54 = Vector512.Create(5f / 4);
        var c52 = Vector512.Create(5f / 2);
        Vector512.Store(x6 - x0 + c21 * (x2 - x4), y);
        Vector512<float> e = x2 + x6 - c17 * x4, o = x1 + x5 - c17 * x3;
        Vector512.Store(e + o, y + plane);
        Vector512.Store(e - o, y + 2 * plane);
        e = quarter * x2 - c54 * x4 + x6;
        o = half * x1 - c52 * x3 + (x5 + x5);
        Vector512.Store(e + o, y + 3 * plane);
        Vector512.Store(e - o, y + 4 * plane);
        e = c4 * x2 - c5 * x4 + x6;
        o = (x1 + x1) - c52 * x3 + half * x5;
        Vector512.Store(e + o, y + 5 * plane);
        Vector512.Store(e - o, y + 6 * plane);
    }

    // The row of x(x² − 1)(x² − 4)(x² − ¼), F(2, 7)'s row of ∞, on the odd positions that it reads.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Line7Last(Vector512<float> x1, Vector512<float> x3, Vector512<float> x5, Vector512<float> x7)
        => x7 - x1 + Vector512.Create(21f / 4) * (x3 - x5);

    // Aᵀ of F(2, 7): the two outputs replace m[0] and m[1].
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Line7Output(Vector512<float>* m)
    {
        Vector512<float> a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4], e = m[5] + m[6], f = m[5] - m[6];
        m[0] = m[0] + a + c + e;
        m[1] = b + (d + d) + Vector512.Create(0.5f) * f + m[7];
    }

    // Aᵀ of F(3, 7), the powers 0 to 2 of each point and ∞ in the last: the three outputs replace m[0] to m[2].
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Line37Output(Vector512<float>* m)
    {
        Vector512<float> a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4], e = m[5] + m[6], f = m[5] - m[6], q = m[7];
        var quarter = Vector512.Create(0.25f);
        m[0] = m[0] + a + c + e + q;
        m[1] = b + (d + d) + Vector512.Create(0.5f) * f + quarter * q;
        m[2] = a + Vector512.Create(4f) * c + quarter * e + Vector512.Create(1f / 16) * q + m[8];
    }

    /// <summary>
    /// A thread's working memory for the chunks of tiles (and for the chunks of <see cref="WeightGradient"/>),
    /// kept from call to call: fresh blocks of this size would come with page faults on every call. It grows to the
    /// largest chunk asked for (a few MiB at most; see <see cref="ChunkBytes"/> and
    /// <see cref="GradientChunkBytes"/>) and is freed when its thread ends. Native memory, so that a part running on one of
    /// OpenMP's threads needs no TorchSharp call (outside a dispose scope a TorchSharp temporary can be finalised while
    /// libtorch still reads it).
    /// </summary>
    internal sealed class Scratch
    {
        private const nuint Alignment = 64;

        [ThreadStatic]
        private static Scratch? current;

        private float* values;
        private float* products;
        private long valueCapacity;
        private long productCapacity;

        ~Scratch()
        {
            NativeMemory.AlignedFree(values);
            NativeMemory.AlignedFree(products);
        }

        /// <summary>Float32 stores of at least the given sizes for the calling thread.</summary>
        public static void ForThisThread(long valueCount, long productCount, out float* values, out float* products)
        {
            var scratch = current ??= new Scratch();
            Grow(ref scratch.values, ref scratch.valueCapacity, valueCount);
            Grow(ref scratch.products, ref scratch.productCapacity, productCount);
            values = scratch.values;
            products = scratch.products;
        }

        private static void Grow(ref float* store, ref long capacity, long count)
        {
            if (capacity >= count) return;
            NativeMemory.AlignedFree(store);
            store = null;
            capacity = 0;
            store = (float*)NativeMemory.AlignedAlloc(checked((nuint)count * sizeof(float)), Alignment);
            capacity = count;
        }
    }

    private enum Tiling
    {
        Square2,
        Square4,
        Square5,
        Line,
    }

    /// <summary>
    /// One axis of a tiling: F(<see cref="Outputs"/>, <see cref="Kernel"/>) by Cook–Toom, where each tile of
    /// <see cref="Size"/> = m + r − 1 inputs gives m outputs (the identity for a kernel 1 wide).
    /// </summary>
    private sealed class Axis
    {
        private static readonly double[] Points = [0, 1, -1, 2, -2, 0.5, -0.5, 0.25];

        /// <summary>The <paramref name="index"/>th finite interpolation point.</summary>
        public static double Point(int index) => Points[index];

        private Axis(int kernel, int outputs, long padding, double[] weight, SparseRows input, SparseRows output, SparseRows gradient)
        {
            GradientTransform = gradient;
            Kernel = kernel;
            Outputs = outputs;
            Size = outputs + kernel - 1;
            Padding = padding;
            Weight = weight;
            InputTransform = input;
            OutputTransform = output;
        }

        public int Kernel { get; }

        public int Outputs { get; }

        public int Size { get; }

        public long Padding { get; }

        /// <summary>G, Size × Kernel, row by row.</summary>
        public double[] Weight { get; }

        /// <summary>Bᵀ, Size × Size.</summary>
        public SparseRows InputTransform { get; }

        /// <summary>Aᵀ, Outputs × Size.</summary>
        public SparseRows OutputTransform { get; }

        /// <summary>A, Size × Outputs: what a weight gradient's tile of output gradients goes through.</summary>
        public SparseRows GradientTransform { get; }

        /// <summary>Whether this is F(2, 7), whose transforms are written out by hand (F(3, 6) has as many points).</summary>
        public bool IsF27 => Outputs == 2 && Kernel == 7;

        /// <summary>Whether this is F(3, 7) on <see cref="Points"/>, whose transforms are written out by hand too.</summary>
        public bool IsF37 => Outputs == 3 && Kernel == 7;

        /// <summary>
        /// The axis for a kernel <paramref name="kernel"/> long: the identity for 1, F(<paramref name="squareTile"/>, 3)
        /// for 3, F(2, 5) for 5, F(<paramref name="lineTile"/>, r) for a line kernel r long.
        /// </summary>
        public static Axis For(long kernel, long padding, int squareTile, int lineTile)
            => kernel switch
            {
                1 => new Axis(1, 1, padding, [1], new SparseRows([1], 1), new SparseRows([1], 1), new SparseRows([1], 1)),
                3 => CookToom(squareTile, 3, padding),
                5 => CookToom(2, 5, padding),
                _ => CookToom(lineTile, (int)kernel, padding),
            };

        /// <summary>
        /// Cook–Toom's F(m, r) on the first m + r − 2 of <see cref="Points"/> and ∞: Aᵀ[i, k] = p_k^i, G[k, j] = p_k^j / Π(p_k − p_l),
        /// Bᵀ[k, :] the coefficients of Π_{l≠k}(x − p_l), and for ∞ the last output, the last weight and Π_l(x − p_l).
        /// </summary>
        public static Axis CookToom(int outputs, int kernel, long padding)
        {
            int size = outputs + kernel - 1, finite = size - 1;
            if (finite > Points.Length) throw new ArgumentOutOfRangeException(nameof(kernel), "Too long a tile for the interpolation points.");
            var input = new double[size * size];
            var output = new double[outputs * size];
            var weight = new double[size * kernel];
            for (int k = 0; k < finite; k++)
            {
                double p = Points[k], scale = 1;
                for (int l = 0; l < finite; l++)
                    if (l != k) scale *= p - Points[l];
                for (int i = 0; i < outputs; i++) output[i * size + k] = Math.Pow(p, i);
                for (int j = 0; j < kernel; j++) weight[k * kernel + j] = Math.Pow(p, j) / scale;
                var coefficients = Product(Enumerable.Range(0, finite).Where(l => l != k).Select(l => Points[l]));
                for (int t = 0; t < coefficients.Length; t++) input[k * size + t] = coefficients[t];
            }

            output[(outputs - 1) * size + finite] = 1;
            weight[finite * kernel + kernel - 1] = 1;
            var all = Product(Points.Take(finite));
            for (int t = 0; t < all.Length; t++) input[finite * size + t] = all[t];
            var gradient = new double[size * outputs];
            for (int i = 0; i < outputs; i++)
                for (int k = 0; k < size; k++) gradient[k * outputs + i] = output[i * size + k];
            return new Axis(kernel, outputs, padding, weight, new SparseRows(input, size), new SparseRows(output, size), new SparseRows(gradient, outputs));
        }

        /// <summary>The coefficients, lowest power first, of Π(x − p) over <paramref name="roots"/>.</summary>
        private static double[] Product(IEnumerable<double> roots)
        {
            double[] c = [1];
            foreach (double p in roots)
            {
                var next = new double[c.Length + 1];
                for (int t = 0; t < c.Length; t++)
                {
                    next[t + 1] += c[t];
                    next[t] -= p * c[t];
                }

                c = next;
            }

            return c;
        }
    }

    /// <summary>A small matrix kept as its nonzero entries, row by row, applied to vectors of 16 channels.</summary>
    private sealed class SparseRows
    {
        private readonly int[] starts;
        private readonly int[] columns;
        private readonly float[] values;

        public SparseRows(double[] matrix, int width)
        {
            int height = matrix.Length / width;
            starts = new int[height + 1];
            var cols = new List<int>();
            var vals = new List<float>();
            for (int i = 0; i < height; i++)
            {
                starts[i] = cols.Count;
                for (int j = 0; j < width; j++)
                {
                    if (matrix[i * width + j] == 0) continue;
                    cols.Add(j);
                    vals.Add((float)matrix[i * width + j]);
                }
            }

            starts[height] = cols.Count;
            columns = [.. cols];
            values = [.. vals];
        }

        /// <summary>Row <paramref name="row"/> of the matrix times the column of vectors <paramref name="x"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public Vector512<float> Apply(int row, Vector512<float>* x)
        {
            var sum = Vector512<float>.Zero;
            for (int e = starts[row]; e < starts[row + 1]; e++) sum += Vector512.Create(values[e]) * x[columns[e]];
            return sum;
        }
    }

    /// <summary>The tiling of a batch: each tile's outputs come from the input tile starting one padding up and left.</summary>
    private readonly record struct Grid(long Batch, long Height, long Width, long Channels, Axis Rows, Axis Columns)
    {
        public long OutHeight => Height + 2 * Rows.Padding - Rows.Kernel + 1;

        public long OutWidth => Width + 2 * Columns.Padding - Columns.Kernel + 1;

        private long TileRows => (OutHeight + Rows.Outputs - 1) / Rows.Outputs;

        private long TileColumns => (OutWidth + Columns.Outputs - 1) / Columns.Outputs;

        public long Tiles => Batch * TileRows * TileColumns;

        /// <summary>Tile <paramref name="t"/>'s image and the input row and column of its top-left corner (negative in the padding).</summary>
        public (long Image, long Top, long Left) Origin(long t)
        {
            long perImage = TileRows * TileColumns, within = t % perImage;
            return (t / perImage, Rows.Outputs * (within / TileColumns) - Rows.Padding, Columns.Outputs * (within % TileColumns) - Columns.Padding);
        }
    }
}
