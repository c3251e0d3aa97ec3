using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Layers;

internal sealed unsafe partial class WinogradConvolution
{
    /// <summary>About how many bytes of transformed input and output gradient a chunk of <see cref="WeightGradient"/> holds.</summary>
    internal const long GradientChunkBytes = 1L << 20;

    /// <summary>
    /// The weight gradient of a stride-1 convolution with a kernel this class takes (3×3, 5×5, 1×n or n×1) and the given
    /// zero padding, by Winograd's method, from its <paramref name="input"/> [N, C, H, W] and
    /// <paramref name="outputGradient"/> [N, K, H', W'] (float32 on the CPU; channels-last read in place): [K, C, kh, kw]
    /// in channels-last layout.
    /// </summary>
    /// <remarks>
    /// <para>The forward pass's tiling read the other way round. Per tile of m outputs along an axis, the forward pass
    /// computes <c>y = Aᵀ[(G·w) ⊙ (Bᵀ·d)]</c>; the trilinear form <c>Σ_t (A·u)_t (G·w)_t (Bᵀ·d)_t</c> behind it is symmetric
    /// in u and w, so the weight gradient, the sum over tiles of <c>Σ_i dy_i d_{i+j}</c>, is <c>Gᵀ Σ_tiles[(A·dy) ⊙ (Bᵀ·d)]</c>:
    /// the input tiles transformed as in the forward pass, the output gradient's tiles by A (Size × m), their
    /// products summed over the tiles per position (one matrix product <c>[K, tiles] × [tiles, C]</c> per position), and
    /// Gᵀ once at the end. For 3×3 with 4×4 tiles that is 36 products per tile where the plain sum takes 144; for 5×5
    /// with 2×2 tiles 36 for 100; for 1×7 with tiles of 2, 8 for 14.</para>
    /// <para>The tiles go through in chunks of about <see cref="GradientChunkBytes"/>, each thread taking one run of
    /// chunks and adding into its own sums, which are added up at the end in the threads' order: the same result on
    /// every run with the same thread count.</para>
    /// </remarks>
    internal static Tensor WeightGradient(Tensor input, Tensor outputGradient, long kernelHeight, long kernelWidth, long padRows, long padColumns, int squareTile = SquareTile, long chunkBytes = GradientChunkBytes)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(outputGradient);
        using var scope = NewDisposeScope();
        long n = input.shape[0], c = input.shape[1], h = input.shape[2], w = input.shape[3], k = outputGradient.shape[1];
        if (squareTile is not (2 or 4)) throw new ArgumentOutOfRangeException(nameof(squareTile), squareTile, "A 3×3 kernel's tiles give 2×2 or 4×4 outputs.");
        bool square = kernelHeight == kernelWidth && kernelHeight is 3 or 5;
        bool line = Math.Min(kernelHeight, kernelWidth) == 1 && Math.Max(kernelHeight, kernelWidth) is >= MinLineKernel and <= MaxLineKernel;
        if (!square && !line) throw new ArgumentException($"Winograd's weight gradient takes 3×3, 5×5, 1×n and n×1 kernels (n from {MinLineKernel} to {MaxLineKernel}); got {kernelHeight}×{kernelWidth}.", nameof(kernelHeight));
        var rows = Axis.For(kernelHeight, padRows, squareTile, lineTile: 2);
        var columns = Axis.For(kernelWidth, padColumns, squareTile, lineTile: 2);
        var grid = new Grid(n, h, w, c, rows, columns);
        if (outputGradient.shape[0] != n || outputGradient.shape[2] != grid.OutHeight || outputGradient.shape[3] != grid.OutWidth)
            throw new ArgumentException($"An output gradient of shape [{string.Join(", ", outputGradient.shape)}] does not match a {kernelHeight}×{kernelWidth} convolution of [{string.Join(", ", input.shape)}].", nameof(outputGradient));
        if (c % ChannelBlock != 0 || k % ChannelBlock != 0)
            throw new ArgumentException($"Both channel counts must be multiples of {ChannelBlock}; got {c} → {k}.", nameof(input));
        var x = MemoryFormat.IsChannelsLast(input) ? input : MemoryFormat.ToChannelsLast(input);
        var dy = MemoryFormat.IsChannelsLast(outputGradient) ? outputGradient : MemoryFormat.ToChannelsLast(outputGradient);
        float* source = TensorData.ChannelsLastFloats(x), gradient = TensorData.ChannelsLastFloats(dy);
        var tiling = TilingOf(rows, columns);
        int positions = rows.Size * columns.Size;
        long tiles = grid.Tiles;
        long chunk = Math.Clamp(chunkBytes / (positions * sizeof(float) * (c + k)), 16, Math.Max(16, tiles));
        long chunks = (tiles + chunk - 1) / chunk;
        // One run of chunks and one set of sums (36·K·C numbers for 3×3 kernels) per thread, added up in a fixed order, so
        // that the result does not depend on which thread got there first (cut finer, the sums would take that much more
        // memory per part).
        int parts = (int)Math.Min(chunks, CpuTeam.Size);
        var sums = zeros(parts, positions, k, c);
        float* partSums = TensorData.Floats(sums);
        // Nothing in a part calls TorchSharp: the parts may run on OpenMP's threads, outside .NET's dispose scopes.
        CpuTeam.Run(parts, part =>
        {
            Scratch.ForThisThread(positions * chunk * c, positions * chunk * k, out float* values, out float* spread);
            float* own = partSums + part * positions * k * c;
            for (long index = chunks * part / parts, end = chunks * (part + 1) / parts; index < end; index++)
            {
                long first = index * chunk, count = Math.Min(chunk, tiles - first);
                TransformInput(tiling, source, values, grid, first, count, chunk);
                TransformGradient(gradient, spread, grid, first, count, chunk, k);
                MklBatch.AddTransposedProducts(positions, k, c, count, spread, chunk * k, k, values, chunk * c, c, own);
            }
        });
        var total = sums.select(0, 0);
        using (var one = 1.0.ToScalar())
            for (int part = 1; part < parts; part++) total.add_(sums.select(0, part), one);
        // Gᵀ on both axes: the kernel transform [positions, kh·kw] turned, times the sums [positions, K·C].
        var taps = KernelTransform(rows, columns).t().mm(total.view(positions, k * c));
        return taps.view(kernelHeight, kernelWidth, k, c).permute(2, 0, 1, 3).contiguous().permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    // A·dy·Aᵀ for the output-gradient tiles of tiles [start, start + count): position p of tile t goes to spread[p, t - start, :]
    // (outputs past the grid's edge count as zeros).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformGradient(float* gradient, float* spread, Grid grid, long start, long count, long stride, long channels)
    {
        Axis rows = grid.Rows, columns = grid.Columns;
        int mr = rows.Outputs, mc = columns.Outputs, ar = rows.Size, ac = columns.Size;
        var d = stackalloc Vector512<float>[mr * mc];
        var e = stackalloc Vector512<float>[ar * mc];
        var f = stackalloc Vector512<float>[ar * ac];
        long plane = stride * channels, rowStep = grid.OutWidth * channels;
        for (long t = 0; t < count; t++)
        {
            var (n, top, left) = grid.Origin(start + t);
            long row = top + rows.Padding, col = left + columns.Padding;
            long inRows = Math.Min(mr, grid.OutHeight - row), inColumns = Math.Min(mc, grid.OutWidth - col);
            bool whole = inRows == mr && inColumns == mc;
            float* corner = gradient + ((n * grid.OutHeight + row) * grid.OutWidth + col) * channels;
            float* into = spread + t * channels;
            for (long k = 0; k < channels; k += ChannelBlock)
            {
                for (int i = 0; i < mr; i++)
                    for (int j = 0; j < mc; j++)
                        d[i * mc + j] = whole || (i < inRows && j < inColumns) ? Vector512.Load(corner + i * rowStep + j * channels + k) : Vector512<float>.Zero;
                // Down the columns (m → Size rows), then along the rows (m → Size columns).
                for (int j = 0; j < mc; j++) Spread(rows, d + j, mc, e + j, mc);
                for (int a = 0; a < ar; a++) Spread(columns, e + a * mc, 1, f + a * ac, 1);
                for (int p = 0; p < ar * ac; p++) Vector512.Store(f[p], into + p * plane + k);
            }
        }
    }

    // y = A·x along one axis, x of Outputs vectors and y of Size, each `step` apart: written out for 4 outputs on 0, ±1, ±2,
    // ∞ (F(4, 3)) and for 1 and 2 outputs on any points; from the sparse rows otherwise.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Spread(Axis axis, Vector512<float>* x, int xStep, Vector512<float>* y, int yStep)
    {
        switch (axis.Outputs)
        {
            case 1:
                y[0] = x[0];
                return;
            case 2:
            {
                Vector512<float> x0 = x[0], x1 = x[xStep];
                int finite = axis.Size - 1;
                for (int k = 0; k < finite; k++) y[k * yStep] = x0 + Vector512.Create((float)Axis.Point(k)) * x1;
                y[finite * yStep] = x1;
                return;
            }

            case 4 when axis.Size == 6:
            {
                Vector512<float> x0 = x[0], x1 = x[xStep], x2 = x[2 * xStep], x3 = x[3 * xStep];
                Vector512<float> even = x0 + x2, odd = x1 + x3;
                Vector512<float> even4 = x0 + Vector512.Create(4f) * x2, odd4 = (x1 + x1) + Vector512.Create(8f) * x3;
                y[0] = x0;
                y[yStep] = even + odd;
                y[2 * yStep] = even - odd;
                y[3 * yStep] = even4 + odd4;
                y[4 * yStep] = even4 - odd4;
                y[5 * yStep] = x3;
                return;
            }

            default:
            {
                var column = stackalloc Vector512<float>[axis.Outputs];
                for (int i = 0; i < axis.Outputs; i++) column[i] = x[i * xStep];
                for (int k = 0; k < axis.Size; k++) y[k * yStep] = axis.GradientTransform.Apply(k, column);
                return;
            }
        }
    }
}
