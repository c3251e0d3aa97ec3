using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Incept.Weights;

namespace Incept.Reproduce;

/// <summary>
/// Runs a claim's experiment and writes its report: <c>report.md</c>, <c>result.json</c> and PNG plots in the
/// output folder, each written through a temporary file so that none is ever half written.
/// </summary>
public static class Reproduction
{
    /// <summary>The JSON form of <c>result.json</c> (snake_case names, NaN written as a string).</summary>
    public static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Runs the claim called <paramref name="claimName"/> (see <see cref="ClaimRegistry.Get"/>).</summary>
    public static ClaimResult Run(string claimName, ReproduceOptions options, IProgress<ReproduceProgress>? progress = null, CancellationToken cancellation = default)
        => Run(ClaimRegistry.Get(claimName), options, progress, cancellation);

    /// <summary>
    /// Runs <paramref name="claim"/>'s experiment with the budget <paramref name="options"/> select, seeded with
    /// <see cref="ReproduceOptions.Seed"/>, and writes the report into <see cref="ReproduceOptions.OutDir"/>.
    /// Training runs work in a scratch folder inside it that is removed afterwards.
    /// </summary>
    public static ClaimResult Run(Claim claim, ReproduceOptions options, IProgress<ReproduceProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(claim);
        ArgumentNullException.ThrowIfNull(options);
        var budget = options.BudgetFor(claim);
        budget.Validate();
        var started = DateTimeOffset.Now;
        var clock = Stopwatch.StartNew();
        var outDir = Path.GetFullPath(options.OutDir);
        Directory.CreateDirectory(outDir);
        var scratch = Path.Combine(outDir, $".work-{Environment.ProcessId}");
        ClaimOutcome outcome;
        ClaimResult result;
        try
        {
            using var context = new ExperimentContext(claim, budget, options, outDir, scratch, progress, cancellation);
            outcome = claim.Experiment(context);
            result = new ClaimResult
            {
                Claim = claim.Name, Paper = claim.Paper, Source = claim.Source, Statement = claim.Statement, PaperFigure = claim.PaperFigure,
                MeasuredFigure = outcome.MeasuredFigure, Verdict = outcome.Verdict, Reason = outcome.Reason, Measurements = outcome.Measurements,
                Setup = outcome.Setup, Notes = outcome.Notes, Runs = context.Runs, Plots = context.Plots, Quick = options.Quick && options.Budget is null,
                Budget = budget, Seed = options.Seed, Started = started, Seconds = Math.Round(clock.Elapsed.TotalSeconds, 1), Machine = Machine(),
                OutDir = outDir,
            };
        }
        finally
        {
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }

        var json = JsonSerializer.SerializeToUtf8Bytes(result, Json);
        AtomicFile.Write(Path.Combine(outDir, "result.json"), s => s.Write(json));
        var report = Encoding.UTF8.GetBytes(Report(result, claim));
        AtomicFile.Write(Path.Combine(outDir, "report.md"), s => s.Write(report));
        return result;
    }

    /// <summary>The machine, as a report records it: processor, cores, operating system, runtime and torch threads.</summary>
    public static string Machine()
    {
        string cpu = "";
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "";
        }
        catch (IOException)
        {
        }

        var threads = TorchSharp.torch.get_num_threads();
        return string.Create(CultureInfo.InvariantCulture,
            $"{(cpu.Length > 0 ? cpu + ", " : "")}{Environment.ProcessorCount} cores ({threads} torch threads), {RuntimeInformation.OSDescription}, .NET {Environment.Version}");
    }

    /// <summary>The markdown report of <paramref name="result"/>.</summary>
    internal static string Report(ClaimResult result, Claim claim)
    {
        var b = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        b.AppendLine(inv, $"# `{result.Claim}`: {claim.Statement}");
        b.AppendLine();
        b.AppendLine(inv, $"**Paper:** {result.Paper}, {result.Source}.");
        b.AppendLine();
        b.AppendLine(inv, $"**Verdict: {VerdictText(result.Verdict)}.** {result.Reason}");
        b.AppendLine();
        b.AppendLine("| claim | paper's figure | measured figure | verdict |");
        b.AppendLine("|---|---|---|---|");
        b.AppendLine(inv, $"| {Cell(result.Claim)} | {Cell(result.PaperFigure)} | {Cell(result.MeasuredFigure)} | {VerdictText(result.Verdict)} |");
        b.AppendLine();
        b.AppendLine("## Measurements");
        b.AppendLine();
        b.AppendLine("| quantity | paper | measured |");
        b.AppendLine("|---|---|---|");
        foreach (var m in result.Measurements) b.AppendLine(inv, $"| {Cell(m.Quantity)} | {Cell(m.Paper)} | {Cell(m.Measured)} |");
        b.AppendLine();
        if (result.Runs.Count > 0)
        {
            b.AppendLine("## Training runs");
            b.AppendLine();
            b.AppendLine("| run | model | seed | lr | params | MACs/image | steps | final top-1 | best top-1 | final ECE | diverged | seconds |");
            b.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
            foreach (var r in result.Runs)
            {
                b.AppendLine(inv, $"| {Cell(r.Label)} | {r.Model} | {r.Seed} | {r.LearningRate:G4} | {r.Params:N0} | {r.Macs / 1e6:0.0} M | {r.Steps}/{r.PlannedSteps} | {r.FinalTop1:0.0000} | {r.BestTop1:0.0000} | {r.FinalEce:0.0000} | {(r.Diverged ? $"at step {r.DivergedAtStep}" : "no")} | {r.Seconds:0} |");
            }

            b.AppendLine();
        }

        if (result.Plots.Count > 0)
        {
            b.AppendLine("## Plots");
            b.AppendLine();
            foreach (var p in result.Plots) b.AppendLine(inv, $"![{Path.GetFileNameWithoutExtension(p)}]({p})");
            b.AppendLine();
        }

        b.AppendLine("## Setup");
        b.AppendLine();
        b.AppendLine(inv, $"- Experiment: {claim.Measures}");
        foreach (var s in result.Setup) b.AppendLine(inv, $"- {s}");
        var budget = result.Budget;
        if (claim.Trains)
        {
            b.AppendLine(inv, $"- Budget ({(result.Quick ? "quick" : "full")}): {budget.TrainImages:N0} training images, {budget.Epochs} epochs of batch {budget.BatchSize} ({budget.Steps:N0} steps), evaluation on {budget.EvalImages:N0} test images every {budget.EvalEvery} steps, width {budget.Width.ToString(inv)}, {budget.InputSize} px, small-input stem, {budget.Seeds} seed(s).");
        }

        b.AppendLine(inv, $"- Seed {result.Seed}; started {result.Started:yyyy-MM-dd HH:mm zzz}; {result.Seconds:0} s on {result.Machine}.");
        b.AppendLine(inv, $"- Command: `incept reproduce {result.Claim}{(result.Quick ? " --quick" : "")} --seed {result.Seed}`");
        b.AppendLine();
        if (result.Notes.Count > 0)
        {
            b.AppendLine("## Differences from the paper");
            b.AppendLine();
            foreach (var n in result.Notes) b.AppendLine(inv, $"- {n}");
            b.AppendLine();
        }

        return b.ToString();
    }

    /// <summary>The verdict as words.</summary>
    public static string VerdictText(Verdict verdict) => verdict switch
    {
        Verdict.Supported => "supported",
        Verdict.NotSupported => "not supported",
        _ => "inconclusive",
    };

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
}
