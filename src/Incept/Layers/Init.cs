using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>Weight initialisers shared by the families.</summary>
public static class Init
{
    /// <summary>
    /// Fills <paramref name="tensor"/> with a normal distribution N(0, <paramref name="std"/>²) truncated to
    /// [<paramref name="low"/>, <paramref name="high"/>], by redrawing the values outside the range. (TorchSharp's
    /// <c>trunc_normal_</c> returns the odd NaN when the bounds lie hundreds of standard deviations out, as
    /// torchvision's ±2 with std 0.01 do.)
    /// </summary>
    public static void TruncatedNormal(Tensor tensor, double std, double low = -2, double high = 2)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        tensor.normal_(0, std);
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var outside = tensor.lt(low).logical_or_(tensor.gt(high)).logical_or_(tensor.isnan());
            long count = outside.sum().item<long>();
            if (count == 0) return;
            tensor.masked_scatter_(outside, empty(count, dtype: tensor.dtype, device: tensor.device).normal_(0, std));
        }

        throw new InvalidOperationException($"could not draw a normal with std {std} inside [{low}, {high}]");
    }
}
