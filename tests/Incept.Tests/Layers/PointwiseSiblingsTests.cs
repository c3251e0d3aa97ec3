using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>1×1 convolutions that read the same input, computed as one product, give each convolution's ReLU output.</summary>
public class PointwiseSiblingsTests
{
    private static Conv2d Pointwise(long cin, long cout, bool bias = true)
    {
        var conv = nn.Conv2d(cin, cout, 1L, bias: bias);
        MemoryFormat.ToChannelsLast(conv);
        return conv;
    }

    private static double RelativeError(Tensor actual, Tensor expected)
        => (actual - expected).abs().max().item<float>() / expected.abs().max().item<float>();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Each_member_gets_its_convolutions_relu_output(bool bias)
    {
        manual_seed(31);
        using var a = Pointwise(12, 5, bias);
        using var b = Pointwise(12, 9, bias);
        using var c = Pointwise(12, 3, bias);
        using var group = PointwiseSiblings.Create([a, b, c]);
        using var input = MemoryFormat.ToChannelsLast(randn(3, 12, 6, 4));
        using var _ = inference_mode();

        // Members in any order, each once.
        foreach (var (member, conv) in new[] { (1, b), (0, a), (2, c) })
        {
            using var expected = conv.call(input).relu();
            using var actual = group.Forward(member, input);
            Assert.Equal(expected.shape, actual.shape);
            Assert.True(RelativeError(actual, expected) < 1e-5, $"member {member}: relative error {RelativeError(actual, expected)}");
        }

        Assert.Equal(3, group.Members);
    }

    [Fact]
    public void The_shared_product_is_let_go_once_every_member_has_its_slice_and_never_reused_for_another_input()
    {
        manual_seed(32);
        using var a = Pointwise(8, 4);
        using var b = Pointwise(8, 6);
        using var group = PointwiseSiblings.Create([a, b]);
        using var first = MemoryFormat.ToChannelsLast(randn(2, 8, 5, 5));
        using var second = MemoryFormat.ToChannelsLast(randn(2, 8, 5, 5));
        using var _ = inference_mode();

        using var firstA = group.Forward(0, first);
        Assert.True(group.HoldsOutput);
        // Another input before b took its slice: a fresh product for it, not the first input's.
        using var secondB = group.Forward(1, second);
        using var expectedB = b.call(second).relu();
        Assert.True(RelativeError(secondB, expectedB) < 1e-5);
        Assert.True(group.HoldsOutput);

        using var secondA = group.Forward(0, second);
        Assert.False(group.HoldsOutput);
        // The slices handed out keep their values after the product is let go.
        using var expectedA = a.call(first).relu();
        Assert.True(RelativeError(firstA, expectedA) < 1e-5);
    }

    [Fact]
    public void Only_pointwise_convolutions_of_one_input_width_and_bias_can_share_a_product()
    {
        using var pointwise = Pointwise(8, 4);
        using var other = Pointwise(8, 6);
        using var wider = Pointwise(10, 4);
        using var noBias = Pointwise(8, 4, bias: false);
        using var strided = nn.Conv2d(8, 4, 1L, stride: 2L);
        using var padded = nn.Conv2d(8, 4, 1L, padding: 1L);
        using var threeByThree = nn.Conv2d(8, 4, 3L);
        using var grouped = nn.Conv2d(8, 4, 1L, groups: 2);

        Assert.True(PointwiseSiblings.CanJoin(pointwise));
        Assert.False(PointwiseSiblings.CanJoin(strided));
        Assert.False(PointwiseSiblings.CanJoin(padded));
        Assert.False(PointwiseSiblings.CanJoin(threeByThree));
        Assert.False(PointwiseSiblings.CanJoin(grouped));
        Assert.Throws<ArgumentException>(() => PointwiseSiblings.Create([pointwise]));
        Assert.Throws<ArgumentException>(() => PointwiseSiblings.Create([pointwise, wider]));
        Assert.Throws<ArgumentException>(() => PointwiseSiblings.Create([pointwise, noBias]));
        Assert.Throws<ArgumentException>(() => PointwiseSiblings.Create([pointwise, threeByThree]));
        using var group = PointwiseSiblings.Create([pointwise, other]);
        Assert.Equal(2, group.Members);
    }
}
