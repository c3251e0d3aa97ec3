using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// Max and average pooling at inference: a channels-last float32 CPU batch is pooled here, sixteen channels at a time
/// with <see cref="Vector512{T}"/> operations (see <see cref="WideVectors"/>) and the output rows shared among
/// libtorch's OpenMP threads; in a training step, max pooling of such a batch is recorded for autograd here too
/// (<see cref="MaxRecorded"/>, one byte per output kept for the backward pass); everything else (an average pooling to
/// record, another layout, type or device, no 256-bit or 512-bit vectors, dilation, a divisor override, hooks on the
/// module) goes to libtorch.
/// </summary>
/// <remarks>
/// libtorch's channels-last max pooling also keeps the index of every maximum, in 256-bit vectors, even when no
/// gradient will need it; that was 10–17 % of googlenet's batch-16 inference (docs/benchmarks.md). The windows, the
/// output sizes (floor and ceiling mode), the divisor (with or without the padding), the order of an average's sum and
/// its division, and NaN propagation follow libtorch's, so both give libtorch's values.
/// </remarks>
internal static unsafe partial class Pooling
{
    private const int Lanes = 16;

    /// <summary>How many times a pooling ran here rather than in libtorch (for tests and diagnostics).</summary>
    internal static long FastCount => Interlocked.Read(ref fastCount);

    private static long fastCount;

    /// <summary>
    /// <paramref name="module"/> applied to <paramref name="input"/>: a <see cref="MaxPool2d"/> or <see cref="AvgPool2d"/>
    /// without hooks through <see cref="Max"/> or <see cref="Average"/>, a <see cref="Sequential"/> without hooks (such as
    /// a pool followed by its projection) module by module in the same way; any other module (such as the
    /// <c>Identity</c> that replaces a pool for small inputs) through its own call.
    /// </summary>
    public static Tensor Call(nn.Module<Tensor, Tensor> module, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(module);
        switch (module)
        {
            case MaxPool2d max when max.dilation is null || max.dilation.All(d => d == 1):
                if (ModuleHooks.Any(module)) break;
                return Max(input, max.kernel_size, max.stride ?? max.kernel_size, max.padding ?? [0], max.ceil_mode);
            case AvgPool2d average when average.divisor_override is null:
                if (ModuleHooks.Any(module)) break;
                return Average(input, average.kernel_size, average.stride ?? average.kernel_size, average.padding ?? [0], average.ceil_mode, average.count_include_pad);
            case Sequential sequence when !ModuleHooks.Any(sequence):
                return Through(sequence, input);
        }

        return module.call(input);
    }

    private static Tensor Through(Sequential sequence, Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input;
        foreach (var child in sequence.children())
        {
            if (child is not nn.Module<Tensor, Tensor> step) return sequence.call(input).MoveToOuterDisposeScope();
            x = Call(step, x);
        }

        // An empty sequence gives its input, as its own call does (as a new handle, which the caller may dispose).
        return (ReferenceEquals(x, input) ? input.alias() : x).MoveToOuterDisposeScope();
    }

    /// <summary>2-d max pooling of <paramref name="input"/> (as <c>max_pool2d</c> with no dilation).</summary>
    public static Tensor Max(Tensor input, long[] kernel, long[] stride, long[] padding, bool ceilMode = false)
    {
        ArgumentNullException.ThrowIfNull(input);
        var window = Window.Of(input, kernel, stride, padding, ceilMode);
        if (window is { } w && Applies(input)) return Run(input, w, average: false, countPadding: false);
        if (window is { } recorded && AppliesInTraining(input, recorded)) return MaxRecorded(input, recorded);
        return nn.functional.max_pool2d(input, kernel, stride, padding, ceil_mode: ceilMode);
    }

    /// <summary>2-d average pooling of <paramref name="input"/> (as <c>avg_pool2d</c> without a divisor override).</summary>
    public static Tensor Average(Tensor input, long[] kernel, long[] stride, long[] padding, bool ceilMode = false, bool countIncludePad = true)
    {
        ArgumentNullException.ThrowIfNull(input);
        var window = Window.Of(input, kernel, stride, padding, ceilMode);
        if (window is { } w && Applies(input)) return Run(input, w, average: true, countPadding: countIncludePad);
        return nn.functional.avg_pool2d(input, kernel, stride, padding, ceil_mode: ceilMode, count_include_pad: countIncludePad);
    }

    /// <summary>
    /// Whether <paramref name="input"/> is pooled here: a 4-d channels-last float32 CPU batch that needs no gradient, on
    /// a CPU with 256-bit or 512-bit vectors (<see cref="WideVectors.Fast"/>).
    /// </summary>
    internal static bool Applies(Tensor input)
    {
        if (!WideVectors.Fast) return false;
        if (input.dim() != 4 || input.dtype != ScalarType.Float32 || input.device_type != DeviceType.CPU) return false;
        if (input.requires_grad && is_grad_enabled()) return false;
        return input.numel() > 0 && MemoryFormat.IsChannelsLast(input);
    }

    private static Tensor Run(Tensor input, Window w, bool average, bool countPadding)
    {
        // Sizes one by one and the data addresses directly: TorchSharp's shape arrays and permuted views cost a few
        // microseconds per call, as long as a small pool itself at batch 1.
        long n = input.size(0), c = input.size(1), h = input.size(2), wd = input.size(3);
        var output = MemoryFormat.EmptyChannelsLast(n, c, w.OutHeight, w.OutWidth);
        float* source = TensorData.ChannelsLastFloats(input), target = TensorData.ChannelsLastFloats(output);
        var shape = new Shape(n, c, h, wd);
        long rows = n * w.OutHeight;
        int parts = CpuTeam.PartsFor(rows);
        // Nothing in a part calls TorchSharp: the parts may run on OpenMP's threads, outside .NET's dispose scopes.
        CpuTeam.Run(parts, part =>
        {
            long first = rows * part / parts, end = rows * (part + 1) / parts;
            for (long row = first; row < end; row++)
            {
                if (average) PoolRow<Sum>(source, target, shape, w, row, countPadding);
                else PoolRow<Maximum>(source, target, shape, w, row, countPadding);
            }
        });
        Interlocked.Increment(ref fastCount);
        return output;
    }

    // One output row (image, output row) of every channel.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PoolRow<TReduce>(float* source, float* target, Shape s, Window w, long row, bool countPadding)
        where TReduce : struct, IReduce
    {
        long image = row / w.OutHeight, outRow = row % w.OutHeight;
        var (top, bottom, rowSpan) = w.Rows(outRow, s.Height);
        float* imageBase = source + image * s.Height * s.Width * s.Channels;
        float* outputRow = target + row * w.OutWidth * s.Channels;
        long vectorChannels = s.Channels / Lanes * Lanes;
        for (long outColumn = 0; outColumn < w.OutWidth; outColumn++)
        {
            var (left, right, columnSpan) = w.Columns(outColumn, s.Width);
            float* o = outputRow + outColumn * s.Channels;
            float* corner = imageBase + (top * s.Width + left) * s.Channels;
            long windowRows = bottom - top, windowColumns = right - left;
            float divisor = countPadding ? rowSpan * columnSpan : windowRows * windowColumns;
            var divisors = Vector512.Create(divisor);
            for (long ch = 0; ch < vectorChannels; ch += Lanes)
            {
                var acc = Vector512.Load(corner + ch);
                for (long i = 0; i < windowRows; i++)
                {
                    float* line = corner + i * s.Width * s.Channels + ch;
                    for (long j = i == 0 ? 1 : 0; j < windowColumns; j++)
                    {
                        var v = Vector512.Load(line + j * s.Channels);
                        acc = TReduce.Combine(acc, v);
                    }
                }

                Vector512.Store(TReduce.Scales ? acc / divisors : acc, o + ch);
            }

            for (long ch = vectorChannels; ch < s.Channels; ch++)
            {
                float acc = corner[ch];
                for (long i = 0; i < windowRows; i++)
                {
                    float* line = corner + i * s.Width * s.Channels + ch;
                    for (long j = i == 0 ? 1 : 0; j < windowColumns; j++)
                    {
                        float v = line[j * s.Channels];
                        acc = TReduce.Combine(acc, v);
                    }
                }

                o[ch] = TReduce.Scales ? acc / divisor : acc;
            }
        }
    }

    private interface IReduce
    {
        /// <summary>Whether the result is the sum divided by the divisor (average) rather than the value itself.</summary>
        static abstract bool Scales { get; }

        static abstract Vector512<float> Combine(Vector512<float> acc, Vector512<float> value);

        static abstract float Combine(float acc, float value);
    }

    private struct Maximum : IReduce
    {
        public static bool Scales => false;

        // IEEE 754 maximum: a NaN in the window gives NaN, as in libtorch.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Combine(Vector512<float> acc, Vector512<float> value) => Vector512.Max(acc, value);

        public static float Combine(float acc, float value) => value > acc || float.IsNaN(value) ? value : acc;
    }

    private struct Sum : IReduce
    {
        public static bool Scales => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Combine(Vector512<float> acc, Vector512<float> value) => acc + value;

        public static float Combine(float acc, float value) => acc + value;
    }

    private readonly record struct Shape(long Batch, long Channels, long Height, long Width);

    /// <summary>A pooling window's geometry and the output size it gives on one input (libtorch's rules).</summary>
    internal readonly record struct Window(long KernelHeight, long KernelWidth, long StrideHeight, long StrideWidth, long PadHeight, long PadWidth, long OutHeight, long OutWidth)
    {
        /// <summary>The window for <paramref name="input"/>, or null where libtorch's own call should judge the arguments (they are unusual or invalid).</summary>
        public static Window? Of(Tensor input, long[] kernel, long[] stride, long[] padding, bool ceilMode)
        {
            if (input.dim() != 4 || kernel is not { Length: 1 or 2 } || stride is not { Length: 1 or 2 } || padding is not { Length: 1 or 2 }) return null;
            long kh = kernel[0], kw = kernel[^1], sh = stride[0], sw = stride[^1], ph = padding[0], pw = padding[^1];
            if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0 || 2 * ph > kh || 2 * pw > kw) return null;
            long outHeight = OutputSize(input.size(2), kh, sh, ph, ceilMode), outWidth = OutputSize(input.size(3), kw, sw, pw, ceilMode);
            if (outHeight < 1 || outWidth < 1) return null;
            return new Window(kh, kw, sh, sw, ph, pw, outHeight, outWidth);
        }

        /// <summary>libtorch's pooling output size: the last window must start inside the input or its leading padding.</summary>
        internal static long OutputSize(long size, long kernel, long stride, long pad, bool ceilMode)
        {
            long span = size + 2 * pad - kernel;
            if (span < 0) return 0;
            long count = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1;
            if (ceilMode && (count - 1) * stride >= size + pad) count--;
            return count;
        }

        /// <summary>Output row <paramref name="index"/>'s input rows [first, end) and its span counted with the padding.</summary>
        public (long First, long End, long Span) Rows(long index, long size) => Range(index, StrideHeight, PadHeight, KernelHeight, size);

        /// <summary>Output column <paramref name="index"/>'s input columns [first, end) and its span counted with the padding.</summary>
        public (long First, long End, long Span) Columns(long index, long size) => Range(index, StrideWidth, PadWidth, KernelWidth, size);

        private static (long, long, long) Range(long index, long stride, long pad, long kernel, long size)
        {
            long start = index * stride - pad, end = Math.Min(start + kernel, size + pad);
            long span = end - start;
            return (Math.Max(start, 0), Math.Min(end, size), span);
        }
    }
}
