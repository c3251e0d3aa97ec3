using Incept.Training;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

/// <summary>Flip test-time augmentation: the averaged probabilities, checked by hand and by symmetry.</summary>
public class TestTimeAugmentationTests
{
    /// <summary>A scorer whose two logits are the sums of the left and right halves of each image: a mirror swaps them.</summary>
    private static Tensor HalfSums(Tensor images)
    {
        long w = images.shape[^1];
        var left = images.narrow(-1, 0, w / 2).sum([1, 2, 3]);
        var right = images.narrow(-1, w / 2, w - w / 2).sum([1, 2, 3]);
        return stack([left, right, zeros_like(left)], 1);
    }

    [Fact]
    public void Flip_scores_each_image_by_the_mean_of_its_own_and_its_mirror_images_probabilities()
    {
        // One 1×1×2 image with pixels (1, 3): logits (1, 3, 0), mirrored (3, 1, 0).
        using var image = tensor(new double[] { 1, 3 }, [1, 1, 1, 2]);
        using var plain = TestTimeAugmentation.None.Logits(HalfSums, image);
        using var flipped = TestTimeAugmentation.HorizontalFlip.Logits(HalfSums, image);
        Assert.Equal(new double[] { 1, 3, 0 }, plain.data<double>().ToArray());

        double z = Math.Exp(1) + Math.Exp(3) + 1;
        double[] expected = [(Math.Exp(1) + Math.Exp(3)) / (2 * z), (Math.Exp(3) + Math.Exp(1)) / (2 * z), 1 / z];
        var got = flipped.data<double>().ToArray();
        for (int k = 0; k < 3; k++) Assert.Equal(Math.Log(expected[k]), got[k], 12);
        // The result is a log-probability vector: its probabilities sum to one.
        Assert.Equal(1.0, flipped.exp().sum().item<double>(), 12);
    }

    [Fact]
    public void Flip_gives_an_image_and_its_mirror_the_same_scores_and_changes_nothing_for_a_symmetric_image()
    {
        using var gen = new Generator(3);
        using var images = randn([4, 2, 5, 6], dtype: ScalarType.Float64, generator: gen);
        using var weights = randn([3, 2 * 5 * 6], dtype: ScalarType.Float64, generator: gen);
        Tensor Linear(Tensor x) => x.flatten(1).matmul(weights.t());

        using var a = TestTimeAugmentation.HorizontalFlip.Logits(Linear, images);
        using var mirrored = images.flip(-1);
        using var b = TestTimeAugmentation.HorizontalFlip.Logits(Linear, mirrored);
        Assert.True(a.allclose(b, rtol: 1e-12, atol: 1e-12));
        using var plainA = Linear(images);
        using var plainB = Linear(mirrored);
        Assert.False(plainA.allclose(plainB), "the scorer should not be mirror-symmetric, or the test proves nothing");

        using var symmetric = images.Plus(mirrored).Over(2);
        using var once = Linear(symmetric).log_softmax(1);
        using var averaged = TestTimeAugmentation.HorizontalFlip.Logits(Linear, symmetric);
        Assert.True(averaged.allclose(once, rtol: 1e-12, atol: 1e-12));
    }

    [Theory]
    [InlineData("none", TestTimeAugmentation.None)]
    [InlineData("flip", TestTimeAugmentation.HorizontalFlip)]
    [InlineData(" Flip ", TestTimeAugmentation.HorizontalFlip)]
    [InlineData("hflip", TestTimeAugmentation.HorizontalFlip)]
    public void Names_parse_and_round_trip(string name, TestTimeAugmentation expected)
    {
        Assert.Equal(expected, TestTimeAugmentationNames.Parse(name));
        Assert.Equal(expected, TestTimeAugmentationNames.Parse(expected.Name()));
    }

    [Fact]
    public void An_unknown_name_is_one_sentence_naming_the_choices()
    {
        var e = Assert.Throws<TrainingSettingException>(() => TestTimeAugmentationNames.Parse("five-crop"));
        Assert.Equal("Unknown test-time augmentation 'five-crop'; use none or flip.", e.Message);
    }
}
