using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// The product of a few rows of activations and a layer's weights, with the weights laid out once, when an inference
/// copy is prepared, in panels of <see cref="Width"/> output channels that the kernel reads front to back; the bias, and
/// a ReLU or a scaled residual sum, are applied as each block of output is written.
/// </summary>
/// <remarks>
/// For the small grids of batch-1 inference (an Inception network's last stages multiply 9 to a few hundred rows by
/// weights of up to 2048 × 448 values) libtorch's products spend as long copying the weights into their own panels on
/// every call as they spend multiplying. Here the weights are already in panel order: [panels][inputs][16], a panel's 16
/// output channels next to each other for each input channel, zero-padded where the output channels do not fill the
/// last panel. A block of up to six rows is multiplied by one panel in 256-bit registers (six rows × two vectors of
/// eight channels, twelve accumulators), each step broadcasting one input value per row and reading the panel's next 16
/// weights, so neither matrix is copied. On CPUs with AVX-512 the kernels of <c>PanelProduct.Wide.cs</c> take two panels at
/// a time in 512-bit registers instead. The outputs differ from libtorch's by float32 rounding (another order of the
/// sums).
/// </remarks>
internal sealed unsafe partial class PanelProduct : IDisposable
{
    /// <summary>Output channels per panel: two 256-bit vectors of float32.</summary>
    public const int Width = 16;

    /// <summary>Rows per block of the kernel.</summary>
    public const int BlockRows = 6;

    /// <summary>The inputs of one chunk of rows stay within this many bytes (half of a Zen 3 core's L2 cache).</summary>
    public const long ChunkBytes = 256L << 10;

    /// <summary>A convolution whose windows take at most this many bytes copies them all at once, before multiplying.</summary>
    public const long SharedColumnBytes = 1L << 20;

    private readonly Tensor panels;
    private readonly Tensor bias;
    private Kernel2d? kernel;

    private PanelProduct(Tensor panels, Tensor bias, long inputs, long outputs)
    {
        this.panels = panels;
        this.bias = bias;
        Inputs = inputs;
        Outputs = outputs;
    }

    /// <summary>
    /// Whether this product runs the 512-bit kernels (two panels at a time): by default where the CPU has them
    /// (<see cref="WideSupported"/>); false runs the 256-bit ones, as on AVX2 machines, to compare the two.
    /// </summary>
    public bool Wide
    {
        get => wide;
        set
        {
            if (value && !WideSupported) throw new PlatformNotSupportedException("The 512-bit panel kernels need AVX-512.");
            wide = value;
        }
    }

    private bool wide = WideSupported;

    /// <summary>Whether the CPU runs the kernel: 256-bit vectors with fused multiply-add.</summary>
    public static bool Supported { get; } = Avx.IsSupported && Fma.IsSupported;

    /// <summary>
    /// Whether the fast engine uses the panel product by default for the convolutions Winograd's method does not take:
    /// wherever the CPU runs it, on AVX2 machines in 256-bit registers and on AVX-512 ones in 512-bit registers
    /// (<see cref="WideSupported"/>). Measured against libtorch's products (MKL's AVX-512 path) on a Zen 5 core pair, the
    /// 512-bit kernels made the fast engine 4–32 % faster (docs/benchmarks.md, twenty-first session).
    /// </summary>
    public static bool Pays { get; } = Supported;

    /// <summary>
    /// Whether Winograd's tile products run on the panel product by default rather than MKL's batch: on AVX2 machines
    /// only. On the Zen 5 core pair MKL's AVX-512 batch was as fast or faster there (the tile products are many rows by
    /// small weights, where packing the weights costs MKL little).
    /// </summary>
    public static bool PaysForTiles { get; } = Supported && !WideSupported;

    /// <summary>The length of a row of the input (the weights' inputs).</summary>
    public long Inputs { get; }

    /// <summary>The output channels.</summary>
    public long Outputs { get; }

    /// <summary>
    /// Lays out <paramref name="weight"/> ([outputs, inputs], float32 on the CPU, any strides) in panels, with
    /// <paramref name="bias"/> ([outputs]) or none.
    /// </summary>
    public static PanelProduct From(Tensor weight, Tensor? bias)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.dim() != 2 || weight.dtype != ScalarType.Float32 || weight.device_type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException($"The weights must be a float32 CPU matrix; got {weight.dtype} of shape [{string.Join(", ", weight.shape)}].", nameof(weight));
        long outputs = weight.shape[0], inputs = weight.shape[1];
        long panelCount = (outputs + Width - 1) / Width;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        // Written value by value into the one new tensor: a reordering copy through libtorch would hold two more
        // copies of the weights for a moment, layer after layer, and the allocator keeps what they leave behind
        // (inception_resnet_v2's engine was 200 MB larger so).
        var rows = weight.detach().contiguous();
        var laidOut = zeros(panelCount * inputs * Width);
        float* from = TensorData.Floats(rows), to = TensorData.Floats(laidOut);
        for (long o = 0; o < outputs; o++)
        {
            float* panel = to + o / Width * inputs * Width + o % Width;
            float* row = from + o * inputs;
            for (long k = 0; k < inputs; k++) panel[k * Width] = row[k];
        }

        var shift = bias is null ? zeros(outputs) : bias.detach().to(ScalarType.Float32).contiguous().clone();
        return new PanelProduct(laidOut.DetachFromDisposeScope(), shift.DetachFromDisposeScope(), inputs, outputs);
    }

    /// <summary>
    /// y[r, j] = x[r, ·]·w[j, ·] + bias[j] for the <paramref name="rows"/> rows of <paramref name="x"/> (rows
    /// <paramref name="ldx"/> apart), written to <paramref name="y"/> (rows <paramref name="ldy"/> apart); with
    /// <paramref name="relu"/> the ReLU of that, and where <paramref name="residual"/> is given (rows
    /// <paramref name="ldr"/> apart) residual[r, j] + <paramref name="scale"/>·(…) instead. The work is shared among the
    /// cores by panels of output channels where there are at least as many output channels as rows (or all the rows fit
    /// in one chunk), else by chunks of rows.
    /// </summary>
    public void Multiply(float* x, long rows, long ldx, float* y, long ldy, bool relu, float* residual = null, long ldr = 0, float scale = 1f)
    {
        if (!Supported) throw new PlatformNotSupportedException("The panel product needs AVX2 with FMA.");
        var job = new Job(this, x, rows, ldx, y, ldy, relu, residual, ldr, scale, null);
        long panelCount = (Outputs + Width - 1) / Width;
        long blocks = (rows + BlockRows - 1) / BlockRows;
        // Rows are taken a chunk at a time, each chunk through every panel of the part, so that the chunk's inputs stay
        // in the core's L2 cache while the panels pass through.
        long chunk = Math.Clamp(ChunkBytes / (BlockRows * Inputs * sizeof(float)), 1, blocks);
        int cores = CpuTeam.Size;
        // Nothing in a part calls TorchSharp: the parts may run on OpenMP's threads, outside .NET's dispose scopes.
        if (panelCount >= cores && (blocks <= chunk || Outputs >= rows))
        {
            // Few rows (the weights are the larger matrix): the cores share out the panels.
            // The 512-bit kernels take two panels at a time: the parts begin at even panels.
            long step = Wide ? 2 : 1, units = (panelCount + step - 1) / step;
            int parts = CpuTeam.PartsFor(units);
            CpuTeam.Run(parts, part => job.Run(Math.Min(panelCount, step * (units * part / parts)), Math.Min(panelCount, step * (units * (part + 1) / parts)), 0, blocks, chunk));
        }
        else
        {
            ShareRows(job, panelCount, blocks, chunk);
        }
    }

    // Many rows: the cores share out the blocks of rows in equal parts of at most a chunk each where there are enough
    // chunks (whole chunks as parts left one core with 3 of inception_resnet_v2's 5 chunks of 17×17 rows at batch 1).
    private static void ShareRows(Job job, long panelCount, long blocks, long chunk)
    {
        int parts = CpuTeam.PartsFor(blocks, minimum: (blocks + chunk - 1) / chunk);
        CpuTeam.Run(parts, part => job.Run(0, panelCount, blocks * part / parts, blocks * (part + 1) / parts, chunk));
    }

    /// <summary>
    /// Whether <see cref="Convolution"/> takes <paramref name="conv"/> on this CPU: float32 CPU weights, zero padding given
    /// in numbers, no dilation or groups.
    /// </summary>
    public static bool TakesConvolution(Conv2d conv)
    {
        ArgumentNullException.ThrowIfNull(conv);
        var weight = conv.weight;
        if (!Supported || weight is null || weight.dim() != 4 || weight.dtype != ScalarType.Float32 || weight.device_type != TorchSharp.DeviceType.CPU) return false;
        if (conv.groups != 1 || conv.padding_type is not null || conv.padding_mode != TorchSharp.PaddingModes.Zeros) return false;
        return conv.dilation.All(d => d == 1);
    }

    /// <summary>
    /// Where <see cref="TakesConvolution"/> <paramref name="conv"/>: lays its weights out in <paramref name="product"/>
    /// (in the order of a window's values in a channels-last input: kernel row, kernel column, channel), then frees the
    /// convolution's weight. Returns whether it did.
    /// </summary>
    public static bool ReplaceConvolution(Conv2d conv, ref PanelProduct? product)
    {
        ArgumentNullException.ThrowIfNull(conv);
        if (product is not null) return true;
        if (!TakesConvolution(conv)) return false;
        var weight = conv.weight!;
        long outputs = weight.shape[0], channels = weight.shape[1], kh = weight.shape[2], kw = weight.shape[3];
        using (NewDisposeScope())
            product = From(weight.detach().permute(0, 2, 3, 1).reshape(outputs, kh * kw * channels), conv.bias);
        // A 1×1 kernel with stride 1 and no padding reads the input's rows as they are (see Pointwise).
        if (!TakesPointwise(conv))
            product.kernel = new Kernel2d(channels, kh, kw, conv.stride[0], conv.stride[1], conv.padding?[0] ?? 0, conv.padding?[1] ?? 0);
        conv.weight = new TorchSharp.Modules.Parameter(empty(0), requires_grad: false);
        weight.Dispose();
        return true;
    }

    /// <summary>
    /// The convolution of <paramref name="input"/> (float32 on the CPU, N×C×H×W; made channels-last where it is not) by
    /// these weights (laid out by <see cref="ReplaceConvolution"/>), channels-last; with <paramref name="relu"/>, followed
    /// by a ReLU. The windows are copied into rows a chunk at a time by the core that multiplies them, so that no
    /// batch-sized im2col buffer is ever made.
    /// </summary>
    public Tensor Convolution(Tensor input, bool relu)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (kernel is not { } k) return Pointwise(input, relu);
        if (input.dim() != 4 || input.size(1) != k.Channels)
            throw new ArgumentException($"The convolution takes batches of {k.Channels}-channel images; got a tensor of shape [{string.Join(", ", input.shape)}].", nameof(input));
        if (input.dtype != ScalarType.Float32 || input.device_type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException($"The convolution takes float32 tensors on the CPU; got {input.dtype} on {input.device}.", nameof(input));
        var window = new Window(k, input.size(0), input.size(2), input.size(3));
        if (window.OutHeight < 1 || window.OutWidth < 1)
            throw new ArgumentException($"A {input.size(2)}×{input.size(3)} input is smaller than the {k.Height}×{k.Width} kernel.", nameof(input));
        var output = MemoryFormat.EmptyChannelsLast(window.Batch, Outputs, window.OutHeight, window.OutWidth);
        long rows = window.Rows;
        if (rows == 0) return output;
        using var converted = MemoryFormat.IsChannelsLast(input) ? null : MemoryFormat.ToChannelsLast(input);
        float* source = TensorData.ChannelsLastFloats(converted ?? input), target = TensorData.ChannelsLastFloats(output);
        if (rows * Inputs * sizeof(float) <= SharedColumnBytes)
        {
            // Few windows: copied once, then multiplied as any product (shared among the cores by panels where the
            // weights are the larger matrix).
            using var columns = empty(rows, Inputs);
            window.Columns(source, 0, rows, TensorData.Floats(columns));
            Multiply(TensorData.Floats(columns), rows, Inputs, target, Outputs, relu);
        }
        else
        {
            if (!Supported) throw new PlatformNotSupportedException("The panel product needs AVX2 with FMA.");
            var job = new Job(this, source, rows, Inputs, target, Outputs, relu, null, 0, 1f, window);
            long panelCount = (Outputs + Width - 1) / Width;
            long blocks = (rows + BlockRows - 1) / BlockRows;
            long chunk = Math.Clamp(ChunkBytes / (BlockRows * Inputs * sizeof(float)), 1, blocks);
            ShareRows(job, panelCount, blocks, chunk);
        }

        return output;
    }

    /// <summary>
    /// Whether <see cref="Pointwise"/> takes <paramref name="conv"/> on this CPU: float32 CPU weights of a 1×1 kernel with
    /// stride 1 and no padding, dilation or groups.
    /// </summary>
    public static bool TakesPointwise(Conv2d conv)
    {
        ArgumentNullException.ThrowIfNull(conv);
        var weight = conv.weight;
        if (!Supported || weight is null || weight.dim() != 4 || weight.dtype != ScalarType.Float32 || weight.device_type != TorchSharp.DeviceType.CPU) return false;
        if (weight.shape[2] != 1 || weight.shape[3] != 1 || conv.groups != 1 || conv.padding_type is not null) return false;
        if (conv.stride.Any(s => s != 1) || conv.dilation.Any(d => d != 1)) return false;
        return conv.padding is not { } padding || padding.All(p => p == 0);
    }

    /// <summary>
    /// Where <see cref="TakesPointwise"/> <paramref name="conv"/>: lays its weights out in <paramref name="product"/>, then
    /// frees the convolution's weight (an empty one takes its place). Returns whether it did.
    /// </summary>
    public static bool ReplacePointwise(Conv2d conv, ref PanelProduct? product)
    {
        ArgumentNullException.ThrowIfNull(conv);
        // A convolution the pointwise path takes gets no window from ReplaceConvolution: the same panels.
        return product is not null || (TakesPointwise(conv) && ReplaceConvolution(conv, ref product));
    }

    /// <summary>
    /// The 1×1 convolution of <paramref name="input"/> (float32 on the CPU, N×C×H×W; made channels-last where it is not)
    /// by these weights, channels-last; with <paramref name="relu"/>, followed by a ReLU.
    /// </summary>
    public Tensor Pointwise(Tensor input, bool relu)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4 || input.size(1) != Inputs)
            throw new ArgumentException($"The convolution takes batches of {Inputs}-channel images; got a tensor of shape [{string.Join(", ", input.shape)}].", nameof(input));
        if (input.dtype != ScalarType.Float32 || input.device_type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException($"The convolution takes float32 tensors on the CPU; got {input.dtype} on {input.device}.", nameof(input));
        long batch = input.size(0), height = input.size(2), width = input.size(3);
        var output = MemoryFormat.EmptyChannelsLast(batch, Outputs, height, width);
        long rows = batch * height * width;
        if (rows > 0)
        {
            using var converted = MemoryFormat.IsChannelsLast(input) ? null : MemoryFormat.ToChannelsLast(input);
            Multiply(TensorData.ChannelsLastFloats(converted ?? input), rows, Inputs, TensorData.ChannelsLastFloats(output), Outputs, relu);
        }

        return output;
    }

    /// <summary>
    /// <paramref name="input"/> + <paramref name="scale"/> · (the 1×1 convolution of <paramref name="branches"/> by these
    /// weights), channels-last: the close of an Inception-ResNet block, the input added as each block of output is
    /// written; with <paramref name="relu"/>, the ReLU of that. Both tensors are float32 on the CPU with the same batch and
    /// grid (made channels-last where they are not).
    /// </summary>
    public Tensor PointwiseResidual(Tensor branches, Tensor input, float scale, bool relu = false)
    {
        ArgumentNullException.ThrowIfNull(branches);
        ArgumentNullException.ThrowIfNull(input);
        if (branches.dim() != 4 || branches.size(1) != Inputs || input.dim() != 4 || input.size(1) != Outputs
            || input.size(0) != branches.size(0) || input.size(2) != branches.size(2) || input.size(3) != branches.size(3))
            throw new ArgumentException($"The projection takes {Inputs} channels to the input's {Outputs} on the same grid; got [{string.Join(", ", branches.shape)}] and [{string.Join(", ", input.shape)}].", nameof(branches));
        if (branches.dtype != ScalarType.Float32 || input.dtype != ScalarType.Float32 || branches.device_type != TorchSharp.DeviceType.CPU || input.device_type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException("The projection takes float32 tensors on the CPU.", nameof(branches));
        long batch = input.size(0), height = input.size(2), width = input.size(3);
        var output = MemoryFormat.EmptyChannelsLast(batch, Outputs, height, width);
        long rows = batch * height * width;
        if (rows > 0)
        {
            using var from = MemoryFormat.IsChannelsLast(branches) ? null : MemoryFormat.ToChannelsLast(branches);
            using var sum = MemoryFormat.IsChannelsLast(input) ? null : MemoryFormat.ToChannelsLast(input);
            Multiply(TensorData.ChannelsLastFloats(from ?? branches), rows, Inputs, TensorData.ChannelsLastFloats(output), Outputs, relu,
                TensorData.ChannelsLastFloats(sum ?? input), Outputs, scale);
        }

        return output;
    }

    /// <summary>Frees the panels.</summary>
    public void Dispose()
    {
        panels.Dispose();
        bias.Dispose();
    }

    private sealed class Job(PanelProduct owner, float* x, long rows, long ldx, float* y, long ldy, bool relu, float* residual, long ldr, float scale, Window? window)
    {
        private readonly float* x = x;
        private readonly float* y = y;
        private readonly float* residual = residual;
        private readonly float* panels = TensorData.Floats(owner.panels);
        private readonly float* bias = TensorData.Floats(owner.bias);

        // Panels [firstPanel, endPanel) for row blocks [firstBlock, endBlock), `chunk` blocks of rows at a time. Compiled
        // fully optimised from the first call, as the kernel is: a batch-1 pass calls it a few times per layer only, so
        // tiered compilation would leave the first passes of a session on unoptimised code.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(long firstPanel, long endPanel, long firstBlock, long endBlock, long chunk)
        {
            long inputs = owner.Inputs, outputs = owner.Outputs;
            var epilogue = new Epilogue(relu, residual, ldr, scale);
            float* sums = stackalloc float[2 * BlockRows * Width];
            long ahead = AheadFor(rows);
            bool wide = owner.Wide;
            for (long chunkStart = firstBlock; chunkStart < endBlock; chunkStart += chunk)
            {
                long chunkEnd = Math.Min(endBlock, chunkStart + chunk);
                // With a window, x is the channels-last input: this chunk's windows are copied into rows first.
                float* rowsFrom = x;
                long firstRow = 0;
                if (window is not null)
                {
                    firstRow = chunkStart * BlockRows;
                    long count = Math.Min(rows, chunkEnd * BlockRows) - firstRow;
                    rowsFrom = Columns.ForThisThread(count * inputs);
                    window.Columns(x, firstRow, count, rowsFrom);
                }

                for (long p = firstPanel; p < endPanel; p += wide && p + 1 < endPanel ? 2 : 1)
                {
                    float* panel = panels + p * inputs * Width;
                    long column = p * Width;
                    bool pair = wide && p + 1 < endPanel;
                    for (long block = chunkStart; block < chunkEnd; block++)
                    {
                        long row = block * BlockRows;
                        int count = (int)Math.Min(BlockRows, rows - row);
                        float* source = rowsFrom + (row - firstRow) * ldx;
                        if (pair) BlockPair(source, ldx, count, panel, inputs, ahead, sums, sums + BlockRows * Width);
                        else if (wide) BlockWide(source, ldx, count, panel, inputs, ahead, sums);
                        else Block(source, ldx, count, panel, inputs, ahead, sums);
                        for (long q = 0; q < (pair ? 2 : 1); q++)
                        {
                            long at = column + q * Width;
                            int columns = (int)Math.Min(Width, outputs - at);
                            var target = y + row * ldy + at;
                            var sum = epilogue.At(row, at);
                            float* from = sums + q * BlockRows * Width;
                            for (int r = 0; r < count; r++) Store(from + r * Width, target + r * ldy, bias + at, columns, sum, r);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// y[r, j] = x[r, ·]·w[·, j], nothing added, for the <paramref name="rows"/> rows of <paramref name="x"/> (rows
    /// <paramref name="ldx"/> apart) and weights already in panels ([outputs / 16][inputs][16], <paramref name="outputs"/> a
    /// multiple of <see cref="Width"/>), on the calling thread: the products of Winograd's tile positions, whose
    /// transformed weights are laid out so once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void MultiplyPanels(float* x, long rows, long ldx, float* panels, long inputs, long outputs, float* y, long ldy, bool wide)
    {
        if (wide && !WideSupported) throw new PlatformNotSupportedException("The 512-bit panel kernels need AVX-512.");
        float* sums = stackalloc float[2 * BlockRows * Width];
        long ahead = AheadFor(rows);
        for (long column = 0; column < outputs; column += Width)
        {
            float* panel = panels + column * inputs;
            bool pair = wide && column + Width < outputs;
            for (long row = 0; row < rows; row += BlockRows)
            {
                int count = (int)Math.Min(BlockRows, rows - row);
                if (pair) BlockPair(x + row * ldx, ldx, count, panel, inputs, ahead, sums, sums + BlockRows * Width);
                else if (wide) BlockWide(x + row * ldx, ldx, count, panel, inputs, ahead, sums);
                else Block(x + row * ldx, ldx, count, panel, inputs, ahead, sums);
                var target = y + row * ldy + column;
                for (long r = 0; r < count; r++)
                {
                    Avx.Store(target + r * ldy, Avx.LoadVector256(sums + r * Width));
                    Avx.Store(target + r * ldy + 8, Avx.LoadVector256(sums + r * Width + 8));
                    if (!pair) continue;
                    Avx.Store(target + r * ldy + Width, Avx.LoadVector256(sums + (BlockRows + r) * Width));
                    Avx.Store(target + r * ldy + Width + 8, Avx.LoadVector256(sums + (BlockRows + r) * Width + 8));
                }
            }

            if (pair) column += Width;
        }
    }

    // What happens to a block's sums as they are written: bias, then ReLU or residual + scale·(…).
    private readonly struct Epilogue(bool relu, float* residual, long ldr, float scale)
    {
        public readonly bool Relu = relu;
        public readonly float* Residual = residual;
        public readonly long Ldr = ldr;
        public readonly float Scale = scale;

        public Epilogue At(long row, long column) => Residual is null ? this : new Epilogue(Relu, Residual + row * Ldr + column, Ldr, Scale);
    }

    // A block of `count` rows (1 to 6, `ldx` apart) times one panel; the sums go to `sums` ([count][16]). Five or six rows
    // take the six-row kernel, three or four the four-row one and one or two the two-row one, each repeating its block's
    // last row where the rows fall short: a 3×3 grid's nine rows cost 6 + 4 rows of work instead of 6 + 6, a 2×2 grid of
    // Winograd tiles 4 instead of 6. With `ahead` 0 the kernels run in their form without a prefetch instruction.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block(float* source, long ldx, int count, float* panel, long inputs, long ahead, float* sums)
    {
        if (ahead > 0) Block<Prefetch>(source, ldx, count, panel, inputs, ahead, sums);
        else Block<NoPrefetch>(source, ldx, count, panel, inputs, 0, sums);
    }

    // The block by the kernels compiled for one prefetch policy (see IWeightFetch).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block<TFetch>(float* source, long ldx, int count, float* panel, long inputs, long ahead, float* sums)
        where TFetch : struct, IWeightFetch
    {
        long last = count - 1;
        if (count > 4)
            Kernel<TFetch>(source, source + ldx, source + 2 * ldx, source + 3 * ldx, source + 4 * ldx, source + Math.Min(5, last) * ldx, panel, inputs, ahead, sums);
        else if (count > 2)
            Kernel4<TFetch>(source, source + ldx, source + 2 * ldx, source + Math.Min(3, last) * ldx, panel, inputs, ahead, sums);
        else
            Kernel2<TFetch>(source, source + last * ldx, panel, inputs, ahead, sums);
    }

    // What a kernel does once per inner step about the weights `ahead` of the current ones: ask for them, or nothing.
    private interface IWeightFetch
    {
        static abstract void Ahead(float* weights);
    }

    private struct Prefetch : IWeightFetch
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Ahead(float* weights) => Sse.Prefetch0(weights);
    }

    private struct NoPrefetch : IWeightFetch
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Ahead(float* weights)
        {
        }
    }

    /// <summary>At most this many rows read each weight so few times that the weights stream from memory: see <see cref="PrefetchFloats"/>.</summary>
    public const long FewRows = 32;

    /// <summary>
    /// How far ahead in its panel the kernel asks for the weights when a product has at most <see cref="FewRows"/> rows
    /// (2 KiB): such a product uses each weight a few times only, and at batch 1 the weights come straight from memory.
    /// 40 products of different 1792 × 192 weights in turn on two threads (medians): 9 rows 110–127 µs each with the
    /// hardware's prefetching alone, 88–102 µs so; 16 rows 146–159 against 143–144 µs; 25 rows 241 against 187–218 µs;
    /// 64 rows 393–430 against 384–391 µs. Whole networks at batch 1 moved within this machine's noise (±1 %).
    /// </summary>
    public const long PrefetchFloats = 512;

    // The prefetch distance for a product of `rows` rows: ahead for few rows, else 0: no prefetch instruction at all,
    // which in the inner step cost 13–16 % of a core's rate on products of many rows (one thread, 1020–4620 rows of
    // 256–2080 inputs: 82–86 GFLOP/s with it, 94–98 without).
    private static long AheadFor(long rows) => rows <= FewRows ? PrefetchFloats : 0;

    // Four rows times one panel in eight accumulators (enough to keep both FMA units busy); as Kernel otherwise.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4<TFetch>(float* x0, float* x1, float* x2, float* x3, float* panel, long inputs, long ahead, float* sums)
        where TFetch : struct, IWeightFetch
    {
        var a0 = Vector256<float>.Zero;
        Vector256<float> b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        Vector256<float> wa, wb, v;
        float* w = panel;
        long k = 0;
        for (long whole = inputs & ~3L; k < whole; k += 4, w += 4 * Width)
        {
            TFetch.Ahead(w + ahead);
            wa = Avx.LoadVector256(w);
            wb = Avx.LoadVector256(w + 8);
            v = Vector256.Create(x0[k]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            v = Vector256.Create(x2[k]); a2 = Fma.MultiplyAdd(v, wa, a2); b2 = Fma.MultiplyAdd(v, wb, b2);
            v = Vector256.Create(x3[k]); a3 = Fma.MultiplyAdd(v, wa, a3); b3 = Fma.MultiplyAdd(v, wb, b3);
            TFetch.Ahead(w + 16 + ahead);
            wa = Avx.LoadVector256(w + 16);
            wb = Avx.LoadVector256(w + 24);
            v = Vector256.Create(x0[k + 1]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k + 1]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            v = Vector256.Create(x2[k + 1]); a2 = Fma.MultiplyAdd(v, wa, a2); b2 = Fma.MultiplyAdd(v, wb, b2);
            v = Vector256.Create(x3[k + 1]); a3 = Fma.MultiplyAdd(v, wa, a3); b3 = Fma.MultiplyAdd(v, wb, b3);
            TFetch.Ahead(w + 32 + ahead);
            wa = Avx.LoadVector256(w + 32);
            wb = Avx.LoadVector256(w + 40);
            v = Vector256.Create(x0[k + 2]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k + 2]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            v = Vector256.Create(x2[k + 2]); a2 = Fma.MultiplyAdd(v, wa, a2); b2 = Fma.MultiplyAdd(v, wb, b2);
            v = Vector256.Create(x3[k + 2]); a3 = Fma.MultiplyAdd(v, wa, a3); b3 = Fma.MultiplyAdd(v, wb, b3);
            TFetch.Ahead(w + 48 + ahead);
            wa = Avx.LoadVector256(w + 48);
            wb = Avx.LoadVector256(w + 56);
            v = Vector256.Create(x0[k + 3]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k + 3]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            v = Vector256.Create(x2[k + 3]); a2 = Fma.MultiplyAdd(v, wa, a2); b2 = Fma.MultiplyAdd(v, wb, b2);
            v = Vector256.Create(x3[k + 3]); a3 = Fma.MultiplyAdd(v, wa, a3); b3 = Fma.MultiplyAdd(v, wb, b3);
        }

        for (; k < inputs; k++, w += Width)
        {
            TFetch.Ahead(w + ahead);
            wa = Avx.LoadVector256(w);
            wb = Avx.LoadVector256(w + 8);
            v = Vector256.Create(x0[k]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            v = Vector256.Create(x2[k]); a2 = Fma.MultiplyAdd(v, wa, a2); b2 = Fma.MultiplyAdd(v, wb, b2);
            v = Vector256.Create(x3[k]); a3 = Fma.MultiplyAdd(v, wa, a3); b3 = Fma.MultiplyAdd(v, wb, b3);
        }

        Avx.Store(sums, a0);
        Avx.Store(sums + 8, b0);
        Avx.Store(sums + 16, a1);
        Avx.Store(sums + 24, b1);
        Avx.Store(sums + 32, a2);
        Avx.Store(sums + 40, b2);
        Avx.Store(sums + 48, a3);
        Avx.Store(sums + 56, b3);
    }

    // Two rows times one panel in four accumulators; as Kernel otherwise.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel2<TFetch>(float* x0, float* x1, float* panel, long inputs, long ahead, float* sums)
        where TFetch : struct, IWeightFetch
    {
        var a0 = Vector256<float>.Zero;
        Vector256<float> b0 = a0, a1 = a0, b1 = a0;
        Vector256<float> wa, wb, v;
        float* w = panel;
        long k = 0;
        for (long whole = inputs & ~3L; k < whole; k += 4, w += 4 * Width)
        {
            TFetch.Ahead(w + ahead);
            wa = Avx.LoadVector256(w);
            wb = Avx.LoadVector256(w + 8);
            v = Vector256.Create(x0[k]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            TFetch.Ahead(w + 16 + ahead);
            wa = Avx.LoadVector256(w + 16);
            wb = Avx.LoadVector256(w + 24);
            v = Vector256.Create(x0[k + 1]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k + 1]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            TFetch.Ahead(w + 32 + ahead);
            wa = Avx.LoadVector256(w + 32);
            wb = Avx.LoadVector256(w + 40);
            v = Vector256.Create(x0[k + 2]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k + 2]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            TFetch.Ahead(w + 48 + ahead);
            wa = Avx.LoadVector256(w + 48);
            wb = Avx.LoadVector256(w + 56);
            v = Vector256.Create(x0[k + 3]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k + 3]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
        }

        for (; k < inputs; k++, w += Width)
        {
            TFetch.Ahead(w + ahead);
            wa = Avx.LoadVector256(w);
            wb = Avx.LoadVector256(w + 8);
            v = Vector256.Create(x0[k]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
        }

        Avx.Store(sums, a0);
        Avx.Store(sums + 8, b0);
        Avx.Store(sums + 16, a1);
        Avx.Store(sums + 24, b1);
    }

    // A block of six rows times one panel, in twelve accumulators; the sums go to `sums` ([6][16]). Written out for
    // exactly six rows, since .NET keeps the accumulators in registers only in such straight code (a version generic
    // in the row count, its unused rows removed by the compiler, kept them on the stack); a shorter block repeats its
    // last row. The rows are read at one index, four inputs a turn, so that the loop's own instructions are few beside
    // its multiply-adds. Stepping seven pointers every input ran as fast on a quiet core, but in this VM's slow spells
    // (the host's; as if another thread shared the core's front end) it lost a quarter to a half of its rate where this
    // form loses at most a fifth (see docs/benchmarks.md, eighteenth session).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel<TFetch>(float* x0, float* x1, float* x2, float* x3, float* x4, float* x5, float* panel, long inputs, long ahead, float* sums)
        where TFetch : struct, IWeightFetch
    {
        var a0 = Vector256<float>.Zero;
        Vector256<float> b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0, a4 = a0, b4 = a0, a5 = a0, b5 = a0;
        Vector256<float> wa, wb, v;
        float* w = panel;
        long k = 0;
        for (long whole = inputs & ~3L; k < whole; k += 4, w += 4 * Width)
        {
            TFetch.Ahead(w + ahead);
            wa = Avx.LoadVector256(w);
            wb = Avx.LoadVector256(w + 8);
            v = Vector256.Create(x0[k]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            v = Vector256.Create(x2[k]); a2 = Fma.MultiplyAdd(v, wa, a2); b2 = Fma.MultiplyAdd(v, wb, b2);
            v = Vector256.Create(x3[k]); a3 = Fma.MultiplyAdd(v, wa, a3); b3 = Fma.MultiplyAdd(v, wb, b3);
            v = Vector256.Create(x4[k]); a4 = Fma.MultiplyAdd(v, wa, a4); b4 = Fma.MultiplyAdd(v, wb, b4);
            v = Vector256.Create(x5[k]); a5 = Fma.MultiplyAdd(v, wa, a5); b5 = Fma.MultiplyAdd(v, wb, b5);
            TFetch.Ahead(w + 16 + ahead);
            wa = Avx.LoadVector256(w + 16);
            wb = Avx.LoadVector256(w + 24);
            v = Vector256.Create(x0[k + 1]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k + 1]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            v = Vector256.Create(x2[k + 1]); a2 = Fma.MultiplyAdd(v, wa, a2); b2 = Fma.MultiplyAdd(v, wb, b2);
            v = Vector256.Create(x3[k + 1]); a3 = Fma.MultiplyAdd(v, wa, a3); b3 = Fma.MultiplyAdd(v, wb, b3);
            v = Vector256.Create(x4[k + 1]); a4 = Fma.MultiplyAdd(v, wa, a4); b4 = Fma.MultiplyAdd(v, wb, b4);
            v = Vector256.Create(x5[k + 1]); a5 = Fma.MultiplyAdd(v, wa, a5); b5 = Fma.MultiplyAdd(v, wb, b5);
            TFetch.Ahead(w + 32 + ahead);
            wa = Avx.LoadVector256(w + 32);
            wb = Avx.LoadVector256(w + 40);
            v = Vector256.Create(x0[k + 2]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k + 2]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            v = Vector256.Create(x2[k + 2]); a2 = Fma.MultiplyAdd(v, wa, a2); b2 = Fma.MultiplyAdd(v, wb, b2);
            v = Vector256.Create(x3[k + 2]); a3 = Fma.MultiplyAdd(v, wa, a3); b3 = Fma.MultiplyAdd(v, wb, b3);
            v = Vector256.Create(x4[k + 2]); a4 = Fma.MultiplyAdd(v, wa, a4); b4 = Fma.MultiplyAdd(v, wb, b4);
            v = Vector256.Create(x5[k + 2]); a5 = Fma.MultiplyAdd(v, wa, a5); b5 = Fma.MultiplyAdd(v, wb, b5);
            TFetch.Ahead(w + 48 + ahead);
            wa = Avx.LoadVector256(w + 48);
            wb = Avx.LoadVector256(w + 56);
            v = Vector256.Create(x0[k + 3]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k + 3]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            v = Vector256.Create(x2[k + 3]); a2 = Fma.MultiplyAdd(v, wa, a2); b2 = Fma.MultiplyAdd(v, wb, b2);
            v = Vector256.Create(x3[k + 3]); a3 = Fma.MultiplyAdd(v, wa, a3); b3 = Fma.MultiplyAdd(v, wb, b3);
            v = Vector256.Create(x4[k + 3]); a4 = Fma.MultiplyAdd(v, wa, a4); b4 = Fma.MultiplyAdd(v, wb, b4);
            v = Vector256.Create(x5[k + 3]); a5 = Fma.MultiplyAdd(v, wa, a5); b5 = Fma.MultiplyAdd(v, wb, b5);
        }

        for (; k < inputs; k++, w += Width)
        {
            TFetch.Ahead(w + ahead);
            wa = Avx.LoadVector256(w);
            wb = Avx.LoadVector256(w + 8);
            v = Vector256.Create(x0[k]); a0 = Fma.MultiplyAdd(v, wa, a0); b0 = Fma.MultiplyAdd(v, wb, b0);
            v = Vector256.Create(x1[k]); a1 = Fma.MultiplyAdd(v, wa, a1); b1 = Fma.MultiplyAdd(v, wb, b1);
            v = Vector256.Create(x2[k]); a2 = Fma.MultiplyAdd(v, wa, a2); b2 = Fma.MultiplyAdd(v, wb, b2);
            v = Vector256.Create(x3[k]); a3 = Fma.MultiplyAdd(v, wa, a3); b3 = Fma.MultiplyAdd(v, wb, b3);
            v = Vector256.Create(x4[k]); a4 = Fma.MultiplyAdd(v, wa, a4); b4 = Fma.MultiplyAdd(v, wb, b4);
            v = Vector256.Create(x5[k]); a5 = Fma.MultiplyAdd(v, wa, a5); b5 = Fma.MultiplyAdd(v, wb, b5);
        }

        Avx.Store(sums, a0);
        Avx.Store(sums + 8, b0);
        Avx.Store(sums + 16, a1);
        Avx.Store(sums + 24, b1);
        Avx.Store(sums + 32, a2);
        Avx.Store(sums + 40, b2);
        Avx.Store(sums + 48, a3);
        Avx.Store(sums + 56, b3);
        Avx.Store(sums + 64, a4);
        Avx.Store(sums + 72, b4);
        Avx.Store(sums + 80, a5);
        Avx.Store(sums + 88, b5);
    }

    // Writes one row's 16 sums (the first `columns` of them) through the epilogue.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* sums, float* y, float* bias, int columns, Epilogue epilogue, int row)
    {
        float* residual = epilogue.Residual is null ? null : epilogue.Residual + row * epilogue.Ldr;
        if (columns == Width && WideSupported)
        {
            // The same operations on one 512-bit vector: half the instructions of the two 256-bit halves below.
            var v = Avx512F.Add(Avx512F.LoadVector512(sums), Avx512F.LoadVector512(bias));
            if (residual is not null) v = Avx512F.FusedMultiplyAdd(v, Vector512.Create(epilogue.Scale), Avx512F.LoadVector512(residual));
            if (epilogue.Relu) v = Avx512F.Max(v, Vector512<float>.Zero);
            Avx512F.Store(y, v);
            return;
        }

        if (columns == Width)
        {
            var a = Avx.Add(Avx.LoadVector256(sums), Avx.LoadVector256(bias));
            var b = Avx.Add(Avx.LoadVector256(sums + 8), Avx.LoadVector256(bias + 8));
            if (residual is not null)
            {
                var s = Vector256.Create(epilogue.Scale);
                a = Fma.MultiplyAdd(a, s, Avx.LoadVector256(residual));
                b = Fma.MultiplyAdd(b, s, Avx.LoadVector256(residual + 8));
            }

            if (epilogue.Relu)
            {
                a = Avx.Max(a, Vector256<float>.Zero);
                b = Avx.Max(b, Vector256<float>.Zero);
            }

            Avx.Store(y, a);
            Avx.Store(y + 8, b);
            return;
        }

        for (int j = 0; j < columns; j++)
        {
            float v = sums[j] + bias[j];
            if (residual is not null) v = residual[j] + epilogue.Scale * v;
            y[j] = epilogue.Relu ? MathF.Max(v, 0f) : v;
        }
    }

    // A convolution's kernel: the channels it reads, its size, stride and zero padding.
    private readonly record struct Kernel2d(long Channels, long Height, long Width, long StrideRows, long StrideColumns, long PadRows, long PadColumns);

    // The windows of a batch of channels-last images under a kernel; row r of the product is output position r.
    private sealed class Window(Kernel2d kernel, long batch, long height, long width)
    {
        public long Batch { get; } = batch;

        public long OutHeight { get; } = (height + 2 * kernel.PadRows - kernel.Height) / kernel.StrideRows + 1;

        public long OutWidth { get; } = (width + 2 * kernel.PadColumns - kernel.Width) / kernel.StrideColumns + 1;

        public long Rows => Batch * OutHeight * OutWidth;

        // Rows [first, first + count) into `into`, each kh·kw·C values: a channel run per kernel position, zeros outside.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Columns(float* input, long first, long count, float* into)
        {
            long c = kernel.Channels, positions = OutHeight * OutWidth;
            nuint runBytes = (nuint)(c * sizeof(float));
            for (long r = first; r < first + count; r++)
            {
                long n = r / positions, oh = r % positions / OutWidth, ow = r % OutWidth;
                float* image = input + n * height * width * c;
                long left = ow * kernel.StrideColumns - kernel.PadColumns;
                // A kernel row wholly inside the image is one run of kw·C values (the taps are neighbours in memory).
                bool inside = left >= 0 && left + kernel.Width <= width;
                for (long i = 0; i < kernel.Height; i++)
                {
                    long ih = oh * kernel.StrideRows - kernel.PadRows + i;
                    if (inside && ih >= 0 && ih < height)
                    {
                        Copy(image + (ih * width + left) * c, into, kernel.Width * c);
                        into += kernel.Width * c;
                        continue;
                    }

                    for (long j = 0; j < kernel.Width; j++, into += c)
                    {
                        long iw = left + j;
                        if (ih < 0 || ih >= height || iw < 0 || iw >= width) NativeMemory.Clear(into, runBytes);
                        else Copy(image + (ih * width + iw) * c, into, c);
                    }
                }
            }
        }
    }

    /// <summary>Runs of at most this many floats are copied by <see cref="Copy"/>'s own loop, longer ones by the runtime's copy.</summary>
    public const long ShortRun = 64;

    // Copies `count` floats: a short run (an image stem's kernel row of 7 taps × 3 channels is 21 floats) eight and then one
    // at a time, which costs less than the general copy's fixed cost (inception_resnet_v1's stem 249 → 224 µs, inception_v3's
    // 505 → 470 µs at batch 1); a long one by Buffer.MemoryCopy.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy(float* from, float* to, long count)
    {
        if (count > ShortRun)
        {
            Buffer.MemoryCopy(from, to, count * sizeof(float), count * sizeof(float));
            return;
        }

        long i = 0;
        for (; i + 8 <= count; i += 8) Avx.Store(to + i, Avx.LoadVector256(from + i));
        for (; i < count; i++) to[i] = from[i];
    }

    // Each thread's store for the windows it copies, kept between calls (freed with the thread).
    private sealed class Columns
    {
        [ThreadStatic]
        private static Columns? current;

        private float* store;
        private long capacity;

        ~Columns() => NativeMemory.AlignedFree(store);

        public static float* ForThisThread(long count)
        {
            var columns = current ??= new Columns();
            if (columns.capacity < count)
            {
                NativeMemory.AlignedFree(columns.store);
                columns.store = null;
                columns.capacity = 0;
                columns.store = (float*)NativeMemory.AlignedAlloc(checked((nuint)count * sizeof(float)), 64);
                columns.capacity = count;
            }

            return columns.store;
        }
    }
}
