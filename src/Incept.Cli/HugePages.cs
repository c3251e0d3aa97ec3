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
/// faster at about the same peak memory (docs/benchmarks.md). The tunable is read once, when the process starts, so the
/// command starts itself again with it set, replacing its own process image before the command has done anything (the
/// process id, standard streams, signals and exit code stay those of the one process).</para>
/// <para>Nothing happens when <c>INCEPT_HUGE_PAGES=0</c>, when the tunable is already set, off Linux, when the kernel's
/// transparent huge pages are <c>never</c>, or for the quick commands (listing models, help).</para>
/// </remarks>
internal static class HugePages
{
    /// <summary>The glibc tunable that makes malloc use transparent huge pages.</summary>
    internal const string Tunable = "glibc.malloc.hugetlb=1";

    /// <summary>The environment variable that turns the relaunch off when set to 0 (a relaunched process finds it set to <c>relaunched</c>).</summary>
    internal const string Switch = "INCEPT_HUGE_PAGES";

    // The value of Switch in a relaunched process: a second relaunch never happens, even if the tunable were lost.
    private const string Relaunched = "relaunched";

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
        if (environment(Switch) is "0" or Relaunched) return null;
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
    /// Replaces this process with a fresh start of the same command with the tunable set (<c>execve</c>: same process
    /// id, standard streams and signals, no second process). Returns only when that is not done (see the remarks) or
    /// fails, and the command then runs in this process.
    /// </summary>
    public static void Relaunch(string[] args)
    {
        var tunables = RelaunchTunables(args, Environment.GetEnvironmentVariable, OperatingSystem.IsLinux(), ReadThpSetting());
        if (tunables is null) return;
        var argv = CommandLine(args);
        if (argv is null) return;
        var environment = new List<string?>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var name = (string)e.Key;
            if (name is not ("GLIBC_TUNABLES" or Switch)) environment.Add($"{name}={e.Value}");
        }

        environment.Add($"GLIBC_TUNABLES={tunables}");
        environment.Add($"{Switch}={Relaunched}");
        environment.Add(null);
        argv.Add(null);
        // On success execve does not return; on failure the command simply runs here without the tunable.
        _ = Execve(argv[0]!, [.. argv], [.. environment]);
    }

    /// <summary>How to start this program again with <paramref name="args"/>: the app host, or <c>dotnet</c> with the entry assembly.</summary>
    private static List<string?>? CommandLine(string[] args)
    {
        var host = Environment.ProcessPath;
        if (host is null) return null;
        var argv = new List<string?> { host };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            var entry = Assembly.GetEntryAssembly()?.Location;
            if (string.IsNullOrEmpty(entry)) return null;
            argv.Add(entry);
        }

        argv.AddRange(args);
        return argv;
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

    // LPStr is UTF-8 on Linux, the only system this runs on.
    [DllImport("libc", EntryPoint = "execve", SetLastError = true)]
    private static extern int Execve([MarshalAs(UnmanagedType.LPStr)] string path,
        [MarshalAs(UnmanagedType.LPArray, ArraySubType = UnmanagedType.LPStr)] string?[] argv,
        [MarshalAs(UnmanagedType.LPArray, ArraySubType = UnmanagedType.LPStr)] string?[] envp);
}
