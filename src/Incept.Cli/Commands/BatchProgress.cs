using Spectre.Console;

namespace Incept.Cli.Commands;

/// <summary>A progress bar over the images of a batched job, drawn on standard error only when it is a terminal.</summary>
internal static class BatchProgress
{
    /// <summary>
    /// Runs <paramref name="body"/>, which reports how many of <paramref name="total"/> images it has done, with a
    /// progress bar on <paramref name="error"/> when that is the terminal's standard error; elsewhere (pipes, files,
    /// tests) nothing is drawn, so that the output stays clean.
    /// </summary>
    public static void Run(TextWriter error, string description, int total, Action<Action<int>> body)
    {
        bool terminal = error == System.Console.Error && !System.Console.IsErrorRedirected;
        if (!terminal)
        {
            body(_ => { });
            return;
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(error),
            Ansi = AnsiSupport.Detect,
            ColorSystem = ColorSystemSupport.Detect,
            Interactive = InteractionSupport.Yes,
        });
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(description, maxValue: total);
                body(n => task.Increment(n));
            });
    }
}
