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

    [Fact]
    public void Channels_last_is_told_from_the_strides_alone_and_batch_slices_keep_it()
    {
        using var nchw = randn(3, 5, 4, 6);
        using var channelsLast = MemoryFormat.ToChannelsLast(nchw);
        using var slice = channelsLast.narrow(0, 1, 2);
        using var columnSlice = channelsLast.narrow(3, 1, 3);
        using var nhwc = nchw.permute(0, 2, 3, 1).contiguous();
        Assert.False(MemoryFormat.IsChannelsLast(nchw));
        Assert.True(MemoryFormat.IsChannelsLast(channelsLast));
        Assert.True(MemoryFormat.IsChannelsLast(slice));
        Assert.False(MemoryFormat.IsChannelsLast(columnSlice));
        Assert.False(MemoryFormat.IsChannelsLast(nhwc));
        using var made = MemoryFormat.EmptyChannelsLast(2, 7, 3, 5);
        Assert.Equal([2L, 7, 3, 5], made.shape);
        Assert.Equal(MemoryFormat.ChannelsLastStrides(made.shape), made.stride());
    }

    [Fact]
    public unsafe void The_address_of_a_channels_last_slice_is_that_of_its_first_value()
    {
        using var values = tensor(Enumerable.Range(0, 2 * 3 * 4 * 5).Select(i => (float)i).ToArray()).view(2, 3, 4, 5);
        using var channelsLast = MemoryFormat.ToChannelsLast(values);
        using var second = channelsLast.narrow(0, 1, 1);
        float* first = TensorData.ChannelsLastFloats(second);
        // In N×H×W×C order: the second image's first pixel, channels 0, 1, 2.
        Assert.Equal(second[0, 0, 0, 0].item<float>(), first[0]);
        Assert.Equal(second[0, 1, 0, 0].item<float>(), first[1]);
        Assert.Equal(second[0, 0, 0, 1].item<float>(), first[3]);
        using var nchw = randn(1, 3, 4, 5);
        Assert.Throws<ArgumentException>(() => (long)TensorData.ChannelsLastFloats(nchw));
    }
}
