using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Runtime;

/// <summary>The outcome of <see cref="ConvolutionSelfTest.Run()"/>.</summary>
/// <param name="Passed">Whether every case agreed with the float64 result.</param>
/// <param name="Failure">The first case that did not, with its relative error; null when all passed.</param>
/// <param name="Cases">How many cases ran (forward, input gradient and weight gradient count as one case).</param>
public sealed record ConvolutionCheckResult(bool Passed, string? Failure, int Cases);

/// <summary>
/// Checks, on small inputs, that libtorch's float32 convolutions on the CPU compute what float64 computes: the
/// output and the gradients of the input and the weights, in the NCHW and channels-last layouts, with channel counts
/// that leave a partial block in oneDNN's kernels.
/// </summary>
/// <remarks>
/// <para>Found on a virtual machine with AMD Zen 5 cores whose CPUID reports no cache or core topology: libtorch
/// 2.10's oneDNN 3.7.1 kernels gave wrong values (errors of 20–60 % of the output's range, the same on every run)
/// wherever the output channels end in a partial block of 16 (112, 144, 208, 320 channels) or the input channels do
/// (24), in AVX-512 and AVX2 code alike; libtorch's own kernels, and PyTorch 1.13's oneDNN 2.6 on the same machine,
/// were right. GoogLeNet's <c>inception4b</c> has 112 such channels, so its logits were wrong, then NaN. The cases
/// here reproduce those failures in about 0.1 s.</para>
/// <para>The inputs are fixed formulas, so the check neither reads nor moves torch's random number generator.</para>
/// </remarks>
public static class ConvolutionSelfTest
{
    /// <summary>Relative tolerance: the largest error allowed, as a share of the largest float64 value.</summary>
    public const double Tolerance = 1e-4;

    private static readonly Case[] Cases =
    [
        new(Batch: 2, In: 24, Out: 40, Kernel: 3, Stride: 1, Size: 7, ChannelsLast: false),
        new(Batch: 16, In: 24, Out: 40, Kernel: 3, Stride: 1, Size: 7, ChannelsLast: false),
        new(Batch: 2, In: 40, Out: 112, Kernel: 1, Stride: 1, Size: 7, ChannelsLast: true),
        new(Batch: 2, In: 48, Out: 320, Kernel: 1, Stride: 1, Size: 7, ChannelsLast: true),
        new(Batch: 2, In: 24, Out: 208, Kernel: 3, Stride: 1, Size: 7, ChannelsLast: true),
        new(Batch: 2, In: 32, Out: 48, Kernel: 3, Stride: 2, Size: 9, ChannelsLast: true),
        new(Batch: 2, In: 3, Out: 32, Kernel: 3, Stride: 2, Size: 15, ChannelsLast: false),
    ];

    /// <summary>Runs every case on the CPU in float32 and compares it with float64.</summary>
    public static ConvolutionCheckResult Run() => Run(static (x, w, stride, padding) => nn.functional.conv2d(x, w, strides: stride, padding: padding));

    /// <summary>
    /// Runs every case with <paramref name="convolution"/> (input, weight, stride, padding) as the float32 convolution
    /// under test; the float64 reference is always libtorch's.
    /// </summary>
    internal static ConvolutionCheckResult Run(Func<Tensor, Tensor, long[], long[], Tensor> convolution)
    {
        using var grad = enable_grad();
        foreach (var c in Cases)
        {
            using var scope = NewDisposeScope();
            if (Check(c, convolution) is { } failure) return new ConvolutionCheckResult(false, failure, Cases.Length);
        }

        return new ConvolutionCheckResult(true, null, Cases.Length);
    }

    private static string? Check(Case c, Func<Tensor, Tensor, long[], long[], Tensor> convolution)
    {
        long pad = c.Kernel / 2;
        long[] stride = [c.Stride, c.Stride], padding = [pad, pad];
        var input64 = Values([c.Batch, c.In, c.Size, c.Size], 0.37);
        var weight64 = Values([c.Out, c.In, c.Kernel, c.Kernel], 0.11);
        using (var scale = (1.0 / Math.Sqrt(c.In * c.Kernel * c.Kernel)).ToScalar()) weight64.mul_(scale);

        var input = Layout(input64.to_type(ScalarType.Float32), c.ChannelsLast).requires_grad_();
        var weight = Layout(weight64.to_type(ScalarType.Float32), c.ChannelsLast).requires_grad_();
        var output = convolution(input, weight, stride, padding);
        var upstream = Values(output.shape, 0.23);
        var grads = autograd.grad([output], [input, weight], [upstream.to_type(ScalarType.Float32)]);

        input64.requires_grad_();
        weight64.requires_grad_();
        var output64 = nn.functional.conv2d(input64, weight64, strides: stride, padding: padding);
        var grads64 = autograd.grad([output64], [input64, weight64], [upstream]);

        return Compare("output", output, output64, c) ?? Compare("input gradient", grads[0], grads64[0], c)
            ?? Compare("weight gradient", grads[1], grads64[1], c);
    }

    /// <summary>sin(0.5 + k × <paramref name="step"/>) for k = 1, 2, … over the elements in order, in float64.</summary>
    private static Tensor Values(long[] shape, double step)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        using var s = step.ToScalar();
        using var half = 0.5.ToScalar();
        // 1, 2, …, count without arange, whose overloads make temporary scalars.
        using var ones = torch.ones(count, ScalarType.Float64);
        return ones.cumsum(0).mul_(s).add_(half, Scalars.One).sin_().reshape(shape);
    }

    private static Tensor Layout(Tensor t, bool channelsLast) =>
        channelsLast ? t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) : t;

    private static string? Compare(string what, Tensor actual, Tensor expected, Case c)
    {
        double scale = expected.abs().max().item<double>();
        double error = actual.to_type(ScalarType.Float64).sub(expected).abs().max().item<double>();
        if (error <= Tolerance * scale) return null;
        string layout = c.ChannelsLast ? "channels-last" : "NCHW";
        return $"the {what} of a {c.Kernel}×{c.Kernel} convolution (stride {c.Stride}) from {c.In} to {c.Out} channels " +
            $"on a {c.Batch}×{c.In}×{c.Size}×{c.Size} {layout} input is off by {error / scale:P0} of its range";
    }

    private sealed record Case(int Batch, int In, int Out, int Kernel, int Stride, int Size, bool ChannelsLast);
}
