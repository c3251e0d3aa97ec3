using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>The close of an Inception-ResNet block, input + scale · projection(branches), fused or not.</summary>
public class ResidualTests
{
    [Theory]
    [InlineData(0.17, true, 6)]
    [InlineData(1.0, true, 3)]
    [InlineData(0.1, false, 5)]
    public void The_fused_sum_equals_projection_scaling_and_sum(double scale, bool bias, long size)
    {
        manual_seed(23);
        using var projection = nn.Conv2d(12, 20, 1L, bias: bias);
        MemoryFormat.ToChannelsLast(projection);
        using var branches = MemoryFormat.ToChannelsLast(randn(3, 12, size, size));
        using var input = MemoryFormat.ToChannelsLast(randn(3, 20, size, size));
        using var _ = inference_mode();
        Assert.True(Residual.CanFuse(projection, branches, input));

        using var expected = projection.call(branches).Times(scale).Plus(input);
        using var fused = Residual.ProjectedSum(projection, branches, scale, input, fused: true);
        using var plain = Residual.ProjectedSum(projection, branches, scale, input, fused: false);
        Assert.Equal(MemoryFormat.ChannelsLastStrides(expected.shape), fused.stride());
        foreach (var actual in new[] { fused, plain })
        {
            Assert.Equal(expected.shape, actual.shape);
            double error = (actual - expected).abs().max().item<float>() / expected.abs().max().item<float>();
            Assert.True(error < 1e-5, $"relative error {error}");
        }

        // The result is fresh: a ReLU in place leaves the block's input alone.
        using var before = input.clone();
        fused.relu_();
        Assert.True(input.allclose(before, rtol: 0, atol: 0));
    }

    [Fact]
    public void Only_pointwise_channels_last_work_without_gradients_is_fused()
    {
        using var pointwise = nn.Conv2d(12, 20, 1L);
        using var strided = nn.Conv2d(12, 20, 1L, stride: 2L);
        using var wide = nn.Conv2d(12, 20, 3L, padding: 1L);
        using var branches = MemoryFormat.ToChannelsLast(randn(2, 12, 4, 4));
        using var input = MemoryFormat.ToChannelsLast(randn(2, 20, 4, 4));
        using var nchwInput = randn(2, 20, 4, 4);
        using var otherGrid = MemoryFormat.ToChannelsLast(randn(2, 20, 5, 5));

        using (inference_mode())
        {
            Assert.True(Residual.CanFuse(pointwise, branches, input));
            Assert.False(Residual.CanFuse(strided, branches, input));
            Assert.False(Residual.CanFuse(wide, branches, input));
            Assert.False(Residual.CanFuse(pointwise, branches, nchwInput));
            Assert.False(Residual.CanFuse(pointwise, branches, otherGrid));
        }

        // With autograd on, the weight needs a gradient: the projection module is called.
        Assert.False(Residual.CanFuse(pointwise, branches, input));
    }
}
