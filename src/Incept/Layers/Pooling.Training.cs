using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Layers;

internal static unsafe partial class Pooling
{
    private static long recordedCount;

    // 1, 2, 4, … 2¹⁵: lane l's bit in a 16-bit mask.
    private static readonly Vector512<uint> LaneBits = Vector512.Create(1u, 2u, 4u, 8u, 16u, 32u, 64u, 128u, 256u, 512u, 1024u, 2048u, 4096u, 8192u, 16384u, 32768u);

    /// <summary>How many max poolings were recorded for autograd here rather than in libtorch (for tests and diagnostics).</summary>
    internal static long RecordedCount => Interlocked.Read(ref recordedCount);

    /// <summary>
    /// Whether a max pooling of <paramref name="input"/> with window <paramref name="window"/> is recorded for autograd
    /// here (<see cref="MaxRecorded"/>): a 4-d channels-last float32 CPU batch whose gradient is being recorded, on a CPU
    /// with 256-bit or 512-bit vectors, and a window of at most 255 positions.
    /// </summary>
    internal static bool AppliesInTraining(Tensor input, Window window)
    {
        if (!WideVectors.Fast || window.KernelHeight * window.KernelWidth > byte.MaxValue) return false;
        if (input.dim() != 4 || input.dtype != ScalarType.Float32 || input.device_type != DeviceType.CPU) return false;
        if (!input.requires_grad || !is_grad_enabled()) return false;
        return input.numel() > 0 && MemoryFormat.IsChannelsLast(input);
    }

    /// <summary>
    /// Max pooling recorded for autograd, keeping for the backward pass one byte per output (the maximum's position in its
    /// window) where libtorch's <c>max_pool2d_with_indices</c> keeps an int64 index: an eighth of the memory, held from the
    /// forward pass to the backward pass, when a training step's memory peaks (inception_v3 at batch 16 keeps 87 MiB of
    /// such indices, googlenet 173). The maxima, their positions (the first maximum of a window in row-major order, a NaN
    /// taken over any number), and so the gradients, are libtorch's.
    /// </summary>
    internal static Tensor MaxRecorded(Tensor input, Window window)
    {
        ArgumentNullException.ThrowIfNull(input);
        Interlocked.Increment(ref recordedCount);
        // TorchSharp 0.107 keeps, beside the output of a custom autograd function, an uninitialised tensor of its size
        // until the graph is freed; made in this scope, it is freed on return (see WinogradTraining.Forward).
        using var scope = NewDisposeScope();
        return MaxFunction.apply(input, window).MoveToOuterDisposeScope();
    }

    // The output, and each output's position in its window (row · kernel width + column, counted from the window's
    // corner, padding included) as bytes laid out as the output is: [N, H', W', C].
    private static (Tensor Output, Tensor Positions) MaxWithPositions(Tensor input, Window w)
    {
        long n = input.size(0), c = input.size(1), h = input.size(2), wd = input.size(3);
        var output = MemoryFormat.EmptyChannelsLast(n, c, w.OutHeight, w.OutWidth);
        var positions = empty([n, w.OutHeight, w.OutWidth, c], ScalarType.Byte);
        float* source = TensorData.ChannelsLastFloats(input), target = TensorData.ChannelsLastFloats(output);
        byte* where = TensorData.Bytes(positions);
        var shape = new Shape(n, c, h, wd);
        long rows = n * w.OutHeight;
        int parts = CpuTeam.PartsFor(rows);
        // Nothing in a part calls TorchSharp: the parts may run on OpenMP's threads, outside .NET's dispose scopes.
        CpuTeam.Run(parts, part =>
        {
            for (long row = rows * part / parts, end = rows * (part + 1) / parts; row < end; row++) MaxRow(source, target, where, shape, w, row);
        });
        return (output, positions);
    }

    // One output row (image, output row) of every channel, with the positions of the maxima.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaxRow(float* source, float* target, byte* where, Shape s, Window w, long row)
    {
        long image = row / w.OutHeight, outRow = row % w.OutHeight;
        long windowTop = outRow * w.StrideHeight - w.PadHeight;
        var (top, bottom, _) = w.Rows(outRow, s.Height);
        float* imageBase = source + image * s.Height * s.Width * s.Channels;
        long vectorChannels = s.Channels / Lanes * Lanes;
        var offsets = stackalloc long[(int)(w.KernelHeight * w.KernelWidth)];
        var places = stackalloc int[(int)(w.KernelHeight * w.KernelWidth)];
        for (long outColumn = 0; outColumn < w.OutWidth; outColumn++)
        {
            long windowLeft = outColumn * w.StrideWidth - w.PadWidth;
            var (left, right, _) = w.Columns(outColumn, s.Width);
            long at = (row * w.OutWidth + outColumn) * s.Channels;
            // The window's values in row-major order and their positions in the window: the first taken whatever it is (as
            // libtorch starts from it), later ones where larger, or NaN.
            int count = 0;
            for (long i = top; i < bottom; i++)
            {
                for (long j = left; j < right; j++)
                {
                    offsets[count] = (i * s.Width + j) * s.Channels;
                    places[count++] = (int)((i - windowTop) * w.KernelWidth + j - windowLeft);
                }
            }

            for (long ch = 0; ch < vectorChannels; ch += Lanes)
            {
                float* column = imageBase + ch;
                var best = Vector512.Load(column + offsets[0]);
                var position = Vector512.Create(places[0]);
                for (int k = 1; k < count; k++)
                {
                    var v = Vector512.Load(column + offsets[k]);
                    var take = (Vector512.GreaterThan(v, best) | ~Vector512.Equals(v, v)).AsInt32();
                    best = Vector512.ConditionalSelect(take.AsSingle(), v, best);
                    position = Vector512.ConditionalSelect(take, Vector512.Create(places[k]), position);
                }

                Vector512.Store(best, target + at + ch);
                var bytes = Vector512.Narrow(Vector512.Narrow(position, Vector512<int>.Zero), Vector512<short>.Zero);
                Vector128.Store(bytes.GetLower().GetLower().AsByte(), where + at + ch);
            }

            for (long ch = vectorChannels; ch < s.Channels; ch++)
            {
                float best = imageBase[offsets[0] + ch];
                int position = places[0];
                for (int k = 1; k < count; k++)
                {
                    float v = imageBase[offsets[k] + ch];
                    if (v > best || float.IsNaN(v)) (best, position) = (v, places[k]);
                }

                target[at + ch] = best;
                where[at + ch] = (byte)position;
            }
        }
    }

    // The input gradient [N, C, H, W] (channels-last) from the output gradient and the positions of the maxima: each input
    // value gathers the gradients of the outputs whose maximum it was, in the outputs' order (libtorch adds them into a
    // zeroed gradient in that order, so the sums are the same), and is written once.
    private static Tensor MaxGradient(Tensor outputGradient, Tensor positions, Window w, long height, long width)
    {
        using var scope = NewDisposeScope();
        long n = outputGradient.size(0), c = outputGradient.size(1);
        var dy = MemoryFormat.IsChannelsLast(outputGradient) ? outputGradient : MemoryFormat.ToChannelsLast(outputGradient);
        var inputGradient = MemoryFormat.EmptyChannelsLast(n, c, height, width);
        float* gradient = TensorData.ChannelsLastFloats(dy), target = TensorData.ChannelsLastFloats(inputGradient);
        byte* where = TensorData.Bytes(positions);
        var shape = new Shape(n, c, height, width);
        long rows = n * height;
        int parts = CpuTeam.PartsFor(rows);
        // Nothing in a part calls TorchSharp: the parts may run on OpenMP's threads, outside .NET's dispose scopes.
        CpuTeam.Run(parts, part =>
        {
            for (long row = rows * part / parts, end = rows * (part + 1) / parts; row < end; row++) MaxGradientRow(gradient, target, where, shape, w, row);
        });
        return inputGradient.MoveToOuterDisposeScope();
    }

    // One input row (image, input row) of the input gradient, every channel.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaxGradientRow(float* gradient, float* target, byte* where, Shape s, Window w, long row)
    {
        long image = row / s.Height, i = row % s.Height;
        var (firstRow, lastRow) = Covering(i, w.StrideHeight, w.PadHeight, w.KernelHeight, w.OutHeight);
        long vectorChannels = s.Channels / Lanes * Lanes;
        float* targetRow = target + row * s.Width * s.Channels;
        int most = (int)(((w.KernelHeight + w.StrideHeight - 1) / w.StrideHeight) * ((w.KernelWidth + w.StrideWidth - 1) / w.StrideWidth));
        var outputs = stackalloc long[most];
        var places = stackalloc byte[most];
        for (long j = 0; j < s.Width; j++)
        {
            var (firstColumn, lastColumn) = Covering(j, w.StrideWidth, w.PadWidth, w.KernelWidth, w.OutWidth);
            float* o = targetRow + j * s.Channels;
            // The outputs whose windows hold this input, in the outputs' order, and this input's position in each window.
            int count = 0;
            for (long oy = firstRow; oy <= lastRow; oy++)
            {
                long rowOffset = (i - (oy * w.StrideHeight - w.PadHeight)) * w.KernelWidth;
                for (long ox = firstColumn; ox <= lastColumn; ox++)
                {
                    outputs[count] = (((image * w.OutHeight) + oy) * w.OutWidth + ox) * s.Channels;
                    places[count++] = (byte)(rowOffset + j - (ox * w.StrideWidth - w.PadWidth));
                }
            }

            for (long ch = 0; ch < vectorChannels; ch += Lanes)
            {
                var sum = Vector512<float>.Zero;
                for (int k = 0; k < count; k++)
                {
                    long at = outputs[k] + ch;
                    uint bits = Vector128.Equals(Vector128.Load(where + at), Vector128.Create(places[k])).ExtractMostSignificantBits();
                    if (bits == 0) continue;
                    // Lane l takes the gradient where bit l is set.
                    var mask = ~Vector512.Equals(Vector512.Create(bits) & LaneBits, Vector512<uint>.Zero);
                    sum += Vector512.Load(gradient + at) & mask.AsSingle();
                }

                Vector512.Store(sum, o + ch);
            }

            for (long ch = vectorChannels; ch < s.Channels; ch++)
            {
                float sum = 0;
                for (int k = 0; k < count; k++)
                    if (where[outputs[k] + ch] == places[k]) sum += gradient[outputs[k] + ch];
                o[ch] = sum;
            }
        }
    }

    // The outputs [first, last] along one axis whose windows cover input index `index` (last < first where none do).
    private static (long First, long Last) Covering(long index, long stride, long pad, long kernel, long outputs)
    {
        long first = Math.Max(0, FloorDivide(index + pad - kernel, stride) + 1);
        long last = Math.Min(outputs - 1, FloorDivide(index + pad, stride));
        return (first, last);
    }

    private static long FloorDivide(long a, long b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    private sealed class Geometry(Window window, long height, long width)
    {
        public Window Window { get; } = window;

        public long Height { get; } = height;

        public long Width { get; } = width;
    }

    private sealed class MaxFunction : autograd.SingleTensorFunction<MaxFunction>
    {
        public override string Name => "MaxPoolPositionsBackward";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var input = (Tensor)vars[0];
            var window = (Window)vars[1];
            ctx.set_materialize_grads(false);
            var (output, positions) = MaxWithPositions(input, window);
            ctx.save_for_backward([positions]);
            ctx.save_data(nameof(Geometry), new Geometry(window, input.size(2), input.size(3)));
            return output;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
        {
            if (grad_output is null || grad_output.IsInvalid) return [null!, null!];
            // TorchSharp wraps the output gradient in a handle of the scope around backward() (the step's), which would
            // hold it to the step's end; libtorch keeps its own reference for as long as it needs it.
            using var gradientHandle = grad_output;
            var geometry = (Geometry)ctx.get_data(nameof(Geometry));
            var positions = ctx.get_saved_variables()[0];
            return [MaxGradient(grad_output, positions, geometry.Window, geometry.Height, geometry.Width), null!];
        }
    }
}
