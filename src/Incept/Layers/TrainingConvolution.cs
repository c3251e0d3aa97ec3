using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// The convolution of a conv unit (conv → BatchNorm → ReLU) in a training step: by Winograd's method where the unit asks
/// for it and <see cref="WinogradTraining"/> applies, a 1×1 convolution as one matrix product over the whole batch where
/// <see cref="Pointwise"/> applies, an image stem as matrix products where <see cref="Stem"/> applies, else the module's
/// own call.
/// </summary>
internal static class TrainingConvolution
{
    /// <summary><paramref name="conv"/> applied to <paramref name="input"/> in whichever way applies (see the class).</summary>
    public static Tensor Forward(Conv2d conv, Tensor input, bool winograd)
    {
        ArgumentNullException.ThrowIfNull(conv);
        if (!conv.training) return conv.call(input);
        if (winograd && WinogradTraining.Applies(conv, input)) return WinogradTraining.Forward(conv, input);
        if (OwnKernelsPay && Stem.Applies(conv, input)) return Stem.Forward(conv, input);
        return OwnKernelsPay && Pointwise.Applies(conv, input) ? Pointwise.Forward(conv, input) : conv.call(input);
    }

    /// <summary>
    /// Whether a training step's convolutions gain from Incept's own kernels here (Winograd's method, where
    /// <see cref="WinogradTraining.Use"/> turns it on, and 1×1 convolutions as one product): where libtorch convolves
    /// without oneDNN, as im2col and an MKL product image by image, which is what they avoid. Where libtorch uses oneDNN
    /// its own kernels were as fast or faster and kept the peak lower (AVX2 VM, 2026-12-06: inception_v3 with aux heads at
    /// batch 16 3.51–3.71 images/s with libtorch's convolutions against 3.14–3.15 with both of Incept's; googlenet 12.4–13.3
    /// against 13.6–13.8 at 100 MiB more peak memory).
    /// </summary>
    public static bool OwnKernelsPay => Runtime.TorchRuntime.OneDnnInUse != true;

    /// <summary>
    /// A stride-1 1×1 convolution of a channels-last batch as one product <c>[N·H·W, C] × [C, K]</c>, recorded by autograd
    /// as that product, whose backward pass is two more products over the whole batch (input gradient
    /// <c>[N·H·W, K] × [K, C]</c>, weight gradient <c>[K, N·H·W] × [N·H·W, C]</c>). libtorch's own 1×1 convolution without
    /// oneDNN multiplies image by image (17 × 17 = 289 rows each in inception_v3's middle stage), which keeps MKL further
    /// from its peak: whole training steps ran 2–5 % faster this way (docs/benchmarks.md). Equal to the convolution up to
    /// float32 rounding; no copy of the input (its channels-last rows are read in place), the same tensors saved.
    /// </summary>
    internal static class Pointwise
    {
        /// <summary>
        /// Whether <see cref="Forward"/> computes <paramref name="conv"/> on <paramref name="input"/>: a 1×1 float32 CPU
        /// convolution with stride 1, no padding, one group and no hooks; gradients being recorded; and a 4-d channels-last
        /// float32 CPU input.
        /// </summary>
        public static bool Applies(Conv2d conv, Tensor input)
        {
            ArgumentNullException.ThrowIfNull(conv);
            ArgumentNullException.ThrowIfNull(input);
            var weight = conv.weight;
            if (weight is null || weight.dim() != 4 || weight.shape[2] != 1 || weight.shape[3] != 1) return false;
            if (weight.dtype != ScalarType.Float32 || weight.device_type != DeviceType.CPU) return false;
            if (input.dim() != 4 || input.dtype != ScalarType.Float32 || input.device_type != DeviceType.CPU || input.shape[1] != weight.shape[1]) return false;
            if (conv.groups != 1 || conv.stride.Any(s => s != 1) || conv.padding_type is not null || (conv.padding?.Any(p => p != 0) ?? false)) return false;
            if (!is_grad_enabled() || !(input.requires_grad || weight.requires_grad)) return false;
            return MemoryFormat.IsChannelsLast(input) && !ModuleHooks.Any(conv);
        }

        /// <summary><paramref name="conv"/> applied to <paramref name="input"/> (where it <see cref="Applies"/>), channels-last.</summary>
        public static Tensor Forward(Conv2d conv, Tensor input)
        {
            ArgumentNullException.ThrowIfNull(conv);
            ArgumentNullException.ThrowIfNull(input);
            using var scope = NewDisposeScope();
            long n = input.shape[0], c = input.shape[1], h = input.shape[2], w = input.shape[3], k = conv.weight!.shape[0];
            var rows = input.permute(0, 2, 3, 1).reshape(n * h * w, c);
            var product = rows.mm(conv.weight.view(k, c).t());
            if (conv.bias is { } bias)
            {
                using var one = 1.0.ToScalar();
                product = product.add(bias, one);
            }
            return product.view(n, h, w, k).permute(0, 3, 1, 2).MoveToOuterDisposeScope();
        }
    }

    /// <summary>
    /// An image stem in a training step (a convolution of at most <see cref="ProductConvolution.MaxFewChannels"/> input
    /// channels that need no gradient, such as googlenet's 7×7 and inception_v3's 3×3 layer on the RGB batch), as
    /// matrix products over a strided view of the input's windows, recorded as one autograd function.
    /// </summary>
    /// <remarks>
    /// libtorch without oneDNN unfolds a channels-last input window by window in runs of C numbers, three for an RGB
    /// image, for the forward pass and again for the weight gradient. Here each window row of <c>kw·C</c> numbers is one
    /// contiguous run of the padded NHWC input, so the columns of a few images come from one strided copy
    /// (<see cref="ProductConvolution"/>), for the forward pass and again for the weight gradient; only the input, which
    /// the step holds anyway, is saved, not the columns. The input gradient is not computed: the path is taken only for
    /// inputs that need none.
    /// </remarks>
    internal static class Stem
    {
        /// <summary>Columns of about this many bytes are built at a time.</summary>
        public const long ColumnBudgetBytes = 16L << 20;

        private static long forwardCount;

        /// <summary>How many times <see cref="Forward"/> has run in this process (for tests and diagnostics).</summary>
        internal static long ForwardCount => Interlocked.Read(ref forwardCount);

        /// <summary>
        /// Whether <see cref="Forward"/> computes <paramref name="conv"/> on <paramref name="input"/>: a float32 CPU
        /// convolution with a kernel larger than 1×1, zero padding, no dilation or groups and no hooks, whose weight
        /// records a gradient, on a 4-d channels-last float32 CPU input of at most
        /// <see cref="ProductConvolution.MaxFewChannels"/> channels that records none.
        /// </summary>
        public static bool Applies(Conv2d conv, Tensor input)
        {
            ArgumentNullException.ThrowIfNull(conv);
            ArgumentNullException.ThrowIfNull(input);
            var weight = conv.weight;
            if (weight is null || weight.dim() != 4 || weight.dtype != ScalarType.Float32 || weight.device_type != DeviceType.CPU) return false;
            if (weight.shape[2] == 1 && weight.shape[3] == 1) return false;
            if (input.dim() != 4 || input.dtype != ScalarType.Float32 || input.device_type != DeviceType.CPU) return false;
            if (input.shape[1] != weight.shape[1] || input.shape[1] > ProductConvolution.MaxFewChannels) return false;
            if (conv.groups != 1 || conv.padding_type is not null || conv.padding_mode != PaddingModes.Zeros || conv.dilation.Any(d => d != 1)) return false;
            if (!is_grad_enabled() || !weight.requires_grad || input.requires_grad) return false;
            return MemoryFormat.IsChannelsLast(input) && !ModuleHooks.Any(conv);
        }

        /// <summary><paramref name="conv"/> applied to <paramref name="input"/> (where it <see cref="Applies"/>), channels-last.</summary>
        public static Tensor Forward(Conv2d conv, Tensor input)
        {
            ArgumentNullException.ThrowIfNull(conv);
            Interlocked.Increment(ref forwardCount);
            // TorchSharp 0.107 keeps, beside the output of a custom autograd function, an uninitialised tensor of its size
            // until the graph is freed; made in this scope, it is freed on return (see WinogradTraining.Forward).
            using var scope = NewDisposeScope();
            return Function.apply(input, conv.weight!, conv.bias, conv).MoveToOuterDisposeScope();
        }

        /// <summary>
        /// The weight gradient [K, C, kh, kw] (channels-last) of <paramref name="conv"/> from its <paramref name="input"/>
        /// and <paramref name="outputGradient"/>, the columns rebuilt a few images at a time.
        /// </summary>
        internal static Tensor WeightGradient(Conv2d conv, Tensor input, Tensor outputGradient)
        {
            using var scope = NewDisposeScope();
            var weight = conv.weight!;
            long batch = input.shape[0], channels = input.shape[1];
            long outChannels = weight.shape[0], kh = weight.shape[2], kw = weight.shape[3];
            var windows = new ProductConvolution.Windows(input, kh, kw, conv.stride[0], conv.stride[1], conv.padding?[0] ?? 0, conv.padding?[1] ?? 0);
            long rowsPerImage = windows.RowsPerImage;
            var gradientRows = outputGradient.permute(0, 2, 3, 1).reshape(batch * rowsPerImage, outChannels);
            long images = windows.ImagesWithin(ColumnBudgetBytes);
            // [K, kh·kw·C]: the columns' order (kh, kw, C).
            var gradient = zeros(outChannels, windows.ColumnsPerRow);
            for (long start = 0; start < batch; start += images)
            {
                long count = Math.Min(images, batch - start);
                using var _ = NewDisposeScope();
                gradient.addmm_(gradientRows.narrow(0, start * rowsPerImage, count * rowsPerImage).t(), windows.Columns(start, count), 1f, 1f);
            }

            return gradient.view(outChannels, kh, kw, channels).permute(0, 3, 1, 2).MoveToOuterDisposeScope();
        }

        private sealed class Function : autograd.SingleTensorFunction<Function>
        {
            private const string ConvKey = "conv", BiasKey = "bias";

            public override string Name => "StemConvolutionBackward";

            public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
            {
                var input = (Tensor)vars[0];
                var conv = (Conv2d)vars[3];
                ctx.set_materialize_grads(false);
                ctx.save_for_backward([input]);
                ctx.save_data(ConvKey, conv);
                ctx.save_data(BiasKey, vars[2] is Tensor);
                return ProductConvolution.Forward(conv, input, ColumnBudgetBytes);
            }

            public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
            {
                if (grad_output is null || grad_output.IsInvalid) return [null!, null!, null!, null!];
                // TorchSharp wraps the output gradient in a handle of the scope around backward() (the step's), which
                // would hold it to the step's end; libtorch keeps its own reference for as long as it needs it.
                using var gradientHandle = grad_output;
                using var scope = NewDisposeScope();
                var conv = (Conv2d)ctx.get_data(ConvKey);
                var input = ctx.get_saved_variables()[0];
                var weightGradient = WeightGradient(conv, input, grad_output).MoveToOuterDisposeScope();
                var biasGradient = (bool)ctx.get_data(BiasKey) ? grad_output.sum([0, 2, 3]).MoveToOuterDisposeScope() : null;
                return [null!, weightGradient, biasGradient!, null!];
            }
        }
    }
}
