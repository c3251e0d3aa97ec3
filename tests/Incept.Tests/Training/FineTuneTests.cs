using Incept.Data;
using Incept.Models;
using Incept.Registry;
using Incept.Tests.Data;
using Incept.Training;
using Incept.Weights;
using Incept.Weights.KeyMaps;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

/// <summary>Fine-tuning: a frozen backbone stays bit for bit as loaded, BatchNorm statistics included; the new head learns.</summary>
public sealed class FineTuneTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("incept-finetune-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static Dictionary<string, Tensor> Snapshot(nn.Module model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static List<BatchNorm> BatchNorms(nn.Module model) => [.. model.modules().OfType<BatchNorm>()];

    /// <summary>A GoogLeNet for 28 px RGB inputs with 4 classes, aux heads and BatchNorm statistics unlike a fresh model's, saved as Incept does.</summary>
    internal static string SavePretrained(string path, int inChannels = 3)
    {
        manual_seed(11);
        var spec = ModelRegistry.Get("googlenet");
        using var model = ModelFactory.Create(spec, new ModelConfig { NumClasses = 4, InChannels = inChannels, Width = 0.25, SmallInput = true, AuxLogits = true });
        using (no_grad())
        {
            foreach (var bn in BatchNorms(model))
            {
                bn.running_mean!.copy_(randn_like(bn.running_mean).Times(0.1));
                bn.running_var!.copy_(rand_like(bn.running_var).Plus(0.5));
                bn.num_batches_tracked!.Fill(1234);
            }
        }

        float[] Values(float v) => [.. Enumerable.Repeat(v, inChannels)];
        CheckpointLoader.Save(path, model, spec, new PreprocessSpec(28, 1.0, "bilinear", Values(0.3f), Values(0.35f), false, 1.0), ["a", "b", "c", "d"]);
        return path;
    }

    [Fact]
    public void A_frozen_backbone_keeps_its_weights_and_BatchNorm_statistics_bit_identical_while_the_head_learns()
    {
        manual_seed(3);
        var spec = ModelRegistry.Get("googlenet");
        using var model = ModelFactory.Create(spec, new ModelConfig { NumClasses = 5, Width = 0.25, SmallInput = true });
        int frozen = Freezing.FreezeBackbone(model, spec);
        Assert.Equal(model.parameters().Count() - 2, frozen);
        var before = Snapshot(model);
        using var optimizer = (Recipe.Get("fast") with { WeightDecay = 1e-2 }).CreateOptimizer(model, 0.1);
        Assert.Equal(2, Assert.IsType<Sgd>(optimizer).ParamGroups.Cast<SgdParamGroup>().Sum(g => g.Parameters.Count()));

        for (int step = 0; step < 3; step++)
        {
            model.train();
            Assert.True(model.training);
            Assert.All(BatchNorms(model), bn => Assert.False(bn.training));
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(randn(4, 3, 16, 16)).Logits, randint(0, 5, [4]));
            loss.backward();
            optimizer.step();
        }

        var after = model.state_dict();
        foreach (var (key, value) in before.Where(kv => !kv.Key.StartsWith("fc.", StringComparison.Ordinal)))
            Assert.True(Same(value, after[key]), $"{key} changed although it is frozen");
        Assert.Contains(before.Keys, k => k.EndsWith(".running_mean", StringComparison.Ordinal));
        Assert.False(Same(before["fc.weight"], after["fc.weight"]), "the head did not learn");
        Assert.All(model.named_parameters().Where(p => !p.name.StartsWith("fc.", StringComparison.Ordinal)), p => Assert.Null(p.parameter.grad));

        // Unfrozen, the whole network trains and the BatchNorm layers follow the model's mode again.
        Freezing.Unfreeze(model);
        model.train();
        Assert.All(BatchNorms(model), bn => Assert.True(bn.training));
        var frozenState = Snapshot(model);
        using var all = Recipe.Get("fast").CreateOptimizer(model, 0.1);
        using (NewDisposeScope())
        {
            all.zero_grad();
            nn.functional.cross_entropy(model.call(randn(4, 3, 16, 16)).Logits, randint(0, 5, [4])).backward();
            all.step();
        }

        after = model.state_dict();
        Assert.False(Same(frozenState["conv1.conv.weight"], after["conv1.conv.weight"]));
        Assert.False(Same(frozenState["conv1.bn.running_mean"], after["conv1.bn.running_mean"]));
        Assert.False(Same(frozenState["conv1.bn.num_batches_tracked"], after["conv1.bn.num_batches_tracked"]));
        model.eval();
        Assert.All(BatchNorms(model), bn => Assert.False(bn.training));
    }

    [Fact]
    public void Freezing_nothing_trainable_is_refused()
    {
        using var model = ModelFactory.Create("googlenet", new ModelConfig { NumClasses = 5, Width = 0.25, SmallInput = true });
        var e = Assert.Throws<TrainingSettingException>(() => Freezing.FreezeAllBut(model, ["no_such_module"]));
        Assert.Contains("nothing would train", e.Message, StringComparison.Ordinal);
    }

    private static DataSource TinyFashionMnist(int train, int test)
    {
        bool inCi = Environment.GetEnvironmentVariable("CI") == "true";
        Skip.If(!inCi && !Directory.Exists(FashionMnist.DefaultDirectory), "Debian's dataset-fashion-mnist is not installed (bash .ci/run installs it).");
        var source = DataSources.Open(DataSources.FashionMnistName);
        return source with { Train = new Subset(source.Train, Enumerable.Range(0, train)), Test = new Subset(source.Test, Enumerable.Range(0, test)) };
    }

    private TrainOptions Options(string name, string pretrained, int epochs, int? unfreezeAfter) => new()
    {
        Epochs = epochs, BatchSize = 32, ValidationFraction = 0.1, Seed = 5, Workers = 2,
        Recipe = Recipe.Get("fast") with { WarmupEpochs = 0.5, LearningRate = 0.05 },
        OutDir = Path.Combine(dir, name),
        FineTune = new FineTuneOptions { Weights = pretrained, FreezeBackbone = true, UnfreezeAfter = unfreezeAfter },
    };

    private static void AssertBackbone(string pretrained, string checkpoint, bool same)
    {
        using var a = SafeTensors.Read(pretrained);
        using var b = SafeTensors.Read(checkpoint);
        var backbone = b.Tensors.Keys.Where(k => !k.StartsWith("fc.", StringComparison.Ordinal)).ToList();
        Assert.Equal(a.Tensors.Keys.Where(k => !k.StartsWith("fc.", StringComparison.Ordinal) && !k.StartsWith("aux", StringComparison.Ordinal)).Order(), backbone.Order());
        var changed = backbone.Where(k => !Same(a.Tensors[k], b.Tensors[k])).ToList();
        if (same) Assert.Empty(changed);
        else
        {
            Assert.Contains("conv1.conv.weight", changed);
            Assert.Contains("inception5b.branch1.bn.running_var", changed);
            Assert.Contains("conv1.bn.num_batches_tracked", changed);
        }
    }

    [SkippableFact]
    public void Fine_tuning_an_RGB_model_on_grayscale_data_trains_a_new_head_and_records_the_new_classes()
    {
        var data = TinyFashionMnist(160, 32);
        var pretrained = SavePretrained(Path.Combine(dir, "pretrained.safetensors"));
        var result = Trainer.Run(Options("frozen", pretrained, 1, null), data);
        Assert.False(result.Incomplete);
        Assert.Equal("googlenet", result.Model);
        AssertBackbone(pretrained, Path.Combine(result.RunDir, "checkpoint", "model.safetensors"), same: true);
        AssertBackbone(pretrained, result.Weights, same: true);

        using var loaded = CheckpointLoader.Load(result.Weights);
        Assert.Equal(10, loaded.Model.NumClasses);
        Assert.False(loaded.Model.HasAux);
        Assert.Equal(FashionMnist.Classes, loaded.ClassNames);
        Assert.Equal(3, loaded.Model.Config.InChannels);
        Assert.Equal([0.3f, 0.3f, 0.3f], loaded.Preprocess!.Mean);
        Assert.Equal(28, loaded.Preprocess.InputSize);
        Assert.Equal([10, loaded.Model.NumFeatures], loaded.Model.state_dict()["fc.weight"].shape);
    }

    [SkippableFact]
    public void Unfreezing_after_one_epoch_trains_the_backbone_in_the_second_and_resumes_bit_identically()
    {
        var data = TinyFashionMnist(160, 32);
        var pretrained = SavePretrained(Path.Combine(dir, "pretrained.safetensors"));
        var straight = Trainer.Run(Options("straight", pretrained, 2, 1), data);
        AssertBackbone(pretrained, Path.Combine(straight.RunDir, "checkpoint", "model.safetensors"), same: false);

        var first = Trainer.Run(Options("resumed", pretrained, 2, 1) with { StopAfterEpochs = 1 }, data);
        Assert.True(first.Incomplete);
        AssertBackbone(pretrained, Path.Combine(first.RunDir, "checkpoint", "model.safetensors"), same: true);
        var resumed = Trainer.Run(Options("resumed", pretrained, 2, 1) with { Resume = true }, data);
        Assert.Equal(2, resumed.Epochs);

        using var a = SafeTensors.Read(Path.Combine(straight.RunDir, "checkpoint", "model.safetensors"));
        using var b = SafeTensors.Read(Path.Combine(resumed.RunDir, "checkpoint", "model.safetensors"));
        Assert.Equal(a.Tensors.Keys, b.Tensors.Keys);
        foreach (var (key, t) in a.Tensors) Assert.True(Same(t, b.Tensors[key]), $"{key} differs after resuming");
        Assert.Equal(straight.TestTop1, resumed.TestTop1);
    }

    [SkippableFact]
    public void Unfreezing_without_freezing_or_too_late_is_refused()
    {
        var data = TinyFashionMnist(64, 32);
        var pretrained = SavePretrained(Path.Combine(dir, "pretrained.safetensors"));
        var noFreeze = Options("a", pretrained, 2, 1) with { FineTune = new FineTuneOptions { Weights = pretrained, UnfreezeAfter = 1 } };
        Assert.Contains("--freeze-backbone", Assert.Throws<InceptException>(() => Trainer.Run(noFreeze, data)).Message, StringComparison.Ordinal);
        var late = Assert.Throws<InceptException>(() => Trainer.Run(Options("b", pretrained, 2, 2), data));
        Assert.Contains("unfreeze earlier or train longer", late.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Weights_in_a_published_key_scheme_fine_tune_from_the_converted_keys()
    {
        // A full-width BN-Inception saved with Cadene's flat keys and no metadata, as pretrainedmodels publishes it.
        manual_seed(8);
        var spec = ModelRegistry.Get("bn_inception");
        var path = Path.Combine(dir, "bninception-cadene.safetensors");
        Dictionary<string, Tensor> original;
        using (var model = ModelFactory.Create(spec))
        {
            original = Snapshot(model);
            SafeTensors.Write(path, KeyMap.FromIncept(spec.Name, original, KeyFormat.Cadene));
        }

        var images = new SyntheticDataset(8, 40, 40, i => i % 3, 3);
        var data = new DataSource("synthetic", images, new SyntheticDataset(4, 40, 40, i => i % 3, 3), [0.5f, 0.5f, 0.5f], [0.25f, 0.25f, 0.25f], null);
        var result = Trainer.Run(new TrainOptions
        {
            Epochs = 1, BatchSize = 4, ValidationFraction = 0, InputSize = 64, Workers = 1, OutDir = Path.Combine(dir, "cadene"),
            FineTune = new FineTuneOptions { Weights = path, Load = new CheckpointOptions { Model = "bn_inception" }, FreezeBackbone = true },
        }, data);

        Assert.Equal("bn_inception", result.Model);
        using var trained = SafeTensors.Read(result.Weights);
        Assert.Equal("3", trained.Metadata[CheckpointLoader.MetadataKeys.NumClasses]);
        Assert.Equal([3L, 1024], trained.Tensors["last_linear.weight"].shape);
        foreach (var (key, t) in original.Where(kv => !kv.Key.StartsWith("last_linear.", StringComparison.Ordinal)))
            Assert.True(Same(t, trained.Tensors[key]), $"{key} differs from the Cadene file's");
    }
}
