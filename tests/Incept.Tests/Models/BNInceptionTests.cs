using Incept.Models;
using Incept.Models.BNInception;
using Incept.Registry;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

/// <summary>Cadene's BN-Inception: flat module names, stages, the sizes the network takes, training.</summary>
public class BNInceptionTests
{
    private const string Name = "bn_inception";

    [Fact]
    public void Stages_are_the_reference_stages_and_compose_to_the_forward_pass()
    {
        using var model = ModelFactory.Create(Name);
        model.eval();
        using var _ = no_grad();
        string[] expected =
        [
            "conv1_7x7_s2", "pool1_3x3_s2", "conv2_3x3_reduce", "conv2_3x3", "pool2_3x3_s2",
            "inception_3a", "inception_3b", "inception_3c", "inception_4a", "inception_4b", "inception_4c",
            "inception_4d", "inception_4e", "inception_5a", "inception_5b", "global_pool", "last_linear",
        ];
        Assert.Equal(expected, model.Stages().Select(s => s.Name));

        using var input = randn(2, 3, 224, 224);
        var x = input;
        var shapes = new Dictionary<string, long[]>();
        foreach (var (name, module) in model.Stages())
        {
            if (name == "last_linear") x = flatten(x, 1);
            x = ((nn.Module<Tensor, Tensor>)module).call(x);
            shapes[name] = x.shape;
        }

        Assert.Equal(0, (model.call(input).Logits - x).abs().max().item<float>());
        foreach (var f in model.FeatureInfo)
            Assert.Equal([2L, f.NumChannels, 224 / f.Reduction, 224 / f.Reduction], shapes[f.Module]);
    }

    [Fact]
    public void Modules_stay_flat_when_the_model_is_registered_in_another_module()
    {
        using var model = ModelFactory.Create(Name);
        var keys = model.state_dict().Keys.ToList();
        var children = model.named_children().Select(c => c.name).ToList();
        Assert.Contains("inception_3a_double_3x3_1_bn.running_var", keys);
        Assert.DoesNotContain("inception_3a", children);
        using var parent = new Wrapper(model);
        Assert.Equal(keys.Select(k => "net." + k), parent.state_dict().Keys);
        Assert.Equal(children, model.named_children().Select(c => c.name));
    }

    /// <summary>Registers a model as a field, which makes TorchSharp call the model's RegisterComponents.</summary>
    private sealed class Wrapper : nn.Module
    {
        private readonly InceptionModel net;

        public Wrapper(InceptionModel net) : base(nameof(Wrapper))
        {
            this.net = net;
            RegisterComponents();
        }
    }

    [Fact]
    public void The_minimum_input_size_works_and_one_pixel_less_is_rejected()
    {
        using var model = ModelFactory.Create(Name);
        Assert.Equal(ModelRegistry.Get(Name).MinInputSize, model.MinInputSize);
        model.eval();
        using var _ = no_grad();
        int min = model.MinInputSize;
        Assert.Equal([1L, 1024, 1, 1], model.ForwardFeatures(randn(1, 3, min, min)).shape);
        Assert.Throws<InputShapeException>(() => model.call(randn(1, 3, min - 1, min - 1)));
    }

    [Theory]
    [InlineData(299, true)]
    [InlineData(39, true)]
    [InlineData(222, true)]
    [InlineData(231, true)]
    [InlineData(223, false)]
    [InlineData(230, false)]
    [InlineData(256, false)]
    public void Sizes_whose_stride_2_modules_do_not_line_up_are_rejected_with_a_hint(int size, bool rejected)
    {
        using var model = ModelFactory.Create(Name);
        model.eval();
        using var _ = no_grad();
        Assert.Equal(!rejected, BNInception.AcceptsSize(size));
        using var x = randn(1, 3, size, size);
        if (!rejected)
        {
            Assert.Equal([1L, 1000], model.call(x).Logits.shape);
            return;
        }

        var e = Assert.Throws<InputShapeException>(() => model.call(x));
        Assert.Contains("inception_3c", e.Message, StringComparison.Ordinal);
        Assert.Contains("224", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Training_at_the_minimum_size_runs_forward_and_backward()
    {
        using var model = ModelFactory.Create(Name, new ModelConfig { DropRate = 0.2 });
        model.train();
        int min = model.MinInputSize;
        using var x = randn(2, 3, min, min);
        var output = model.call(x);
        Assert.Equal([2L, 1000], output.Logits.shape);
        var loss = nn.functional.cross_entropy(output.Logits, tensor(new long[] { 3, 999 }));
        loss.backward();
        var grad = model.get_parameter("conv1_7x7_s2.weight")!.grad;
        Assert.NotNull(grad);
        Assert.True(grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Reset_classifier_gives_the_new_number_of_outputs()
    {
        using var model = ModelFactory.Create(Name);
        model.eval();
        using var _ = no_grad();
        using var x = randn(1, 3, 224, 224);
        model.ResetClassifier(10);
        Assert.Equal([1L, 10], model.call(x).Logits.shape);
        Assert.Equal([10L, 1024], model.state_dict()["last_linear.weight"].shape);
        model.ResetClassifier(0);
        Assert.Equal([1L, 1024], model.call(x).Logits.shape);
        Assert.DoesNotContain(model.state_dict().Keys, k => k.StartsWith("last_linear", StringComparison.Ordinal));
    }

    [Fact]
    public void BatchNorm_keeps_the_reference_momentum_of_0_9()
    {
        // PyTorch convention: running = (1 − m) × running + m × batch, so one step from zero gives 0.9 × the batch mean.
        using var model = ModelFactory.Create(Name);
        model.train();
        using var x = randn(2, 3, 64, 64);
        var bn = (TorchSharp.Modules.BatchNorm2d)model.named_children().Single(c => c.name == "conv1_7x7_s2_bn").module;
        var conv = (TorchSharp.Modules.Conv2d)model.named_children().Single(c => c.name == "conv1_7x7_s2").module;
        using var _ = no_grad();
        var mean = conv.call(x).mean([0, 2, 3]);
        model.call(x);
        Assert.True((bn.running_mean! - mean.Times(0.9)).abs().max().item<float>() < 1e-5);
    }

    [Theory]
    [InlineData(28)]
    [InlineData(29)]
    [InlineData(30)]
    [InlineData(32)]
    public void With_the_small_stem_every_size_works_because_the_stride_2_pools_are_padded(int size)
    {
        Assert.True(BNInception.AcceptsSize(size, smallInput: true));
        using var model = ModelFactory.Create(Name, new ModelConfig { SmallInput = true, Width = 0.25, NumClasses = 10 });
        model.eval();
        using var _ = no_grad();
        using var x = randn(1, 3, size, size);
        Assert.Equal([1L, 10], model.call(x).Logits.shape);
        int side = size / 2;       // pool2_3x3_s2: 3×3/2, ceil mode
        side = (side + 1) / 2;     // inception_3c
        side = (side + 1) / 2;     // inception_4e
        Assert.Equal([1L, 256, side, side], model.ForwardFeatures(x).shape);
    }
}
