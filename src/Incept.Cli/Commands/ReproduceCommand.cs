using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Incept.Data;
using Incept.Reproduce;
using Incept.Runtime;
using Spectre.Console;

namespace Incept.Cli.Commands;

/// <summary><c>incept reproduce</c>: check one of the papers' claims on Fashion-MNIST, the paper's figure beside the measured one.</summary>
internal static class ReproduceCommand
{
    public static Command Create()
    {
        var claim = new Argument<string?>("claim") { Description = "The claim to check (see --list).", Arity = ArgumentArity.ZeroOrOne };
        var list = new Option<bool>("--list") { Description = "List the claims and their budgets." };
        var quick = new Option<bool>("--quick") { Description = "Use the quick budget (about 15 minutes or less on 2 CPU cores)." };
        var outDir = new Option<string?>("--out") { Description = "Folder for report.md, result.json and the plots (default: runs/reproduce/<claim>[-quick])." };
        var seed = new Option<int>("--seed") { Description = "Seed of every random choice; the same seed gives the same numbers.", DefaultValueFactory = _ => 0 };
        var data = new Option<string>("--data") { Description = "fashion-mnist, or a folder of Fashion-MNIST IDX files.", DefaultValueFactory = _ => DataSources.FashionMnistName };
        var device = new Option<string>("--device") { Description = "cpu or cuda.", DefaultValueFactory = _ => "cpu" };
        device.AcceptOnlyFromAmong("cpu", "cuda");
        var workers = new Option<int>("--workers") { Description = "Threads preparing batches.", DefaultValueFactory = _ => 2 };
        var format = CommonOptions.Format();
        var command = new Command("reproduce", "Check a claim of the Inception papers on real data: writes report.md, result.json and PNG plots, and prints the paper's figure beside the measured one.")
        {
            claim, list, quick, outDir, seed, data, device, workers, format,
        };
        command.SetAction((parse, cancellation) =>
        {
            var output = parse.InvocationConfiguration.Output;
            bool json = parse.GetValue(format) == "json";
            if (parse.GetValue(list))
            {
                List(output, json);
                return Task.FromResult(0);
            }

            var name = parse.GetValue(claim);
            if (string.IsNullOrWhiteSpace(name))
            {
                parse.InvocationConfiguration.Error.WriteLine($"error: name a claim ({string.Join(", ", ClaimRegistry.Names)}) or use --list.");
                return Task.FromResult(InceptCli.Usage);
            }

            var chosen = ClaimRegistry.Get(name);
            WeightsOptions.ParseDevice(parse.GetValue(device)!);
            TorchRuntime.EnsureAvailable();
            bool isQuick = parse.GetValue(quick);
            var options = new ReproduceOptions
            {
                Quick = isQuick, Seed = parse.GetValue(seed), Data = parse.GetValue(data)!, Device = parse.GetValue(device)!, Workers = parse.GetValue(workers),
                OutDir = parse.GetValue(outDir) ?? Path.Combine("runs", "reproduce", chosen.Name + (isQuick ? "-quick" : "")),
            };
            var console = InceptCli.Console(json ? parse.InvocationConfiguration.Error : output);
            var budget = options.BudgetFor(chosen);
            if (chosen.Trains)
            {
                console.MarkupLine(isQuick
                    ? $"Checking [bold]{chosen.Name}[/] with the quick budget: about {Minutes(budget.EstimatedMinutes)} on 2 CPU cores."
                    : $"Checking [bold]{chosen.Name}[/] with the full budget: this takes about {Minutes(budget.EstimatedMinutes)} on 2 CPU cores (--quick: about {Minutes(chosen.Quick.EstimatedMinutes)}).");
            }

            var result = Run(console, chosen, options, cancellation);
            if (json)
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    claim = result.Claim, paper = result.Paper, source = result.Source, statement = result.Statement,
                    paper_figure = result.PaperFigure, measured_figure = result.MeasuredFigure,
                    verdict = Reproduction.VerdictText(result.Verdict), reason = result.Reason,
                    measurements = result.Measurements.Select(m => new { quantity = m.Quantity, paper = m.Paper, measured = m.Measured }),
                    quick = result.Quick, seed = result.Seed, seconds = result.Seconds,
                    report = Path.Combine(result.OutDir, "report.md"), result = Path.Combine(result.OutDir, "result.json"),
                    plots = result.Plots.Select(p => Path.Combine(result.OutDir, p)),
                }, CommonOptions.JsonLine));
                return Task.FromResult(0);
            }

            var table = new Table().AddColumns("claim", "paper's figure", "measured figure", "verdict");
            table.AddRow(Markup.Escape(result.Claim), Markup.Escape(result.PaperFigure), Markup.Escape(result.MeasuredFigure),
                $"[bold]{Reproduction.VerdictText(result.Verdict)}[/]: {Markup.Escape(result.Reason)}");
            console.Write(table);
            var details = new Table().AddColumns("quantity", "paper", "measured");
            foreach (var m in result.Measurements) details.AddRow(Markup.Escape(m.Quantity), Markup.Escape(m.Paper), Markup.Escape(m.Measured));
            console.Write(details);
            console.MarkupLine($"Report: {Markup.Escape(Path.Combine(result.OutDir, "report.md"))}, {Markup.Escape(Path.Combine(result.OutDir, "result.json"))}");
            if (result.Plots.Count > 0) console.MarkupLine($"Plots:  {Markup.Escape(string.Join(", ", result.Plots.Select(p => Path.Combine(result.OutDir, p))))}");
            return Task.FromResult(0);
        });
        return command;
    }

    private static void List(TextWriter output, bool json)
    {
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(ClaimRegistry.All.Select(c => new
            {
                name = c.Name, paper = c.Paper, source = c.Source, statement = c.Statement, paper_figure = c.PaperFigure, measures = c.Measures,
                trains = c.Trains, quick_minutes = c.Quick.EstimatedMinutes, full_minutes = c.Full.EstimatedMinutes,
            }), CommonOptions.Json));
            return;
        }

        var table = new Table().AddColumns("claim", "paper", "paper's figure", "quick", "full");
        foreach (var c in ClaimRegistry.All)
        {
            table.AddRow(c.Name, Markup.Escape(c.Paper.Split(" (")[0]), Markup.Escape(c.PaperFigure),
                c.Trains ? $"~{Minutes(c.Quick.EstimatedMinutes)}" : "seconds", c.Trains ? $"~{Minutes(c.Full.EstimatedMinutes)}" : "seconds");
        }

        InceptCli.Console(output).Write(table);
    }

    private static string Minutes(double minutes) => minutes >= 90
        ? string.Create(CultureInfo.InvariantCulture, $"{minutes / 60:0.#} h")
        : string.Create(CultureInfo.InvariantCulture, $"{Math.Max(1, Math.Round(minutes)):0} min");

    private static ClaimResult Run(IAnsiConsole console, Claim claim, ReproduceOptions options, CancellationToken cancellation)
    {
        if (!console.Profile.Capabilities.Interactive)
        {
            var lastQuarter = new Dictionary<string, long>();
            var lines = new ActionProgress(p =>
            {
                long quarter = p.Steps == 0 ? 4 : p.Step * 4 / p.Steps;
                if (lastQuarter.TryGetValue(p.Run, out var q) && q == quarter) return;
                lastQuarter[p.Run] = quarter;
                if (quarter == 0) return;
                // The accuracy is the last evaluation's; its step is named when it is not this one.
                string top1 = p.Top1 is not { } t ? ""
                    : string.Create(CultureInfo.InvariantCulture, $" test top-1 {t:0.0000}{(p.EvaluatedAt is { } at && at != p.Step ? $" (step {at})" : "")}");
                console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{p.Run}: step {p.Step}/{p.Steps} loss {p.Loss:0.0000}{top1}"));
            });
            return Reproduction.Run(claim, options, lines, cancellation);
        }

        ClaimResult? result = null;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                var report = new ActionProgress(p =>
                {
                    if (!tasks.TryGetValue(p.Run, out var task))
                    {
                        task = ctx.AddTask(Markup.Escape(p.Run), maxValue: p.Steps);
                        tasks[p.Run] = task;
                    }

                    task.Value = p.Step;
                    task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                        $"{p.Run,-22} loss {p.Loss:0.000}{(p.Top1 is { } t ? $" top-1 {t:P1}" : "")}"));
                });
                result = Reproduction.Run(claim, options, report, cancellation);
            });
        return result!;
    }

    /// <summary>Handles reports on the training thread, in order.</summary>
    private sealed class ActionProgress(Action<ReproduceProgress> handler) : IProgress<ReproduceProgress>
    {
        public void Report(ReproduceProgress value) => handler(value);
    }
}
