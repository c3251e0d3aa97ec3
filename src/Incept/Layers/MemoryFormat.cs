using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// The channels-last memory layout (N×C×H×W shapes with N×H×W×C strides), in which libtorch's oneDNN convolutions
/// run faster on the CPU. TorchSharp 0.107 has no <c>memory_format</c> argument, so the layout is made by hand.
/// </summary>
public static class MemoryFormat
{
    /// <summary>
    /// The same N×C×H×W tensor with channels-last strides: <paramref name="x"/> itself when it has them, else a copy
    /// that owns its storage (not a view, so that it can serve as a trained parameter).
    /// </summary>
    public static Tensor ToChannelsLast(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4) throw new ArgumentException($"Channels-last needs a 4-d tensor; got {x.dim()} dimensions.", nameof(x));
        return IsChannelsLast(x) ? x : WithStrides(x, ChannelsLastStrides(x.shape));
    }

    /// <summary>
    /// Gives every convolution of <paramref name="model"/> a channels-last weight: a new parameter with the same values
    /// and the same <c>requires_grad</c>. Activations follow the weights, so the whole network then runs channels-last.
    /// Call it before an optimizer or a moving average is made from the parameters.
    /// </summary>
    public static void ToChannelsLast(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var _ = no_grad();
        // TorchSharp's modules() lists the descendants only, so the module itself is added.
        foreach (var conv in model.modules().Prepend(model).OfType<Conv2d>())
        {
            var weight = conv.weight!;
            var converted = ToChannelsLast(weight);
            if (!ReferenceEquals(converted, weight))
                conv.weight = new Parameter(converted.DetachFromDisposeScope(), requires_grad: weight.requires_grad);
        }
    }

    /// <summary>Whether the 4-d tensor <paramref name="x"/> has exactly the channels-last strides of its shape.</summary>
    /// <remarks>Read size by size: <c>shape</c> and <c>stride()</c> each cost an array and a native call, which a batch-1
    /// pass pays on every layer.</remarks>
    internal static bool IsChannelsLast(Tensor x)
    {
        long c = x.size(1), w = x.size(3);
        return x.stride(1) == 1 && x.stride(3) == c && x.stride(2) == w * c && x.stride(0) == x.size(2) * w * c;
    }

    /// <summary>
    /// A new uninitialised N×C×H×W float32 CPU tensor with channels-last strides, made as such (no N×H×W×C tensor and
    /// permuted view of it).
    /// </summary>
    internal static Tensor EmptyChannelsLast(long batch, long channels, long height, long width)
        => empty_strided([batch, channels, height, width], [height * width * channels, 1, width * channels, channels]);

    /// <summary>The channels-last strides of an N×C×H×W <paramref name="shape"/>.</summary>
    internal static long[] ChannelsLastStrides(long[] shape)
    {
        var (c, h, w) = (shape[1], shape[2], shape[3]);
        return [h * w * c, 1, w * c, c];
    }

    /// <summary>A copy of <paramref name="x"/> with the given strides (same shape, dtype and device).</summary>
    internal static Tensor WithStrides(Tensor x, long[] strides)
    {
        var y = empty_strided(x.shape, strides, x.dtype, x.device);
        y.copy_(x);
        return y;
    }
}
