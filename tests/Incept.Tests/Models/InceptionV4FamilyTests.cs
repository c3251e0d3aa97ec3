using Incept.Models;
using Incept.Registry;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

/// <summary>Behaviour of timm's Inception-v4 and Inception-ResNet-v2 beyond reference parity.</summary>
public class InceptionV4FamilyTests
{
    private static readonly string[] Head = ["global_pool", "head_drop", "last_linear", "classif"];

    public static TheoryData<string> Names() => new() { "inception_v4", "inception_resnet_v2" };

    /// <summary>Runs the stages one by one, as the forward pass does but without the input-size check.</summary>
    private static Tensor RunUnchecked(InceptionModel model, Tensor x)
    {
        foreach (var (name, stage) in model.Stages())
        {
            if (Head.Contains(name)) continue;
            x = ((nn.Module<Tensor, Tensor>)stage).call(x);
        }

        return model.ForwardHead(x);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void The_minimum_input_size_is_the_smallest_the_layers_accept(string name)
    {
        using var model = ModelFactory.Create(name);
        model.eval();
        using var _ = no_grad();
        int min = model.MinInputSize;
        Assert.Equal(ModelRegistry.Get(name).MinInputSize, min);

        using var atMin = randn(1, 3, min, min);
        Assert.Equal([1, 1000], model.call(atMin).Logits.shape);

        using var below = randn(1, 3, min - 1, min - 1);
        var e = Assert.Throws<InputShapeException>(() => model.call(below));
        Assert.Contains(min.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message, StringComparison.Ordinal);
        // The check is not arbitrary: the layers themselves reject the smaller input.
        Assert.ThrowsAny<Exception>(() => RunUnchecked(model, below));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void A_training_step_at_the_minimum_size_gives_gradients_and_a_reset_head_has_ten_outputs(string name)
    {
        using var model = ModelFactory.Create(name);
        int min = model.MinInputSize;
        model.train();
        using var x = randn(2, 3, min, min);
        var output = model.call(x);
        Assert.Equal([2, 1000], output.Logits.shape);
        Assert.Empty(output.Aux);
        using var loss = nn.functional.cross_entropy(output.Logits, tensor(new long[] { 3, 7 }));
        loss.backward();
        var grads = model.parameters().Select(p => p.grad).ToList();
        Assert.All(grads, g => Assert.NotNull(g));
        Assert.True(grads.All(g => g!.isfinite().all().item<bool>()), "non-finite gradient");
        Assert.True(grads[0]!.abs().sum().item<float>() > 0, "the first convolution got no gradient");

        model.ResetClassifier(10);
        Assert.Equal(10, model.NumClasses);
        model.eval();
        using (no_grad())
        {
            Assert.Equal([2, 10], model.call(x).Logits.shape);
        }

        var classifier = ModelRegistry.Get(name).Classifier;
        Assert.Equal([10, model.NumFeatures], model.state_dict()[classifier + ".weight"].shape);

        model.ResetClassifier(0);
        using (no_grad())
        {
            Assert.Equal([2, model.NumFeatures], model.call(x).Logits.shape);
        }

        Assert.DoesNotContain(model.state_dict().Keys, k => k.StartsWith(classifier + ".", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Without_classes_the_model_returns_pooled_features(string name)
    {
        using var model = ModelFactory.Create(name, new ModelConfig { NumClasses = 0 });
        model.eval();
        using var _ = no_grad();
        using var x = randn(2, 3, model.MinInputSize, model.MinInputSize);
        Assert.Equal([2, 1536], model.call(x).Logits.shape);
        Assert.Equal(1536, model.NumFeatures);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Feature_info_names_modules_with_those_channels_and_strides(string name)
    {
        const int size = 299;
        using var model = ModelFactory.Create(name);
        model.eval();
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        var seen = new Dictionary<string, long[]>();
        foreach (var info in model.FeatureInfo)
        {
            Assert.True(modules.ContainsKey(info.Module), $"{name}: no module {info.Module}");
            var module = (nn.Module<Tensor, Tensor>)modules[info.Module];
            module.register_forward_hook((_, _, y) =>
            {
                seen[info.Module] = y.shape;
                return y;
            });
        }

        using (no_grad())
        using (var x = randn(1, 3, size, size))
        {
            model.call(x);
        }

        Assert.Equal(5, model.FeatureInfo.Count);
        foreach (var info in model.FeatureInfo)
        {
            var shape = seen[info.Module];
            Assert.Equal(info.NumChannels, shape[1]);
            Assert.Equal(Math.Log2(info.Reduction), Math.Round(Math.Log2((double)size / shape[2])));
        }
    }

    [Fact]
    public void Inception_ResNet_v2_residual_scales_are_constructor_arguments()
    {
        using var net = new Incept.Models.InceptionResNetV2.InceptionResNetV2(new ModelConfig(), 1.0, 1.0, 1.0);
        var blocks = net.modules().ToList();
        Assert.All(blocks.OfType<Incept.Models.InceptionResNetV2.Block35>(), b => Assert.Equal(1.0, b.Scale));
        Assert.All(blocks.OfType<Incept.Models.InceptionResNetV2.Block17>(), b => Assert.Equal(1.0, b.Scale));

        using var reference = ModelFactory.Create("inception_resnet_v2");
        var scales = reference.modules().Select(m => m switch
        {
            Incept.Models.InceptionResNetV2.Block35 b => (Kind: "35", b.Scale, Relu: true),
            Incept.Models.InceptionResNetV2.Block17 b => (Kind: "17", b.Scale, Relu: true),
            Incept.Models.InceptionResNetV2.Block8 b => (Kind: "8", b.Scale, b.Relu),
            _ => (Kind: "", Scale: 0.0, Relu: false),
        }).Where(s => s.Kind.Length > 0).ToList();
        Assert.Equal(10, scales.Count(s => s == ("35", 0.17, true)));
        Assert.Equal(20, scales.Count(s => s == ("17", 0.10, true)));
        Assert.Equal(9, scales.Count(s => s == ("8", 0.20, true)));
        Assert.Equal(("8", 1.0, false), scales.Single(s => !s.Relu));
        Assert.Equal(40, scales.Count);
    }
}
