using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>Weight initialisations of the references that TorchSharp does not provide correctly.</summary>
public static class Init
{
    /// <summary>
    /// Fills <paramref name="tensor"/> in place with values from a normal distribution of mean
    /// <paramref name="mean"/> and standard deviation <paramref name="std"/>, truncated to
    /// [<paramref name="a"/>, <paramref name="b"/>], as PyTorch's <c>torch.nn.init.trunc_normal_</c> draws them
    /// (inverse-CDF sampling, then clamping).
    /// </summary>
    /// <remarks>
    /// TorchSharp 0.107's <c>nn.init.trunc_normal_</c> fills the tensor with one constant (every weight equal to
    /// <paramref name="std"/>), which leaves a network symmetric and untrainable; the initialisers use this instead.
    /// </remarks>
    public static Tensor TruncatedNormal(Tensor tensor, double mean, double std, double a, double b)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(std);
        using var _ = no_grad();
        double lower = NormalCdf((a - mean) / std), upper = NormalCdf((b - mean) / std);
        tensor.uniform_(2 * lower - 1, 2 * upper - 1);
        tensor.erfinv_();
        tensor.mul_(std * Math.Sqrt(2));
        tensor.add_(mean);
        tensor.clamp_(a, b);
        return tensor;
    }

    private static double NormalCdf(double x)
    {
        using var t = tensor(x / Math.Sqrt(2), dtype: ScalarType.Float64);
        using var erf = t.erf();
        return (1 + erf.item<double>()) / 2;
    }
}
