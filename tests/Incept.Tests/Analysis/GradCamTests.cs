using Incept.Analysis;
using Incept.Data;
using Incept.Models;
using Incept.Registry;
using Incept.Tests.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Analysis;

public class GradCamTests
{
    /// <summary>
    /// A network whose answer is known: channel c of the 2-channel input passes unchanged (1×1 identity convolution, ReLU)
    /// to a 2×2 average pool, and logit c is the mean of channel c. The evidence for class c is exactly where channel c is
    /// bright.
    /// </summary>
    private sealed class ChannelMeanModel : InceptionModel
    {
        private readonly Conv2d conv;
        private readonly AvgPool2d pool;
        private readonly Linear fc;

        public ChannelMeanModel() : base(nameof(ChannelMeanModel), new ModelConfig { NumClasses = 2, InChannels = 2 })
        {
            conv = nn.Conv2d(2, 2, 1, bias: false);
            pool = nn.AvgPool2d(2);
            fc = nn.Linear(2, 2);
            using (no_grad())
            {
                conv.weight!.copy_(eye(2).reshape(2, 2, 1, 1));
                fc.weight!.copy_(eye(2));
                fc.bias!.zero_();
            }

            RegisterComponents();
        }

        public override int NumFeatures => 2;

        public override IReadOnlyList<FeatureInfo> FeatureInfo { get; } = [new(2, 1, "conv"), new(2, 2, "pool")];

        public override int MinInputSize => 2;

        public override Tensor ForwardHead(Tensor features, bool preLogits = false)
        {
            var pooled = features.mean([2, 3]);
            return preLogits ? pooled : fc.call(pooled);
        }

        public override void ResetClassifier(int numClasses) => throw new NotSupportedException();

        protected override Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux) => pool.call(nn.functional.relu(conv.call(x)));
    }

    /// <summary>Channel 0 is 1 in the top-left 4×4 quadrant of an 8×8 image, channel 1 is 0.5 in the bottom-right one.</summary>
    private static Tensor TwoRegions()
    {
        var x = zeros(1, 2, 8, 8);
        x[0, 0, TensorIndex.Slice(0, 4), TensorIndex.Slice(0, 4)] = tensor(1f);
        x[0, 1, TensorIndex.Slice(4, 8), TensorIndex.Slice(4, 8)] = tensor(0.5f);
        return x;
    }

    private static float Mean(HeatMap map, int y0, int y1, int x0, int x1)
    {
        float sum = 0;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) sum += map[y, x];
        return sum / ((y1 - y0) * (x1 - x0));
    }

    [Fact]
    public void Combine_weights_channels_by_the_spatial_mean_of_their_gradient()
    {
        var a = tensor(new float[] { 1, 2, 3, 4, -1, 0, 2, 1 }, [1, 2, 2, 2]);
        var g = tensor(new float[] { 0.1f, 0.3f, 0.2f, 0.2f, -1, 1, -2, 0 }, [1, 2, 2, 2]);
        // α = (0.2, −0.5); 0.2·A₀ − 0.5·A₁ = [[0.7, 0.4], [−0.4, 0.3]]; ReLU clears the negative cell.
        var cam = GradCam.Combine(a, g);
        Assert.Equal([1L, 2, 2], cam.shape);
        var expected = new[] { 0.7f, 0.4f, 0f, 0.3f };
        var actual = cam.data<float>().ToArray();
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], actual[i], 5);
    }

    [Fact]
    public void The_map_peaks_where_the_explained_class_finds_its_evidence()
    {
        using var model = new ChannelMeanModel();
        using var x = TwoRegions();

        var top = GradCam.Compute(model, x);
        Assert.Equal(0, top.ClassIndex);
        Assert.Equal("pool", top.Layer);
        // Logits are the channel means, 0.25 and 0.125.
        Assert.Equal(Math.Exp(0.25) / (Math.Exp(0.25) + Math.Exp(0.125)), top.Probability, 5);
        // At the layer's 4×4 resolution the map is exactly channel 0 after pooling: 1 in the top-left 2×2, 0 elsewhere.
        Assert.Equal([1f, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], top.Coarse.Values.ToArray());
        Assert.Equal((8, 8), (top.Map.Height, top.Map.Width));
        var (py, px) = top.Map.ArgMax();
        Assert.True(py < 4 && px < 4, $"class 0 peaks at ({py}, {px}), outside the top-left quadrant");
        Assert.Equal(1f, top.Map.Values.ToArray().Max());
        Assert.True(Mean(top.Map, 0, 4, 0, 4) > 0.6f);
        Assert.True(Mean(top.Map, 4, 8, 4, 8) < 0.05f);

        var other = GradCam.Compute(model, x, classIndex: 1);
        Assert.Equal(1, other.ClassIndex);
        Assert.Equal([0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1], other.Coarse.Values.ToArray());
        (py, px) = other.Map.ArgMax();
        Assert.True(py >= 4 && px >= 4, $"class 1 peaks at ({py}, {px}), outside the bottom-right quadrant");

        // A tap before the pool: the 8×8 output of the convolution; same evidence, full resolution.
        var tap = GradCam.Compute(model, x, classIndex: 1, layer: "conv");
        Assert.Equal("conv", tap.Layer);
        Assert.Equal((8, 8), (tap.Coarse.Height, tap.Coarse.Width));
        for (int y = 0; y < 8; y++)
            for (int c = 0; c < 8; c++) Assert.Equal(y >= 4 && c >= 4 ? 1f : 0f, tap.Coarse[y, c]);
    }

    [Fact]
    public void On_a_real_model_the_default_layer_is_the_last_feature_tap_and_the_model_is_left_as_it_was()
    {
        manual_seed(2);
        using var model = ModelFactory.Create("googlenet", new ModelConfig { NumClasses = 6, Width = 0.25, SmallInput = true });
        model.train();
        model.parameters().First().requires_grad = false;
        using var x = randn(1, 3, 28, 28);

        var byDefault = GradCam.Compute(model, x);
        var byTap = GradCam.Compute(model, x[0], byDefault.ClassIndex, "inception5b");
        Assert.Equal("inception5b", byDefault.Layer);
        Assert.Equal((28, 28), (byDefault.Map.Height, byDefault.Map.Width));
        Assert.Equal((4, 4), (byDefault.Coarse.Height, byDefault.Coarse.Width));
        Assert.All(byDefault.Map.Values.ToArray(), v => Assert.InRange(v, 0f, 1f));
        var a = byDefault.Map.Values.ToArray();
        var b = byTap.Map.Values.ToArray();
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 5);

        using (no_grad())
        {
            model.eval();
            var probabilities = nn.functional.softmax(model.call(x).Logits, 1);
            Assert.Equal(probabilities.argmax(1).item<long>(), byDefault.ClassIndex);
            Assert.Equal(probabilities[0, byDefault.ClassIndex].item<float>(), byDefault.Probability, 5);
        }

        model.train();
        var mid = GradCam.Compute(model, x, layer: "inception4e");
        Assert.Equal((7, 7), (mid.Coarse.Height, mid.Coarse.Width));
        Assert.True(model.training);
        Assert.False(model.parameters().First().requires_grad);
        Assert.True(model.parameters().Skip(1).All(p => p.requires_grad));
    }

    public static TheoryData<string> All() => RegistryModels.All();

    /// <summary>
    /// Every family can be explained from each of its feature taps, including modules inside a <c>Sequential</c>
    /// (Inception-v4's <c>features.N</c>), whose intermediates the container frees as it goes.
    /// </summary>
    [Theory]
    [MemberData(nameof(All))]
    public void Every_family_is_explained_from_each_feature_tap(string name)
    {
        manual_seed(5);
        using var model = ModelFactory.Create(ModelRegistry.Get(name), new ModelConfig { Width = 0.25, NumClasses = 4, SmallInput = true });
        using var x = randn(1, 3, 32, 32);
        foreach (var tap in model.FeatureInfo)
        {
            var result = GradCam.Compute(model, x, classIndex: 1, layer: tap.Module);
            Assert.Equal(tap.Module, result.Layer);
            Assert.Equal((32, 32), (result.Map.Height, result.Map.Width));
            Assert.InRange(result.Coarse.Height, 32 / tap.Reduction - 1, 32 / tap.Reduction); // unpadded layers lose a pixel
            Assert.All(result.Map.Values.ToArray(), v => Assert.InRange(v, 0f, 1f));
        }

        Assert.False(x.IsInvalid);
    }

    [Fact]
    public void A_class_or_layer_that_does_not_exist_is_one_clear_sentence()
    {
        using var model = new ChannelMeanModel();
        using var x = TwoRegions();
        var badClass = Assert.Throws<InceptException>(() => GradCam.Compute(model, x, classIndex: 2));
        Assert.Equal("Class 2 does not exist: the model has 2 classes, numbered 0 to 1.", badClass.Message);
        Assert.Throws<InceptException>(() => GradCam.Compute(model, x, classIndex: -1));
        var badLayer = Assert.Throws<InceptException>(() => GradCam.Compute(model, x, layer: "mixed_9z"));
        Assert.Contains("no layer 'mixed_9z'", badLayer.Message, StringComparison.Ordinal);
        Assert.Contains("conv, pool", badLayer.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Prepare_crops_as_the_weights_say_and_converts_to_the_networks_channels()
    {
        var pixels = new byte[40 * 50 * 3];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i % 3 == 0 ? 200 : 40);
        var image = new ByteImage(40, 50, 3, pixels);
        var spec = new PreprocessSpec(32, 0.875, "bilinear", [0.5f], [0.25f], false, 1.0);
        var (shown, input) = GradCam.Prepare(image, spec, 1);
        Assert.Equal((3, 32, 32), (shown.Channels, shown.Height, shown.Width));
        Assert.Equal((1, 32, 32), (input.Channels, input.Height, input.Width));
        // Luma of (200, 40, 40)/255, then (v − 0.5)/0.25.
        var luma = (0.299f * 200 + 0.587f * 40 + 0.114f * 40) / 255f;
        Assert.Equal((luma - 0.5f) / 0.25f, input[0, 16, 16], 3);
        Assert.Equal(200 / 255f, shown[0, 16, 16], 3);

        var rgb = GradCam.Prepare(image, spec with { Mean = [0, 0, 0], Std = [1, 1, 1] }, 3).Input;
        Assert.Equal(3, rgb.Channels);
        Assert.Throws<InceptException>(() => GradCam.Prepare(image, spec, 3));
    }

    [Fact]
    public void Jet_runs_from_dark_blue_through_green_to_dark_red()
    {
        Assert.Equal((0f, 0f, 0.5f), HeatMapOverlay.Jet(0));
        Assert.Equal((0.5f, 1f, 0.5f), HeatMapOverlay.Jet(0.5f));
        Assert.Equal((0.5f, 0f, 0f), HeatMapOverlay.Jet(1));
        Assert.Equal(HeatMapOverlay.Jet(1), HeatMapOverlay.Jet(7));
        var map = new HeatMap(1, 2, [0f, 1f]);
        var image = new FloatImage(3, 1, 2, [1, 0, 1, 0, 1, 0]);
        // Half the image (white, black) and half the colours (dark blue, dark red).
        Assert.Equal(new byte[] { 128, 128, 191, 64, 0, 0 }, HeatMapOverlay.Blend(image, map, 0.5));
    }
}
