using Incept.Data;
using Incept.Training;
using Spectre.Console;

namespace Incept.Cli.Commands;

/// <summary>Shows a training run: live progress bars on a terminal, one line per epoch elsewhere.</summary>
internal static class TrainingProgressView
{
    public static TrainResult Run(IAnsiConsole console, TrainOptions options, DataSource data, CancellationToken cancellation)
    {
        var what = options.FineTune is { } ft ? $"Fine-tuning [bold]{Markup.Escape(Path.GetFileName(ft.Weights))}[/]{(ft.FreezeBackbone ? " (backbone frozen" + (ft.UnfreezeAfter is { } n ? $" for {n} epochs)" : ")") : "")}" : $"Training [bold]{Markup.Escape(options.Model)}[/]";
        console.MarkupLine($"{what} on {Markup.Escape(data.Name)} ({data.Train.Count:N0} train / {data.Test.Count:N0} test images) with the {Markup.Escape(options.Recipe.Name)} recipe → {Markup.Escape(options.OutDir)}");
        if (!console.Profile.Capabilities.Interactive)
        {
            var lines = new ActionProgress(p =>
            {
                if (p.Step == p.Steps && p.Phase != "validate")
                    console.WriteLine($"epoch {p.Epoch + 1}/{p.Epochs} {p.Phase,-5} loss {p.Loss:0.0000} top-1 {p.Top1:P2} {p.ImagesPerSecond:0} img/s");
            });
            return Trainer.Run(options, data, lines, cancellation);
        }

        TrainResult? result = null;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<(string, int), ProgressTask>();
                var report = new ActionProgress(p =>
                {
                    if (!tasks.TryGetValue((p.Phase, p.Epoch), out var task))
                    {
                        task = ctx.AddTask($"epoch {p.Epoch + 1}/{p.Epochs} {p.Phase}", maxValue: p.Steps);
                        tasks[(p.Phase, p.Epoch)] = task;
                    }

                    task.Value = p.Step;
                    task.Description = $"epoch {p.Epoch + 1}/{p.Epochs} {p.Phase,-8} loss {p.Loss:0.000} top-1 {p.Top1:P1} {p.ImagesPerSecond:0} img/s";
                });
                result = Trainer.Run(options, data, report, cancellation);
            });
        return result!;
    }

    /// <summary>Handles reports on the training thread, in order (Progress&lt;T&gt; would post them to the thread pool).</summary>
    private sealed class ActionProgress(Action<TrainProgress> handler) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => handler(value);
    }
}
