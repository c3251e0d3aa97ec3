using Incept.Data;
using Incept.Training;
using Incept.Weights;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

/// <summary>Tiny real-data runs: a few hundred Fashion-MNIST images, the narrowest GoogLeNet, 28 px.</summary>
public sealed class TrainerTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("incept-train-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static DataSource TinyFashionMnist(int train, int test)
    {
        bool inCi = Environment.GetEnvironmentVariable("CI") == "true";
        Skip.If(!inCi && !Directory.Exists(FashionMnist.DefaultDirectory), "Debian's dataset-fashion-mnist is not installed (bash .ci/run installs it).");
        var source = DataSources.Open(DataSources.FashionMnistName);
        return source with { Train = new Subset(source.Train, Enumerable.Range(0, train)), Test = new Subset(source.Test, Enumerable.Range(0, test)) };
    }

    private TrainOptions Options(string name, int epochs) => new()
    {
        Model = "googlenet", Width = 0.25, Epochs = epochs, BatchSize = 32, ValidationFraction = 0.1, Seed = 7, Workers = 2,
        Recipe = Recipe.Get("fast") with { WarmupEpochs = 0.5, LearningRate = 0.05 },
        OutDir = Path.Combine(dir, name),
    };

    [SkippableFact]
    public void A_tiny_run_lowers_the_loss_beats_chance_and_leaves_weights_logs_and_plots()
    {
        var data = TinyFashionMnist(600, 200);
        var result = Trainer.Run(Options("tiny", 4), data);
        Assert.Equal(4, result.Epochs);
        Assert.False(result.Incomplete);
        Assert.True(result.History[^1].TrainLoss < result.History[0].TrainLoss, $"loss {result.History[0].TrainLoss} → {result.History[^1].TrainLoss}");
        Assert.True(result.TestTop1 > 0.3, $"test top-1 {result.TestTop1} is not above chance (0.1) by a margin");
        // The logged rate is the optimizer's: the recipe's 0.05 at batch 64 is 0.025 at batch 32, then cosine decay.
        Assert.All(result.History, h => Assert.InRange(h.LearningRate, 1e-12, 0.025 + 1e-12));
        Assert.True(result.History[^1].LearningRate < result.History[0].LearningRate);
        Assert.Equal(4, File.ReadAllLines(result.Artifacts["metrics"]).Length);
        foreach (var plot in new[] { "loss_plot", "accuracy_plot", "confusion_plot" }) Assert.True(new FileInfo(result.Artifacts[plot]).Length > 1000);
        Assert.NotEmpty(Directory.GetFiles(result.Artifacts["tensorboard"], "events.out.tfevents.*", SearchOption.AllDirectories));

        using var loaded = CheckpointLoader.Load(result.Weights);
        Assert.Equal(10, loaded.Model.NumClasses);
        Assert.Equal("T-shirt/top", loaded.ClassNames![0]);
        Assert.Equal(28, loaded.Preprocess!.InputSize);
    }

    [SkippableTheory]
    [InlineData("fast", true)]
    [InlineData("fast", false)]
    [InlineData("inception_v3", true)]
    public void Resuming_from_a_mid_run_checkpoint_gives_bit_identical_parameters(string recipe, bool channelsLast)
    {
        var data = TinyFashionMnist(256, 64);
        TrainOptions Run(string name) => Options(name, 3) with
        {
            ChannelsLast = channelsLast,
            Recipe = recipe == "fast" ? Options(name, 3).Recipe : Recipe.Get(recipe) with { WarmupEpochs = 0.5, LearningRate = 0.01 },
        };

        var straight = Trainer.Run(Run("straight"), data);
        var first = Trainer.Run(Run("resumed") with { StopAfterEpochs = 1 }, data);
        Assert.True(first.Incomplete);
        Assert.Equal(1, first.Epochs);
        var resumed = Trainer.Run(Run("resumed") with { Resume = true }, data);
        Assert.Equal(3, resumed.Epochs);

        using var a = SafeTensors.Read(Path.Combine(straight.RunDir, "checkpoint", "model.safetensors"));
        using var b = SafeTensors.Read(Path.Combine(resumed.RunDir, "checkpoint", "model.safetensors"));
        Assert.Equal(a.Tensors.Keys, b.Tensors.Keys);
        foreach (var (key, t) in a.Tensors)
            Assert.True(t.eq(b.Tensors[key]).all().item<bool>(), $"{key} differs after resuming");
        Assert.Equal(straight.TestTop1, resumed.TestTop1);
    }

    [SkippableFact]
    public void Training_runs_channels_last_by_default_and_saves_ordinary_contiguous_weights()
    {
        var data = TinyFashionMnist(64, 32);
        var layouts = new List<bool>();
        long stems = Incept.Layers.TrainingConvolution.Stem.ForwardCount;
        var result = Trainer.Run(Options("layout", 1) with
        {
            OnStep = s => layouts.Add(s.Model.modules().OfType<TorchSharp.Modules.Conv2d>()
                .Where(c => c.weight!.shape[1] > 1)
                .All(c => c.weight!.stride(1) == 1)),
        }, data);
        Assert.NotEmpty(layouts);
        Assert.All(layouts, Assert.True);
        // The batches are laid out channels-last too, so the grey image stem takes its own path where that pays.
        Assert.Equal(Incept.Layers.TrainingConvolution.OwnKernelsPay, Incept.Layers.TrainingConvolution.Stem.ForwardCount > stems);

        using var saved = SafeTensors.Read(result.Weights);
        Assert.All(saved.Tensors.Values, t => Assert.True(t.is_contiguous()));
        using var loaded = CheckpointLoader.Load(result.Weights);
        Assert.All(loaded.Model.parameters(), p => Assert.True(p.is_contiguous()));
    }

    [SkippableFact]
    public void A_bfloat16_run_learns_and_saves_float32_weights()
    {
        var data = TinyFashionMnist(600, 200);
        var result = Trainer.Run(Options("bf16", 3) with { BFloat16 = true }, data);
        Assert.True(result.History[^1].TrainLoss < result.History[0].TrainLoss, $"loss {result.History[0].TrainLoss} → {result.History[^1].TrainLoss}");
        Assert.True(result.TestTop1 > 0.3, $"test top-1 {result.TestTop1} is not above chance (0.1) by a margin");
        using var saved = SafeTensors.Read(result.Weights);
        Assert.All(saved.Tensors.Where(kv => kv.Value.is_floating_point()), kv => Assert.Equal(ScalarType.Float32, kv.Value.dtype));
    }

    [SkippableFact]
    public void With_flip_tta_the_run_reports_the_flip_averaged_accuracy_of_the_weights_it_keeps()
    {
        var data = TinyFashionMnist(600, 96);
        var result = Trainer.Run(Options("tta", 4) with { TestTimeAugmentation = TestTimeAugmentation.HorizontalFlip }, data);

        using var loaded = CheckpointLoader.Load(result.Weights);
        var loader = new DataLoader(data.Test, ImagePipeline.SmallImageEvaluation(loaded.Preprocess!), new DataLoaderOptions { BatchSize = 32 });
        var (flipLoss, flip) = Trainer.Evaluate(loaded.Model, loader, 10, CPU, tta: TestTimeAugmentation.HorizontalFlip);
        var (plainLoss, _) = Trainer.Evaluate(loaded.Model, loader, 10, CPU);
        Assert.Equal(flip.Top1, result.TestTop1);
        Assert.InRange(result.History[result.BestEpoch - 1].TestLoss, flipLoss - 1e-5, flipLoss + 1e-5);
        // Without the flip the two would be the same computation (equal to float rounding); a few 1e-4 apart with it.
        Assert.True(Math.Abs(plainLoss - flipLoss) > 1e-4, $"the mirror images changed the loss too little to tell ({plainLoss} vs {flipLoss})");
    }

    [SkippableFact]
    public void With_the_test_kept_for_the_end_no_epoch_is_tested_and_the_latest_weights_are_tested_once()
    {
        var data = TinyFashionMnist(256, 64);
        var result = Trainer.Run(Options("final-test", 2) with { TestEachEpoch = false, ValidationFraction = 0 }, data);

        Assert.All(result.History, h => Assert.True(double.IsNaN(h.TestTop1) && double.IsNaN(h.TestLoss) && double.IsNaN(h.ValidationTop1)));
        Assert.Equal(2, result.BestEpoch);
        Assert.True(result.Seconds > result.History.Sum(h => h.Seconds), "the final test pass counts in the run's time");
        using var kept = SafeTensors.Read(result.Weights);
        using var last = SafeTensors.Read(Path.Combine(result.RunDir, "checkpoint", "model.safetensors"));
        foreach (var (key, t) in kept.Tensors)
            Assert.True(t.eq(last.Tensors[key]).all().item<bool>(), $"{key}: the kept weights are not the latest epoch's");

        using var loaded = CheckpointLoader.Load(result.Weights);
        var loader = new DataLoader(data.Test, ImagePipeline.SmallImageEvaluation(loaded.Preprocess!), new DataLoaderOptions { BatchSize = 32 });
        Assert.Equal(Trainer.Evaluate(loaded.Model, loader, 10, CPU).Metrics.Top1, result.TestTop1);
        Assert.Equal(2, File.ReadAllLines(result.Artifacts["metrics"]).Length);
        Assert.True(new FileInfo(result.Artifacts["accuracy_plot"]).Length > 1000);
    }

    [SkippableFact]
    public void Starting_over_an_existing_run_or_resuming_with_other_settings_is_refused()
    {
        var data = TinyFashionMnist(64, 32);
        Trainer.Run(Options("once", 2) with { StopAfterEpochs = 1 }, data);
        var again = Assert.Throws<InceptException>(() => Trainer.Run(Options("once", 2), data));
        Assert.Contains("--resume", again.Message, StringComparison.Ordinal);
        var other = Assert.Throws<InceptException>(() => Trainer.Run(Options("once", 2) with { Resume = true, Seed = 8 }, data));
        Assert.Contains("other settings", other.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_or_unrecognised_data_is_one_clear_sentence()
    {
        var missing = Assert.Throws<DatasetNotFoundException>(() => DataSources.Open(Path.Combine(dir, "nope")));
        Assert.Contains("fashion-mnist", missing.Message, StringComparison.Ordinal);
        var empty = Directory.CreateDirectory(Path.Combine(dir, "empty")).FullName;
        var unknown = Assert.Throws<DatasetNotFoundException>(() => DataSources.Open(empty));
        Assert.Contains("holds no data Incept recognises", unknown.Message, StringComparison.Ordinal);
    }
}
