using System.Diagnostics;
using System.Text.Json;
using Incept.Cli;

namespace Incept.Tests.Cli;

/// <summary>Runs the <c>incept</c> command line in-process and captures what it writes.</summary>
internal static class CliRunner
{
    /// <summary>The exit code, standard output and standard error of <c>incept <paramref name="args"/></c>.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = InceptCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>
    /// How to start <c>incept <paramref name="args"/></c> as its own process (dotnet and the built incept.dll), without
    /// the allocator and compiler settings the test host may have inherited (the relaunch sets them itself).
    /// </summary>
    public static ProcessStartInfo Process(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "incept.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment.Remove("GLIBC_TUNABLES");
        start.Environment.Remove("LD_PRELOAD");
        start.Environment.Remove(FastMalloc.Switch);
        start.Environment.Remove(FastMalloc.OldSwitch);
        start.Environment.Remove(InceptCli.OneDnnSwitch);
        start.Environment.Remove(InceptCli.MklSwitch);
        foreach (var name in FastMalloc.SettleCompilation.Select(s => s.Name).Append("DOTNET_TieredCompilation"))
        {
            start.Environment.Remove(name);
            start.Environment.Remove(name.Replace("DOTNET_", "COMPlus_", StringComparison.Ordinal));
        }

        return start;
    }

    /// <summary>Runs <paramref name="start"/> to its end: the exit code, standard output and standard error.</summary>
    public static (int Code, string Out, string Err) RunToEnd(ProcessStartInfo start)
    {
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }

    /// <summary>
    /// Runs a tiny <c>incept bench --format json</c> (googlenet at width 0.25, 28 px, one iteration) in its own process
    /// with <paramref name="environment"/> set: the exit code, standard error and, when it succeeded, the JSON report.
    /// </summary>
    public static (int Code, string Err, JsonElement Report) TinyBench(params (string Name, string Value)[] environment)
    {
        var start = Process("bench", "--model", "googlenet", "--width", "0.25", "--small-input", "--input-size", "28",
            "--batch-size", "2", "--warmup", "0", "--iterations", "1", "--threads", "1", "--format", "json");
        foreach (var (name, value) in environment) start.Environment[name] = value;
        var (code, stdout, stderr) = RunToEnd(start);
        var report = code == 0 ? JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement : default;
        return (code, stderr, report);
    }
}
