using Incept.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

/// <summary>Clipping by global norm as TensorFlow's clip_by_global_norm.</summary>
public class GradientClippingTests
{
    [Fact]
    public void Gradients_above_the_threshold_are_scaled_together_to_it()
    {
        using var a = nn.Parameter(zeros(new long[] { 2 }, ScalarType.Float64));
        using var b = nn.Parameter(zeros(new long[] { 1 }, ScalarType.Float64));
        using var frozen = nn.Parameter(zeros(new long[] { 1 }, ScalarType.Float64));
        using (var scope = NewDisposeScope())
            a.mul(tensor(new double[] { 3, 4 })).sum().Plus(b.Times(12).sum()).backward();
        // Global norm √(3² + 4² + 12²) = 13; clipped to 2 by the factor 2/13.
        var norm = GradientClipping.ClipByGlobalNorm([a, b, frozen], 2.0);
        Assert.Equal(13, norm, 12);
        var clipped = a.grad!.data<double>().ToArray();
        Assert.Equal(6.0 / 13, clipped[0], 12);
        Assert.Equal(8.0 / 13, clipped[1], 12);
        Assert.Equal(24.0 / 13, b.grad!.data<double>()[0], 12);
        Assert.Null(frozen.grad);
    }

    [Fact]
    public void Gradients_within_the_threshold_are_unchanged()
    {
        using var a = nn.Parameter(zeros(new long[] { 2 }, ScalarType.Float64));
        using (var scope = NewDisposeScope())
            a.mul(tensor(new double[] { 0.6, 0.8 })).sum().backward();
        Assert.Equal(1, GradientClipping.ClipByGlobalNorm([a], 2.0), 12);
        Assert.Equal(new[] { 0.6, 0.8 }, a.grad!.data<double>().ToArray());
        Assert.Equal(0, GradientClipping.ClipByGlobalNorm([], 2.0));
        Assert.Equal("grad_clip_norm", Assert.Throws<TrainingSettingException>(() => GradientClipping.ClipByGlobalNorm([a], 0)).Setting);
    }
}
