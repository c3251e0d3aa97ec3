using Incept.Models;
using Incept.Registry;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

/// <summary>The same contract, checked for every registered model.</summary>
public class ModelContractTests
{
    public static TheoryData<string> All() => RegistryModels.All();

    public static TheoryData<string> WithAux() => RegistryModels.WithAux();

    [Theory]
    [MemberData(nameof(All))]
    public void Parameter_count_equals_the_registry(string name)
    {
        var spec = ModelRegistry.Get(name);
        using var model = ModelFactory.Create(spec);
        Assert.Equal(spec.Params, model.parameters().Sum(p => p.numel()));
        if (spec.ParamsWithAux is { } withAux)
        {
            using var auxModel = ModelFactory.Create(spec, new ModelConfig { AuxLogits = true });
            Assert.Equal(withAux, auxModel.parameters().Sum(p => p.numel()));
        }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Runs_at_its_minimum_input_size_and_rejects_a_smaller_one(string name)
    {
        var spec = ModelRegistry.Get(name);
        using var model = ModelFactory.Create(spec, new ModelConfig { NumClasses = 7 });
        Assert.Equal(spec.MinInputSize, model.MinInputSize);
        model.eval();
        using var _ = no_grad();
        using var ok = randn(1, 3, spec.MinInputSize, spec.MinInputSize);
        Assert.Equal([1L, 7L], model.call(ok).Logits.shape);
        using var small = randn(1, 3, spec.MinInputSize - 1, spec.MinInputSize);
        var e = Assert.Throws<InputShapeException>(() => model.call(small));
        Assert.Contains($"at least {spec.MinInputSize}", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Rejects_the_wrong_number_of_channels_with_a_clear_message(string name)
    {
        var spec = ModelRegistry.Get(name);
        using var model = ModelFactory.Create(spec, new ModelConfig { NumClasses = 3, InChannels = 1 });
        model.eval();
        using var _ = no_grad();
        using var gray = randn(1, 1, spec.MinInputSize, spec.MinInputSize);
        Assert.Equal([1L, 3L], model.call(gray).Logits.shape);
        using var rgb = randn(1, 3, spec.MinInputSize, spec.MinInputSize);
        var e = Assert.Throws<InputShapeException>(() => model.call(rgb));
        Assert.Contains("1 input channels", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Reset_classifier_changes_the_class_count_and_zero_gives_pooled_features(string name)
    {
        var spec = ModelRegistry.Get(name);
        using var model = ModelFactory.Create(spec);
        model.eval();
        using var _ = no_grad();
        using var x = randn(2, 3, spec.MinInputSize, spec.MinInputSize);
        model.ResetClassifier(10);
        Assert.Equal(10, model.NumClasses);
        Assert.Equal([2L, 10L], model.call(x).Logits.shape);
        Assert.Contains(model.state_dict().Keys, k => k.StartsWith(spec.Classifier + ".", StringComparison.Ordinal));
        var head = model.state_dict().First(kv => kv.Key == spec.Classifier + ".weight").Value;
        Assert.Equal(10, head.shape[0]);

        model.ResetClassifier(0);
        var features = model.ForwardFeatures(x);
        var pooled = model.ForwardHead(features, preLogits: true);
        Assert.Equal([2L, model.NumFeatures], pooled.shape);
        Assert.DoesNotContain(model.state_dict().Keys, k => k.StartsWith(spec.Classifier + ".", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Feature_info_names_modules_with_those_channels_and_strides(string name)
    {
        var spec = ModelRegistry.Get(name);
        using var model = ModelFactory.Create(spec);
        // Twice the default size: valid (unpadded) convolutions shave a few pixels per stage, which at small
        // sizes blurs the nearest power of two.
        AssertFeatureInfo(model, name, 2 * spec.InputSize, strictlyGrowing: true);
    }

    /// <summary>
    /// Checks that each feature tap names a module whose output has the listed channels and, at
    /// <paramref name="size"/> pixels, the listed stride (to the nearest power of two).
    /// </summary>
    private static void AssertFeatureInfo(InceptionModel model, string name, int size, bool strictlyGrowing)
    {
        model.eval();
        // Feature taps name a module, or for flat layouts (BN-Inception) one of the model's stages.
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach (var (stageName, stage) in model.Stages()) modules.TryAdd(stageName, stage);
        var seen = new Dictionary<string, long[]>();
        var hooks = new List<Action>();
        foreach (var info in model.FeatureInfo)
        {
            Assert.True(modules.ContainsKey(info.Module), $"{name}: feature module '{info.Module}' does not exist");
            var m = Assert.IsAssignableFrom<nn.Module<Tensor, Tensor>>(modules[info.Module]);
            hooks.Add(m.register_forward_hook((_, _, y) => { seen[info.Module] = y.shape; return y; }).remove);
        }

        using (no_grad())
        using (var x = randn(1, model.Config.InChannels, size, size))
            model.call(x);
        foreach (var remove in hooks) remove();
        int previous = 0;
        foreach (var info in model.FeatureInfo)
        {
            var shape = seen[info.Module];
            Assert.Equal(info.NumChannels, shape[1]);
            var stride = Math.Round(Math.Log2((double)size / shape[2]));
            Assert.Equal(Math.Log2(info.Reduction), stride);
            if (strictlyGrowing) Assert.True(info.Reduction > previous, $"{name}: reductions must grow");
            else Assert.True(info.Reduction >= previous, $"{name}: reductions must not shrink");
            previous = info.Reduction;
        }
    }

    [Theory]
    [MemberData(nameof(WithAux))]
    public void Training_returns_aux_logits_and_evaluation_never_computes_them(string name)
    {
        var spec = ModelRegistry.Get(name);
        using var model = ModelFactory.Create(spec, new ModelConfig { AuxLogits = true, NumClasses = 5 });
        using var x = randn(2, 3, spec.InputSize, spec.InputSize);
        model.train();
        var output = model.call(x);
        Assert.NotEmpty(output.Aux);
        Assert.All(output.Aux, a => Assert.Equal([2L, 5L], a.Logits.shape));
        Assert.Equal([2L, 5L], output.Logits.shape);

        model.eval();
        int calls = 0;
        var auxModules = model.named_children().Where(c => output.Aux.Any(a => a.Name == c.name)).Select(c => (nn.Module<Tensor, Tensor>)c.module).ToList();
        var hooks = auxModules.Select(m => m.register_forward_hook((_, _, y) => { calls++; return y; })).ToList();
        using (no_grad())
        {
            var evalOutput = model.call(x);
            Assert.Empty(evalOutput.Aux);
        }

        hooks.ForEach(h => h.remove());
        Assert.Equal(0, calls);
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Training_steps_inside_a_dispose_scope_leave_no_tensors_behind(string name)
    {
        var spec = ModelRegistry.Get(name);
        // Aux heads take part where they run at small inputs (GoogLeNet); elsewhere the main path at its minimum size.
        using var probe = ModelFactory.Create(spec, new ModelConfig { AuxLogits = spec.HasAux });
        bool aux = spec.HasAux && probe.MinAuxInputSize <= 64;
        using var model = ModelFactory.Create(spec, new ModelConfig { NumClasses = 4, AuxLogits = aux });
        using var optimizer = new Incept.Training.Sgd(model.parameters(), 0.01, momentum: 0.9);
        int size = aux ? Math.Max(model.MinAuxInputSize, 32) : spec.MinInputSize;
        using var x = randn(2, 3, size, size);
        using var y = tensor(new long[] { 1, 3 });
        model.train();
        long Step() => LiveTensorProbe.StepAndCount(model, optimizer, x, y);

        Step(); // the optimizer allocates its momentum buffers on the first step
        long after1 = Step();
        long after3 = Step() + 0 * Step();
        Assert.Equal(after1, after3);
    }

    [Theory]
    [InlineData("googlenet_paper", 223)]
    [InlineData("inception_v3", 299)]
    public void Aux_heads_refuse_too_small_training_inputs_with_a_clear_message(string name, int minimum)
    {
        using var model = ModelFactory.Create(name, new ModelConfig { AuxLogits = true });
        Assert.Equal(minimum, model.MinAuxInputSize);
        model.train();
        using var x = randn(2, 3, minimum - 1, minimum - 1);
        var e = Assert.Throws<InputShapeException>(() => model.call(x));
        Assert.Contains($"at least {minimum}", e.Message, StringComparison.Ordinal);
    }

    /// <summary>The narrowest model with the small-input stem, as the Fashion-MNIST and CIFAR recipes build it.</summary>
    private static ModelConfig Small(int numClasses = 10, bool aux = false, int inChannels = 3)
        => new() { Width = 0.25, SmallInput = true, NumClasses = numClasses, AuxLogits = aux, InChannels = inChannels };

    [Theory]
    [MemberData(nameof(All))]
    public void At_width_a_quarter_with_the_small_stem_a_28_pixel_batch_trains_with_its_aux_heads(string name)
    {
        // The scope holds every temporary below: without it the garbage collector may finalise one (isfinite's result)
        // while libtorch still reads it, which once failed this test with "Unsupported TypeMeta".
        using var scope = NewDisposeScope();
        var spec = ModelRegistry.Get(name);
        using var model = ModelFactory.Create(spec, Small(aux: spec.HasAux, inChannels: 1));
        Assert.Equal(model.MinInputSize, model.MinAuxInputSize);
        using var x = randn(2, 1, 28, 28);
        using var y = tensor(new long[] { 3, 9 });
        model.train();
        var output = model.call(x);
        Assert.Equal([2L, 10], output.Logits.shape);
        Assert.Equal(spec.AuxModules, output.Aux.Select(a => a.Name));
        Assert.All(output.Aux, a => Assert.Equal([2L, 10], a.Logits.shape));
        var loss = nn.functional.cross_entropy(output.Logits, y);
        foreach (var a in output.Aux) loss = loss.Plus(nn.functional.cross_entropy(a.Logits, y).Times(0.3));
        loss.backward();
        var grads = model.named_parameters().Select(p => (p.name, p.parameter.grad)).ToList();
        Assert.All(grads, g => Assert.True(g.grad is not null, $"{name}: {g.name} got no gradient"));
        Assert.All(grads, g => Assert.True(g.grad!.isfinite().all().item<bool>(), $"{name}: {g.name} has a non-finite gradient"));
        Assert.True(model.get_parameter(spec.FirstConv + ".weight")!.grad!.abs().sum().item<float>() > 0, "the first convolution got no gradient");

        model.eval();
        using var _ = no_grad();
        var evaluation = model.call(x);
        Assert.Equal([2L, 10], evaluation.Logits.shape);
        Assert.Empty(evaluation.Aux);
    }

    [Theory]
    [MemberData(nameof(All))]
    public void At_width_a_quarter_with_the_small_stem_feature_info_gives_the_small_strides(string name)
    {
        using var model = ModelFactory.Create(name, Small());
        // The small stem keeps the input resolution until its last reduction, so the first two taps share stride 1.
        Assert.Equal([1, 1, 2, 4, 8], model.FeatureInfo.Select(f => f.Reduction));
        // Twice Fashion-MNIST's 28 pixels, as the default-stem check runs at twice the default size.
        AssertFeatureInfo(model, name, 2 * 28, strictlyGrowing: false);
        Assert.All(model.FeatureInfo, f => Assert.Equal(0, f.NumChannels % 8));
    }

    [Theory]
    [MemberData(nameof(All))]
    public void At_width_a_quarter_with_the_small_stem_reset_classifier_changes_the_class_count(string name)
    {
        var spec = ModelRegistry.Get(name);
        using var model = ModelFactory.Create(spec, Small());
        model.eval();
        using var _ = no_grad();
        using var x = randn(2, 3, 28, 28);
        model.ResetClassifier(4);
        Assert.Equal([2L, 4L], model.call(x).Logits.shape);
        Assert.Equal(4, model.state_dict()[spec.Classifier + ".weight"].shape[0]);
        model.ResetClassifier(0);
        Assert.Equal([2L, model.NumFeatures], model.ForwardHead(model.ForwardFeatures(x), preLogits: true).shape);
        Assert.DoesNotContain(model.state_dict().Keys, k => k.StartsWith(spec.Classifier + ".", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("googlenet", 4)]
    [InlineData("googlenet_paper", 8)]
    [InlineData("bn_inception", 3)]
    [InlineData("inception_v3", 13)]
    [InlineData("inception_v4", 13)]
    [InlineData("inception_resnet_v1", 13)]
    [InlineData("inception_resnet_v2", 13)]
    public void With_the_small_stem_the_minimum_input_size_runs_and_one_pixel_less_is_refused(string name, int minimum)
    {
        var spec = ModelRegistry.Get(name);
        using var model = ModelFactory.Create(spec, Small(aux: spec.HasAux));
        Assert.Equal(minimum, model.MinInputSize);
        Assert.Equal(minimum, model.MinAuxInputSize);
        model.train();
        using (var ok = randn(2, 3, minimum, minimum))
            Assert.Equal(spec.AuxModules.Count, model.call(ok).Aux.Count);
        model.eval();
        using var _ = no_grad();
        using (var ok = randn(1, 3, minimum, minimum))
            Assert.Equal([1L, 10L], model.call(ok).Logits.shape);
        using var small = randn(1, 3, minimum, minimum - 1);
        var e = Assert.Throws<InputShapeException>(() => model.call(small));
        Assert.Contains($"at least {minimum}", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Width_keeps_every_key_and_rounds_every_convolution_to_a_multiple_of_8(string name)
    {
        var spec = ModelRegistry.Get(name);
        using var reference = ModelFactory.Create(spec, new ModelConfig { AuxLogits = spec.HasAux });
        using var narrow = ModelFactory.Create(spec, new ModelConfig { AuxLogits = spec.HasAux, Width = 0.25 });
        var full = reference.state_dict();
        var thin = narrow.state_dict();
        Assert.Equal(full.Keys, thin.Keys);
        foreach (var (key, weight) in thin.Where(kv => kv.Value.dim() == 4))
        {
            long channels = weight.shape[0], referenceChannels = full[key].shape[0];
            Assert.True(channels % 8 == 0, $"{name}: {key} has {channels} output channels");
            Assert.InRange(channels, 8, referenceChannels);
            Assert.Equal(full[key].shape[2..], weight.shape[2..]);
        }

        Assert.Equal(3, thin[spec.FirstConv + ".weight"].shape[1]);
        long parameters = narrow.parameters().Sum(p => p.numel());
        Assert.True(parameters < spec.ParamsWithAux.GetValueOrDefault(spec.Params) / 4, $"{name}: {parameters:N0} parameters at width 0.25");
    }

    [Theory]
    [InlineData(0.2)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void A_width_outside_a_quarter_to_one_is_refused_with_a_clear_message(double width)
    {
        var e = Assert.Throws<InceptException>(() => ModelFactory.Create("googlenet", new ModelConfig { Width = width }));
        Assert.Contains("width multiplier must be between 0.25 and 1", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1.0, 1001, 1001)]
    [InlineData(1.0, 20, 20)]
    [InlineData(0.25, 48, 16)]
    [InlineData(0.25, 80, 16)]
    [InlineData(0.25, 16, 8)]
    [InlineData(0.25, 1088, 272)]
    [InlineData(0.5, 1088, 544)]
    [InlineData(0.75, 208, 160)]
    public void Scaled_widths_round_to_a_multiple_of_8_and_are_the_reference_at_width_1(double width, long channels, long expected)
        => Assert.Equal(expected, new ModelConfig { Width = width }.Scaled(channels));
}
