using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// The convolution of a conv unit (conv → BatchNorm → ReLU) in a training step: by Winograd's method where the unit asks
/// for it and <see cref="WinogradTraining"/> applies, a 1×1 convolution as one matrix product over the whole batch where
/// <see cref="Pointwise"/> applies, else the module's own call.
/// </summary>
internal static class TrainingConvolution
{
    /// <summary><paramref name="conv"/> applied to <paramref name="input"/> in whichever way applies (see the class).</summary>
    public static Tensor Forward(Conv2d conv, Tensor input, bool winograd)
    {
        ArgumentNullException.ThrowIfNull(conv);
        if (!conv.training) return conv.call(input);
        if (winograd && WinogradTraining.Applies(conv, input)) return WinogradTraining.Forward(conv, input);
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
}
