using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>Weight initialisers shared by the families.</summary>
public static class Init
{
    /// <summary>
    /// Fills <paramref name="tensor"/> with a normal distribution N(<paramref name="mean"/>, <paramref name="std"/>²)
    /// truncated to [<paramref name="a"/>, <paramref name="b"/>], by redrawing the values outside the range.
    /// TorchSharp 0.107's <c>trunc_normal_</c> cannot be used: it gave every weight the same value in one test and
    /// the odd NaN in another, when the bounds lie hundreds of standard deviations out as torchvision's ±2 with
    /// std 0.01 do. (PyTorch draws by inverse CDF and clamps, which can put a few weights on the bounds; redrawing
    /// gives the exact truncated distribution.)
    /// </summary>
    public static void TruncatedNormal(Tensor tensor, double std, double a = -2, double b = 2, double mean = 0)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(std);
        if (!(a < b)) throw new ArgumentException($"The lower bound {a} must be below the upper bound {b}.", nameof(a));
        if (mean < a || mean > b) throw new ArgumentException($"The mean {mean} must lie within [{a}, {b}].", nameof(mean));
        double low = a, high = b;
        using var lowS = low.ToScalar();
        using var highS = high.ToScalar();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        tensor.normal_(mean, std);
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var outside = tensor.lt(lowS).logical_or_(tensor.gt(highS)).logical_or_(tensor.isnan());
            long count = outside.sum().item<long>();
            if (count == 0) return;
            tensor.masked_scatter_(outside, empty(count, dtype: tensor.dtype, device: tensor.device).normal_(mean, std));
        }

        throw new InvalidOperationException($"could not draw a normal with std {std} inside [{low}, {high}]");
    }
}
