using System.Diagnostics;

namespace Incept.Tests.Scripts;

/// <summary>
/// Runs the versioned reference scripts in Scripts/ with Debian's /usr/bin/python3 (python3-torch 1.13,
/// python3-torchvision 0.14). Outside CI a test that needs them is skipped when they are missing; in CI
/// (CI=true, where .ci/run installs them) it fails.
/// </summary>
internal static class PythonReference
{
    public const string Python = "/usr/bin/python3";

    private static readonly Dictionary<string, bool> Importable = [];

    /// <summary>Skips (outside CI) or fails (in CI) unless every module in <paramref name="modules"/> imports.</summary>
    public static void Require(string modules)
    {
        bool inCi = Environment.GetEnvironmentVariable("CI") == "true";
        bool ok = HasModules(modules);
        Skip.If(!inCi && !ok, $"Debian's python3 modules {modules} are not installed (bash .ci/run installs them).");
        Assert.True(ok, $"python3 modules {modules} are required in CI.");
    }

    /// <summary>Whether <paramref name="modules"/> (comma-separated) import with /usr/bin/python3.</summary>
    public static bool HasModules(string modules)
    {
        lock (Importable)
        {
            if (Importable.TryGetValue(modules, out var known)) return known;
            bool ok = File.Exists(Python) && Execute(["-c", $"import {modules}"]).ExitCode == 0;
            Importable[modules] = ok;
            return ok;
        }
    }

    /// <summary>Runs Scripts/<paramref name="script"/> with <paramref name="args"/>; returns its error output when it fails, else null.</summary>
    public static string? Run(string script, params string[] args)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Scripts", script);
        var (code, stderr) = Execute([path, .. args]);
        return code == 0 ? null : $"{script} exited with {code}: {stderr}";
    }

    /// <summary>Runs Scripts/<paramref name="script"/> and fails the test if it fails.</summary>
    public static void RunOrFail(string script, params string[] args)
    {
        var failure = Run(script, args);
        Assert.True(failure is null, failure);
    }

    /// <summary>Runs /usr/bin/python3 with <paramref name="args"/> (a script path or <c>-c</c> code first).</summary>
    public static (int ExitCode, string Stdout, string Stderr) RunWithOutput(params string[] args)
    {
        var psi = new ProcessStartInfo(Python, args) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.Environment["OMP_NUM_THREADS"] = "2";
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }

    private static (int ExitCode, string Stderr) Execute(string[] args)
    {
        var (code, _, stderr) = RunWithOutput(args);
        return (code, stderr);
    }
}
