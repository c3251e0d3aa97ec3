using Incept.Layers;
using Incept.Registry;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

public class InitTests
{
    [Fact]
    public void Truncated_normal_draws_within_the_bounds_with_the_truncated_distributions_moments()
    {
        using var t = empty(200_000);
        Init.TruncatedNormal(t, std: 1, a: -1, b: 2, mean: 0.5);
        Assert.True(t.min().item<float>() >= -1);
        Assert.True(t.max().item<float>() <= 2);
        // Truncated at ±1.5 standard deviations: the mean stays, the standard deviation is 0.7426.
        Assert.Equal(0.5, t.mean().item<float>(), 0.01);
        Assert.Equal(0.7426, t.std().item<float>(), 0.01);
    }

    [Theory]
    [InlineData("googlenet", "inception4a.branch2.1.conv.weight", 0.01)]
    [InlineData("inception_v3", "Mixed_6b.branch7x7_2.conv.weight", 0.1)]
    public void The_reference_initialisers_draw_varied_weights_with_the_reference_spread(string name, string key, double std)
    {
        // TorchSharp 0.107's trunc_normal_ gave every weight the value std, a symmetric network that cannot learn.
        using var model = ModelFactory.Create(name);
        var w = model.state_dict()[key];
        Assert.Equal(0, w.mean().item<float>(), 5 * std / Math.Sqrt(w.numel()));
        Assert.Equal(std, w.std().item<float>(), std / 10);
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
