using System.Runtime.Intrinsics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// A 3×3 convolution with stride 1 computed by Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray, 2016): every
/// 2×2 block of outputs comes from a 4×4 tile of the input through 16 products of transformed values instead of 36.
/// For the fast engine's inference copies, on CPUs with 512-bit vectors.
/// </summary>
/// <remarks>
/// <para>The 16 products of a tile become 16 matrix products over all tiles, <c>[tiles, C] × [C, K]</c>, which MKL
/// runs at the same rate as the im2col products of an ordinary convolution, so the 2.25× fewer multiplications are
/// mostly kept: 1.4–2.2× faster than libtorch's convolution per layer on a Zen 5 core pair (batch 1 and 8, 8×8 to
/// 147×147 grids). The transforms are additions on 16 channels at a time, done here on the channels-last input and
/// output, and the tiles go through in chunks whose transformed values (about <see cref="ChunkBytes"/>) stay in a
/// core's cache between the transform, the product and the inverse transform. Each core takes its own run of chunks
/// (<see cref="CpuTeam"/>).</para>
/// <para>The transformed weights are computed once, in float64, when the layer is first run; the weights must not change
/// after that (the fast engine's copies never do). The outputs differ from libtorch's by float32 rounding (about
/// 5·10⁻⁷ of the largest output per layer).</para>
/// </remarks>
internal sealed unsafe class WinogradConvolution : IDisposable
{
    /// <summary>Channels are transformed in blocks of this many (one 512-bit vector); both channel counts must be multiples of it.</summary>
    public const long ChannelBlock = 16;

    /// <summary>About how many bytes of transformed input and product one chunk of tiles holds.</summary>
    public const long ChunkBytes = 256L << 10;

    // Winograd's F(2, 3) matrices: the input transform Bᵀ, the weight transform G and the output transform Aᵀ are
    // written out as additions below, G as a tensor here.
    private static readonly double[] WeightTransform = [1, 0, 0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0, 0, 1];

    private readonly Tensor transformed;
    private readonly Tensor bias;
    private readonly long inChannels;
    private readonly long outChannels;
    private readonly long padding;

    private WinogradConvolution(Tensor transformed, Tensor bias, long inChannels, long outChannels, long padding)
    {
        this.transformed = transformed;
        this.bias = bias;
        this.inChannels = inChannels;
        this.outChannels = outChannels;
        this.padding = padding;
    }

    /// <summary>
    /// Whether <paramref name="conv"/> on <paramref name="input"/> can run here: a 3×3 kernel with stride 1, no dilation
    /// or groups, zero padding of 0 or 1 on every side, channel counts that are multiples of <see cref="ChannelBlock"/>,
    /// a channels-last float32 CPU input with nothing needing a gradient, and a CPU whose 512-bit vectors are in hardware.
    /// </summary>
    public static bool Applies(Conv2d conv, Tensor input)
    {
        var weight = conv.weight;
        if (!Vector512.IsHardwareAccelerated || weight is null || input.dim() != 4 || input.device_type != DeviceType.CPU) return false;
        if (input.dtype != ScalarType.Float32 || weight.dtype != ScalarType.Float32) return false;
        if (weight.shape[2] != 3 || weight.shape[3] != 3 || conv.stride.Any(s => s != 1) || conv.dilation.Any(d => d != 1)) return false;
        if (conv.groups != 1 || conv.padding_type is not null || conv.padding_mode != PaddingModes.Zeros) return false;
        long pad = conv.padding?[0] ?? 0;
        if (pad is not (0 or 1) || (conv.padding?[1] ?? 0) != pad) return false;
        if (weight.shape[0] % ChannelBlock != 0 || weight.shape[1] % ChannelBlock != 0) return false;
        if (input.shape[2] + 2 * pad < 3 || input.shape[3] + 2 * pad < 3) return false;
        if (is_grad_enabled() && (input.requires_grad || weight.requires_grad)) return false;
        return MemoryFormat.IsChannelsLast(input);
    }

    /// <summary>Transforms <paramref name="conv"/>'s weights (see <see cref="Applies"/> for the convolutions it takes).</summary>
    public static WinogradConvolution Prepare(Conv2d conv)
    {
        var weight = conv.weight!;
        long outChannels = weight.shape[0], inChannels = weight.shape[1];
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = tensor(WeightTransform, [4, 3], ScalarType.Float64);
        // U = G·w·Gᵀ per (out, in) pair, laid out as 16 matrices [in, out], one per tile position.
        var u = g.matmul(weight.to(ScalarType.Float64).contiguous()).matmul(g.t());
        var transformed = u.permute(2, 3, 1, 0).reshape(16, inChannels, outChannels).to(ScalarType.Float32).contiguous();
        var bias = conv.bias is { } b ? b.to(ScalarType.Float32).contiguous().clone() : zeros(outChannels);
        long padding = conv.padding?[0] ?? 0;
        return new WinogradConvolution(transformed.DetachFromDisposeScope(), bias.DetachFromDisposeScope(), inChannels, outChannels, padding);
    }

    /// <summary>
    /// The convolution of <paramref name="input"/> (channels-last, as <see cref="Applies"/> checks), in channels-last
    /// layout; with <paramref name="relu"/>, followed by a ReLU.
    /// </summary>
    public Tensor Forward(Tensor input, bool relu)
    {
        if (input.shape[1] != inChannels)
            throw new ArgumentException($"The input has {input.shape[1]} channels; this convolution takes {inChannels}.", nameof(input));
        var grid = new Grid(input.shape[0], input.shape[2], input.shape[3], padding);
        var output = empty([grid.Batch, grid.OutHeight, grid.OutWidth, outChannels]);
        using var nhwc = input.permute(0, 2, 3, 1);
        float* source = Data(nhwc), target = Data(output), shift = Data(bias);

        long chunk = Math.Max(16, ChunkBytes / (16 * sizeof(float) * (inChannels + outChannels)));
        int parts = (int)Math.Clamp(grid.Tiles / chunk, 1, CpuTeam.Size);
        CpuTeam.Run(parts, part =>
        {
            long first = grid.Tiles * part / parts, end = grid.Tiles * (part + 1) / parts;
            using var values = empty(16, chunk, inChannels);
            float* buffer = Data(values);
            for (long start = first; start < end; start += chunk)
            {
                long count = Math.Min(chunk, end - start);
                TransformInput(source, buffer, grid, start, count, chunk, inChannels);
                using var used = count == chunk ? values.alias() : values.narrow(1, 0, count);
                using var products = used.bmm(transformed);
                TransformOutput(Data(products), shift, target, grid, start, count, outChannels, relu);
            }
        });
        return output.permute(0, 3, 1, 2);
    }

    /// <summary>Frees the transformed weights.</summary>
    public void Dispose()
    {
        transformed.Dispose();
        bias.Dispose();
    }

    private static float* Data(Tensor t)
    {
        fixed (byte* p = t.bytes) return (float*)p;
    }

    // Bᵀ·d·B for the tiles [start, start + count): tile position (a, b) of tile t goes to values[4a + b, t - start, :].
    private static void TransformInput(float* source, float* values, Grid grid, long start, long count, long stride, long channels)
    {
        var d = stackalloc Vector512<float>[16];
        var at = stackalloc long[16];
        long plane = stride * channels;
        for (long t = 0; t < count; t++)
        {
            var (n, top, left) = grid.Origin(start + t);
            for (int a = 0; a < 4; a++)
            {
                for (int b = 0; b < 4; b++)
                {
                    long row = top + a, column = left + b;
                    bool inside = row >= 0 && row < grid.Height && column >= 0 && column < grid.Width;
                    at[4 * a + b] = inside ? ((n * grid.Height + row) * grid.Width + column) * channels : -1;
                }
            }

            float* into = values + t * channels;
            for (long c = 0; c < channels; c += ChannelBlock)
            {
                for (int k = 0; k < 16; k++) d[k] = at[k] >= 0 ? Vector512.Load(source + at[k] + c) : Vector512<float>.Zero;
                // Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], first down the columns, then along the rows.
                for (int b = 0; b < 4; b++)
                {
                    Vector512<float> d0 = d[b], d1 = d[4 + b], d2 = d[8 + b], d3 = d[12 + b];
                    d[b] = d0 - d2;
                    d[4 + b] = d1 + d2;
                    d[8 + b] = d2 - d1;
                    d[12 + b] = d1 - d3;
                }

                for (int a = 0; a < 4; a++)
                {
                    Vector512<float> e0 = d[4 * a], e1 = d[4 * a + 1], e2 = d[4 * a + 2], e3 = d[4 * a + 3];
                    float* o = into + 4 * a * plane + c;
                    Vector512.Store(e0 - e2, o);
                    Vector512.Store(e1 + e2, o + plane);
                    Vector512.Store(e2 - e1, o + 2 * plane);
                    Vector512.Store(e1 - e3, o + 3 * plane);
                }
            }
        }
    }

    // Aᵀ·m·A plus the bias for the tiles [start, start + count), from products[16, count, K] into the NHWC output.
    private static void TransformOutput(float* products, float* shift, float* output, Grid grid, long start, long count, long channels, bool relu)
    {
        var m = stackalloc Vector512<float>[16];
        long plane = count * channels;
        for (long t = 0; t < count; t++)
        {
            var (n, top, left) = grid.Origin(start + t);
            long row = top + grid.Padding, column = left + grid.Padding;
            bool secondRow = row + 1 < grid.OutHeight, secondColumn = column + 1 < grid.OutWidth;
            float* first = output + ((n * grid.OutHeight + row) * grid.OutWidth + column) * channels;
            float* from = products + t * channels;
            for (long c = 0; c < channels; c += ChannelBlock)
            {
                for (int k = 0; k < 16; k++) m[k] = Vector512.Load(from + k * plane + c);
                // Aᵀ = [1 1 1 0; 0 1 -1 -1], first down the columns, then along the rows.
                for (int b = 0; b < 4; b++)
                {
                    Vector512<float> m0 = m[b], m1 = m[4 + b], m2 = m[8 + b], m3 = m[12 + b];
                    m[b] = m0 + m1 + m2;
                    m[4 + b] = m1 - m2 - m3;
                }

                var offset = Vector512.Load(shift + c);
                for (int r = 0; r < (secondRow ? 2 : 1); r++)
                {
                    Vector512<float> s0 = m[4 * r], s1 = m[4 * r + 1], s2 = m[4 * r + 2], s3 = m[4 * r + 3];
                    var y0 = s0 + s1 + s2 + offset;
                    var y1 = s1 - s2 - s3 + offset;
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

    /// <summary>The tiling of a batch: 2×2 output blocks, each from the 4×4 input tile starting one padding up and left.</summary>
    private readonly record struct Grid(long Batch, long Height, long Width, long Padding)
    {
        public long OutHeight => Height + 2 * Padding - 2;

        public long OutWidth => Width + 2 * Padding - 2;

        private long TileRows => (OutHeight + 1) / 2;

        private long TileColumns => (OutWidth + 1) / 2;

        public long Tiles => Batch * TileRows * TileColumns;

        /// <summary>Tile <paramref name="t"/>'s image and the input row and column of its top-left corner (negative in the padding).</summary>
        public (long Image, long Top, long Left) Origin(long t)
        {
            long perImage = TileRows * TileColumns, within = t % perImage;
            return (t / perImage, 2 * (within / TileColumns) - Padding, 2 * (within % TileColumns) - Padding);
        }
    }
}
