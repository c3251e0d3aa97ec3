using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>Converting a model to channels-last keeps its weights' values and frees the replaced ones at once.</summary>
public class MemoryFormatTests
{
    [Fact]
    public void Converted_weights_keep_their_values_and_the_replaced_ones_are_freed()
    {
        manual_seed(5);
        using var model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1));
        var before = model.parameters().Where(p => p.dim() == 4).ToArray();
        var values = before.Select(p => p.detach().clone()).ToArray();

        MemoryFormat.ToChannelsLast(model);

        var after = model.parameters().Where(p => p.dim() == 4).ToArray();
        Assert.Equal(2, after.Length);
        for (int i = 0; i < after.Length; i++)
        {
            Assert.True(MemoryFormat.IsChannelsLast(after[i]));
            Assert.True(after[i].requires_grad);
            Assert.True(after[i].equal(values[i]).all().item<bool>());
            // TorchSharp's weight setter disposes the parameter it replaces: the model never holds two copies.
            Assert.True(before[i].IsInvalid);
        }

        foreach (var v in values) v.Dispose();
    }
}
