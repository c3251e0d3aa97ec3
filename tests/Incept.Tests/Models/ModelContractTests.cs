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

        // Twice the default size: valid (unpadded) convolutions shave a few pixels per stage, which at small
        // sizes blurs the nearest power of two.
        int size = 2 * spec.InputSize;
        using (no_grad())
        using (var x = randn(1, 3, size, size))
            model.call(x);
        foreach (var remove in hooks) remove();
        int previous = 0;
        foreach (var info in model.FeatureInfo)
        {
            var shape = seen[info.Module];
            Assert.Equal(info.NumChannels, shape[1]);
            var stride = Math.Round(Math.Log2((double)size / shape[2]));
            Assert.Equal(Math.Log2(info.Reduction), stride);
            Assert.True(info.Reduction > previous, $"{name}: reductions must grow");
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
        using var optimizer = optim.SGD(model.parameters(), 0.01, momentum: 0.9);
        int size = aux ? Math.Max(model.MinAuxInputSize, 32) : spec.MinInputSize;
        using var x = randn(2, 3, size, size);
        using var y = tensor(new long[] { 1, 3 });
        model.train();
        var stats = DisposeScopeManager.Statistics;
        long Step()
        {
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                var output = model.call(x);
                var loss = nn.functional.cross_entropy(output.Logits, y);
                foreach (var aux in output.Aux) loss = loss + 0.3 * nn.functional.cross_entropy(aux.Logits, y);
                loss.backward();
                optimizer.step();
            }

            return stats.ThreadTotalLiveCount;
        }

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
}
