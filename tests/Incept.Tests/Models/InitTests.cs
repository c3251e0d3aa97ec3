using Incept.Layers;
using Incept.Registry;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

public class InitTests
{
    [Fact]
    public void Truncated_normal_has_the_requested_spread_stays_in_bounds_and_is_finite()
    {
        manual_seed(3);
        using var t = empty(2_000_000);
        Init.TruncatedNormal(t, std: 0.5, low: -1, high: 1);
        Assert.Equal(0L, t.isnan().sum().item<long>());
        Assert.True(t.min().item<float>() >= -1 && t.max().item<float>() <= 1);
        // N(0, 0.25) truncated at ±2σ has standard deviation 0.5 × 0.8796.
        Assert.InRange(t.std().item<float>(), 0.438f, 0.442f);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(5)]
    public void GoogLeNet_initialisation_never_produces_a_nan(int seed)
    {
        // TorchSharp's trunc_normal_ with torchvision's bounds (±200σ) gave NaN weights for seed 2.
        manual_seed(seed);
        using var model = ModelFactory.Create("googlenet");
        foreach (var (name, p) in model.named_parameters())
            Assert.True(p.isfinite().all().item<bool>(), $"{name} has a non-finite value");
    }
}
