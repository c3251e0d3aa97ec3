using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Incept.Cli;

/// <summary>
/// Runs the compute-heavy commands with glibc's malloc asking the kernel for transparent huge pages
/// (<c>GLIBC_TUNABLES=glibc.malloc.hugetlb=1</c>, glibc 2.35 and later).
/// </summary>
/// <remarks>
/// <para>libtorch allocates every activation and gradient with <c>malloc</c>; blocks of more than a few megabytes are
/// mapped afresh and returned to the kernel at each step, and touching them again costs one page fault per 4 KiB. With
/// the tunable, malloc marks its mappings for 2 MiB pages, and a training step at 224–299 px runs 9–13 %
/// faster at the same peak memory (docs/benchmarks.md). The tunable is read once, when the process starts, so the
/// command starts itself again with it set; the first process only waits, passes SIGTERM on, and returns the second
/// one's exit code.</para>
/// <para>Nothing happens when <c>INCEPT_HUGE_PAGES=0</c>, when the tunable is already set, off Linux, when the kernel's
/// transparent huge pages are <c>never</c>, or for the quick commands (listing models, help).</para>
/// </remarks>
internal static class HugePages
{
    /// <summary>The glibc tunable that makes malloc use transparent huge pages.</summary>
    internal const string Tunable = "glibc.malloc.hugetlb=1";

    /// <summary>The environment variable that turns the relaunch off when set to 0.</summary>
    internal const string Switch = "INCEPT_HUGE_PAGES";

    private const string ThpSetting = "/sys/kernel/mm/transparent_hugepage/enabled";

    // Commands whose run time is dominated by tensor work.
    private static readonly HashSet<string> Heavy = ["train", "eval", "bench", "predict", "reproduce", "features", "cam"];

    /// <summary>Whether this process runs with the tunable (as reported by <c>incept bench</c>).</summary>
    public static bool Active => HasTunable(Environment.GetEnvironmentVariable("GLIBC_TUNABLES")) && KernelAllows(ReadThpSetting());

    /// <summary>
    /// The value GLIBC_TUNABLES should have for a relaunch of <paramref name="args"/>, or null when the command runs
    /// as it is.
    /// </summary>
    internal static string? RelaunchTunables(string[] args, Func<string, string?> environment, bool isLinux, string? thpSetting)
    {
        if (!isLinux || args.Length == 0 || !Heavy.Contains(args[0])) return null;
        if (args.Any(a => a is "-h" or "--help" or "-?")) return null;
        if (environment(Switch) == "0") return null;
        var current = environment("GLIBC_TUNABLES");
        if (current is not null && current.Contains("glibc.malloc.hugetlb", StringComparison.Ordinal)) return null;
        if (!KernelAllows(thpSetting)) return null;
        return string.IsNullOrEmpty(current) ? Tunable : current + ":" + Tunable;
    }

    /// <summary>Whether <paramref name="tunables"/> (a GLIBC_TUNABLES value) turns malloc's huge pages on.</summary>
    internal static bool HasTunable(string? tunables) =>
        tunables is not null && tunables.Split(':').Any(t => t is "glibc.malloc.hugetlb=1" or "glibc.malloc.hugetlb=2");

    /// <summary>Whether the kernel's setting (the text of <c>transparent_hugepage/enabled</c>) lets malloc ask for huge pages.</summary>
    internal static bool KernelAllows(string? thpSetting) =>
        thpSetting is not null && (thpSetting.Contains("[madvise]", StringComparison.Ordinal) || thpSetting.Contains("[always]", StringComparison.Ordinal));

    /// <summary>
    /// Runs <paramref name="args"/> in a new process with the tunable set and returns its exit code; null when the
    /// command should run in this process instead (see the remarks, or when the new process cannot be started).
    /// </summary>
    public static int? Relaunch(string[] args)
    {
        var tunables = RelaunchTunables(args, Environment.GetEnvironmentVariable, OperatingSystem.IsLinux(), ReadThpSetting());
        if (tunables is null) return null;
        var start = StartInfo(args);
        if (start is null) return null;
        start.Environment["GLIBC_TUNABLES"] = tunables;
        Process child;
        try
        {
            child = Process.Start(start)!;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return null;
        }

        using (child)
        {
            // Ctrl-C reaches both processes (one process group): this one ignores it and waits for the child to stop.
            // A SIGTERM sent to this process alone is passed on.
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
            using var quit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, c => c.Cancel = true);
            using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
            {
                c.Cancel = true;
                _ = Kill(child.Id, SigTerm);
            });
            child.WaitForExit();
            return child.ExitCode;
        }
    }

    /// <summary>How to start this program again with <paramref name="args"/>: the app host, or <c>dotnet</c> with the entry assembly.</summary>
    private static ProcessStartInfo? StartInfo(string[] args)
    {
        var host = Environment.ProcessPath;
        if (host is null) return null;
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            var entry = Assembly.GetEntryAssembly()?.Location;
            if (string.IsNullOrEmpty(entry)) return null;
            start.ArgumentList.Add(entry);
        }

        foreach (var a in args) start.ArgumentList.Add(a);
        return start;
    }

    private static string? ReadThpSetting()
    {
        try
        {
            return File.Exists(ThpSetting) ? File.ReadAllText(ThpSetting) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private const int SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
