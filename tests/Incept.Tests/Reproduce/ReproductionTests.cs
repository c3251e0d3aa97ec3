using System.Text.Json;
using Incept.Cli;
using Incept.Tests.Cli;
using Incept.Data;
using Incept.Reproduce;
using Incept.Training;
using Incept.Weights;

namespace Incept.Tests.Reproduce;

/// <summary>Claims end to end on tiny budgets, the trainer's step hook, and the command line.</summary>
public sealed class ReproductionTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("incept-reproduce-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static void SkipWithoutFashionMnist()
    {
        bool inCi = Environment.GetEnvironmentVariable("CI") == "true";
        Skip.If(!inCi && !Directory.Exists(FashionMnist.DefaultDirectory), "Debian's dataset-fashion-mnist is not installed (bash .ci/run installs it).");
    }

    private static readonly Budget Tiny = new()
    {
        TrainImages = 64, EvalImages = 40, Epochs = 2, BatchSize = 16, EvalEvery = 3, Width = 0.25, EstimatedMinutes = 1,
    };

    private static (int Code, string Out, string Err) Cli(params string[] args) => CliRunner.Run(args);

    [SkippableFact]
    public void A_tiny_training_claim_writes_report_result_and_plots_and_repeats_its_numbers_with_the_same_seed()
    {
        SkipWithoutFashionMnist();
        var reports = new List<ReproduceProgress>();
        var first = Reproduction.Run("label-smoothing", new ReproduceOptions { Budget = Tiny, Seed = 3, OutDir = Path.Combine(dir, "a") }, new Collect(reports));
        var second = Reproduction.Run("label-smoothing", new ReproduceOptions { Budget = Tiny, Seed = 3, OutDir = Path.Combine(dir, "b") });

        Assert.Equal("label-smoothing", first.Claim);
        Assert.Equal(2, first.Runs.Count);
        foreach (var run in first.Runs)
        {
            Assert.Equal(8, run.Steps);
            Assert.Equal(8, run.TrainLoss.Count);
            Assert.Equal([3L, 6, 8], run.Evaluations.Select(e => e.Step));
            Assert.Equal(40, run.FinalCorrect.Count);
            Assert.InRange(run.FinalTop1, 0, 1);
            Assert.Equal(15, run.FinalCalibration.Count);
        }

        var outDir = first.OutDir;
        Assert.True(File.Exists(Path.Combine(outDir, "report.md")));
        Assert.Contains("label-smoothing", File.ReadAllText(Path.Combine(outDir, "report.md")), StringComparison.Ordinal);
        Assert.Equal(["accuracy.png", "loss.png", "reliability.png"], first.Plots.Order());
        foreach (var plot in first.Plots) Assert.True(new FileInfo(Path.Combine(outDir, plot)).Length > 1000, plot);
        Assert.False(Directory.EnumerateDirectories(outDir).Any(), "the scratch folder was left behind");
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp", SearchOption.AllDirectories));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")));
        var root = json.RootElement;
        Assert.Equal(Reproduction.VerdictText(first.Verdict), root.GetProperty("verdict").GetString());
        Assert.Equal(2, root.GetProperty("runs").GetArrayLength());
        Assert.Equal(8, root.GetProperty("runs")[0].GetProperty("train_loss").GetArrayLength());

        // The same seed gives the same numbers, loss for loss.
        for (int r = 0; r < 2; r++)
        {
            Assert.Equal(first.Runs[r].TrainLoss, second.Runs[r].TrainLoss);
            Assert.Equal(first.Runs[r].Evaluations.Select(e => (e.Step, e.Loss, e.Top1, e.Ece)), second.Runs[r].Evaluations.Select(e => (e.Step, e.Loss, e.Top1, e.Ece)));
            Assert.Equal(first.Runs[r].FinalCorrect, second.Runs[r].FinalCorrect);
        }

        // Progress names the evaluation its accuracy comes from: none before step 3, then the latest one.
        var firstRun = reports.Where(p => p.Run == first.Runs[0].Label).ToList();
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), firstRun.Select(p => p.Step));
        foreach (var p in firstRun)
        {
            var last = first.Runs[0].Evaluations.LastOrDefault(e => e.Step <= p.Step);
            Assert.Equal(last?.Step, p.EvaluatedAt);
            Assert.Equal(last?.Top1, p.Top1);
        }

        Assert.Equal(first.MeasuredFigure, second.MeasuredFigure);
        Assert.Equal(first.Verdict, second.Verdict);
        // The smoothed and plain runs start from the same weights and batches, so only the loss differs.
        Assert.NotEqual(first.Runs[0].TrainLoss[0].Value, first.Runs[1].TrainLoss[0].Value);
    }

    [SkippableFact]
    public void A_step_hook_that_evaluates_sees_every_step_and_leaves_the_trained_weights_unchanged()
    {
        SkipWithoutFashionMnist();
        var source = DataSources.Open(DataSources.FashionMnistName);
        var data = source with { Train = new Subset(source.Train, Enumerable.Range(0, 96)), Test = new Subset(source.Test, Enumerable.Range(0, 32)) };
        var probe = new Subset(source.Test, Enumerable.Range(100, 48));
        var preprocess = new PreprocessSpec(28, 1.0, "bilinear", source.Mean, source.Std, false, 1.0);
        var probeLoader = new DataLoader(probe, ImagePipeline.SmallImageEvaluation(preprocess), new DataLoaderOptions { BatchSize = 16 });
        TrainOptions Options(string name) => new()
        {
            Model = "googlenet", Width = 0.25, Epochs = 2, BatchSize = 16, ValidationFraction = 0, Seed = 5, Workers = 2,
            Recipe = Recipe.Get("fast"), OutDir = Path.Combine(dir, name),
        };

        var steps = new List<long>();
        var plain = Trainer.Run(Options("plain"), data);
        var hooked = Trainer.Run(Options("hooked") with
        {
            OnStep = s =>
            {
                Assert.True(s.Model.training);
                steps.Add(s.GlobalStep);
                Assert.Equal(6, s.StepsPerEpoch);
                Assert.True(double.IsFinite(s.Loss) && s.LearningRate > 0);
                Trainer.Evaluate(s.Model, probeLoader, 10, TorchSharp.torch.CPU);
            },
        }, data);

        Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), steps);
        using var a = SafeTensors.Read(Path.Combine(plain.RunDir, "checkpoint", "model.safetensors"));
        using var b = SafeTensors.Read(Path.Combine(hooked.RunDir, "checkpoint", "model.safetensors"));
        foreach (var (key, t) in a.Tensors)
            Assert.True(t.eq(b.Tensors[key]).all().item<bool>(), $"{key} differs when the hook evaluates between steps");
        Assert.Equal(plain.History.Select(h => h.TrainLoss), hooked.History.Select(h => h.TrainLoss));
    }

    [SkippableFact]
    public void The_factorization_claim_on_a_tiny_budget_counts_exactly_and_trains_both_networks()
    {
        SkipWithoutFashionMnist();
        var result = Reproduction.Run("factorization", new ReproduceOptions { Budget = Tiny with { Epochs = 1 }, OutDir = Path.Combine(dir, "f") });
        Assert.Equal(["factorised", "full n×n"], result.Runs.Select(r => r.Label));
        Assert.True(result.Runs[0].Macs < result.Runs[1].Macs);
        Assert.Contains(result.Measurements, m => m.Quantity.StartsWith("cost saving 5×5 → 3×3 + 3×3", StringComparison.Ordinal) && m.Measured.StartsWith("28.0 %", StringComparison.Ordinal));
        Assert.Contains("block_macs.png", result.Plots);
        Assert.DoesNotContain("differ from the paper's arithmetic", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Sparse_modules_runs_without_data_and_reports_the_totals()
    {
        var (code, output, _) = Cli("reproduce", "sparse-modules", "--out", Path.Combine(dir, "s"), "--format", "json");
        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        var root = json.RootElement;
        Assert.Equal("supported", root.GetProperty("verdict").GetString());
        Assert.StartsWith("1.583 G with reductions", root.GetProperty("measured_figure").GetString(), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(dir, "s", "report.md")));
        Assert.True(File.Exists(Path.Combine(dir, "s", "module_macs.png")));
    }

    [Fact]
    public void List_names_every_claim_with_its_paper_and_budgets()
    {
        var (code, output, _) = Cli("reproduce", "--list");
        Assert.Equal(0, code);
        foreach (var name in ClaimRegistry.Names) Assert.Contains(name, output, StringComparison.Ordinal);
        Assert.Contains("Going Deeper with Convolutions", output, StringComparison.Ordinal);

        var (jsonCode, json, _) = Cli("reproduce", "--list", "--format", "json");
        Assert.Equal(0, jsonCode);
        var rows = JsonDocument.Parse(json).RootElement.EnumerateArray().ToList();
        Assert.Equal(["factorization", "sparse-modules", "batchnorm", "label-smoothing", "aux-classifiers", "residual", "residual-scaling"],
            rows.Select(r => r.GetProperty("name").GetString()));
        Assert.All(rows.Where(r => r.GetProperty("trains").GetBoolean()), r => Assert.InRange(r.GetProperty("quick_minutes").GetDouble(), 1, 15));
    }

    [Fact]
    public void An_unknown_claim_is_one_line_naming_the_known_claims()
    {
        var (code, output, error) = Cli("reproduce", "dropout");
        Assert.Equal(InceptCli.Usage, code);
        Assert.Empty(output);
        Assert.StartsWith("error: Unknown claim 'dropout'. Known claims: factorization, sparse-modules, batchnorm", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
        Assert.Throws<UnknownClaimException>(() => ClaimRegistry.Get("dropout"));
        Assert.Equal("residual-scaling", ClaimRegistry.Get("Residual_Scaling").Name);

        var (missing, _, missingError) = Cli("reproduce");
        Assert.Equal(InceptCli.Usage, missing);
        Assert.Contains("--list", missingError, StringComparison.Ordinal);
    }

    private sealed class Collect(List<ReproduceProgress> into) : IProgress<ReproduceProgress>
    {
        public void Report(ReproduceProgress value) => into.Add(value);
    }
}
