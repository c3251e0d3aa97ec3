using System.Reflection;
using System.Runtime.InteropServices;

namespace Incept.Cli;

/// <summary>The C allocator a compute-heavy command runs with.</summary>
internal enum MallocKind
{
    /// <summary>glibc's malloc as the process started with it.</summary>
    System,

    /// <summary>glibc's malloc asking for transparent huge pages (<c>GLIBC_TUNABLES=glibc.malloc.hugetlb=1</c>).</summary>
    HugePages,

    /// <summary>gperftools' tcmalloc, preloaded (<c>LD_PRELOAD</c>).</summary>
    TcMalloc,

    /// <summary>Another allocator the user preloaded (jemalloc, mimalloc).</summary>
    Preloaded,
}

/// <summary>
/// How the program starts itself again: <paramref name="Variable"/> set to <paramref name="Value"/>, and
/// <paramref name="Extra"/> set where the environment does not set them already.
/// </summary>
internal sealed record MallocRelaunch(MallocKind Kind, string Variable, string Value, params (string Name, string Value)[] Extra)
{
    /// <inheritdoc/>
    public bool Equals(MallocRelaunch? other) =>
        other is not null && Kind == other.Kind && Variable == other.Variable && Value == other.Value && Extra.SequenceEqual(other.Extra);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Kind, Variable, Value, Extra.Length);
}

/// <summary>
/// Runs the compute-heavy commands with a C allocator that keeps freed memory for the next training step or batch:
/// gperftools' tcmalloc where it is installed (Debian's <c>libtcmalloc-minimal4</c>), else glibc's malloc on
/// transparent huge pages.
/// </summary>
/// <remarks>
/// <para>libtorch takes every activation and gradient from <c>malloc</c>. glibc maps blocks above 32 MiB afresh at
/// each step and unmaps them when freed, so the kernel zeroes their pages again every step: about 9 % of an
/// inception_v3 training step went to clearing pages even with huge pages. tcmalloc keeps freed spans and hands them
/// out again, which made that step 22 % faster and its peak memory 10 % lower (docs/benchmarks.md); without it, huge
/// pages make glibc's faults cheaper (+9–13 %). Either is chosen when the process starts (a preload and a glibc tunable
/// are read then), so the command starts itself again with it, replacing its own process image before it has done
/// anything: the process id, standard streams, signals and exit code stay those of the one process.</para>
/// <para>The training commands (<c>train</c>, <c>reproduce</c>, <c>bench --mode train</c>) relaunched with tcmalloc
/// also run with .NET's profile-guided recompilation off and recompilation starting without delay
/// (<c>DOTNET_TieredPGO=0</c>, <c>DOTNET_TC_CallCountingDelayMs=0</c>, unless set): the runtime's recompiling then ends in
/// the first steps instead of taking part of the heap's freed spans later, which raised googlenet's training peak by
/// 50–100 MiB.</para>
/// <para><c>INCEPT_MALLOC</c> chooses: <c>auto</c> (the default, as is any other value: tcmalloc, else huge pages),
/// <c>hugepages</c> or <c>system</c> (no relaunch; <c>INCEPT_HUGE_PAGES=0</c>, the older switch, means the same).
/// Nothing happens off Linux, for the quick commands (listing models, help), or when the process already runs with a
/// preloaded allocator or the huge-pages tunable.</para>
/// </remarks>
internal static class FastMalloc
{
    /// <summary>The glibc tunable that makes malloc use transparent huge pages.</summary>
    internal const string Tunable = "glibc.malloc.hugetlb=1";

    /// <summary>The environment variable that chooses the allocator (a relaunched process finds it set to <c>relaunched</c>).</summary>
    internal const string Switch = "INCEPT_MALLOC";

    /// <summary>The older switch: <c>INCEPT_HUGE_PAGES=0</c> runs with the system's allocator.</summary>
    internal const string OldSwitch = "INCEPT_HUGE_PAGES";

    // The value of Switch in a relaunched process: a second relaunch never happens, whatever the environment says.
    private const string Relaunched = "relaunched";

    private const string ThpSetting = "/sys/kernel/mm/transparent_hugepage/enabled";

    // tcmalloc's shared library as Debian (libtcmalloc-minimal4, libgoogle-perftools4) and others install it.
    private static readonly string[] TcMallocNames = ["libtcmalloc_minimal.so.4", "libtcmalloc.so.4"];

    // tcmalloc writes a line to standard error for every allocation above 1 GiB (a large batch at 299 px makes
    // such activations); the relaunch raises that threshold out of reach unless the user has set it.
    private static readonly (string, string) QuietLargeAllocations = ("TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD", "1099511627776000");

    // tcmalloc hands freed spans back to the kernel bit by bit by default; a training step then faults them in again and
    // its peak grows: googlenet's training peak was 1242–1248 MiB without that against 1338–1343 MiB with it, at the same
    // speed (docs/benchmarks.md, ninth session). The relaunch keeps freed memory unless the user has set the rate.
    private static readonly (string, string) KeepFreedMemory = ("TCMALLOC_RELEASE_RATE", "0");

    // With tcmalloc, a training step's peak crept up by about 50 MiB at a time while .NET's tiered compilation was still
    // recompiling methods in the background (googlenet, batch 16, aux heads: after steps 7 and 30): the heap grew, so
    // something the runtime kept had taken part of a span that a large tensor had used. Without the profile-guided tier
    // (one recompilation per hot method instead of two) and with recompilation starting at once rather than after 100
    // ms without new methods, the recompiling is done in the first steps, before the step's large tensors have their
    // places, and the peak stays where those steps put it, at the same speed (docs/benchmarks.md, twenty-third session).
    // Only for the training commands: inference keeps the profile-guided code, which ran a few per cent faster there.
    internal static readonly (string Name, string Value)[] SettleCompilation = [("DOTNET_TieredPGO", "0"), ("DOTNET_TC_CallCountingDelayMs", "0")];

    private static readonly string[] LibraryFolders =
        ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"];

    // Preloaded allocators: a process that has one is left as it is.
    private static readonly string[] Allocators = ["tcmalloc", "jemalloc", "mimalloc"];

    // Commands whose run time is dominated by tensor work.
    private static readonly HashSet<string> Heavy = ["train", "eval", "bench", "predict", "reproduce", "features", "cam"];

    /// <summary>The allocator this process runs with (as reported by <c>incept bench</c>).</summary>
    public static MallocKind Current
    {
        get
        {
            if (!OperatingSystem.IsLinux()) return MallocKind.System;
            var maps = MappedFiles();
            if (maps.Any(m => m.Contains("libtcmalloc", StringComparison.Ordinal))) return MallocKind.TcMalloc;
            if (maps.Any(m => m.Contains("libjemalloc", StringComparison.Ordinal) || m.Contains("libmimalloc", StringComparison.Ordinal)))
                return MallocKind.Preloaded;
            return HasTunable(Environment.GetEnvironmentVariable("GLIBC_TUNABLES")) && KernelAllows(ReadThpSetting())
                ? MallocKind.HugePages : MallocKind.System;
        }
    }

    /// <summary>
    /// Whether .NET's profile-guided recompilation (dynamic PGO) is on in this process, as <c>incept bench</c> reports it:
    /// off where <c>DOTNET_TieredPGO</c> or <c>DOTNET_TieredCompilation</c> (or their older <c>COMPlus_</c> names) is 0, as
    /// in the relaunch of a training command, or where the runtime configuration turns either off.
    /// </summary>
    public static bool DynamicPgo => Knob("TieredPGO", "System.Runtime.TieredPGO") && Knob("TieredCompilation", "System.Runtime.TieredCompilation");

    private static bool Knob(string name, string property) =>
        (Environment.GetEnvironmentVariable("DOTNET_" + name) ?? Environment.GetEnvironmentVariable("COMPlus_" + name)) is not "0"
        && AppContext.GetData(property) is not (false or "false" or "False");

    /// <summary>The name <c>incept bench</c> reports for <paramref name="kind"/>.</summary>
    public static string Describe(MallocKind kind) => kind switch
    {
        MallocKind.TcMalloc => "tcmalloc",
        MallocKind.HugePages => "glibc, huge pages",
        MallocKind.Preloaded => "preloaded",
        _ => "glibc",
    };

    /// <summary>
    /// How to start <paramref name="args"/> again, or null when the command runs as it is. <paramref name="tcmalloc"/>
    /// is the path of tcmalloc's library, or null where it is not installed.
    /// </summary>
    internal static MallocRelaunch? Plan(string[] args, Func<string, string?> environment, bool isLinux, string? thpSetting, string? tcmalloc)
    {
        if (!isLinux || args.Length == 0 || !Heavy.Contains(args[0])) return null;
        if (args.Any(a => a is "-h" or "--help" or "-?")) return null;
        var choice = environment(Switch)?.Trim().ToLowerInvariant();
        if (choice is Relaunched or "system" || (choice is null or "" && environment(OldSwitch) is "0" or Relaunched)) return null;
        var preload = environment("LD_PRELOAD");
        if (preload is not null && Allocators.Any(a => preload.Contains(a, StringComparison.Ordinal))) return null;
        var tunables = environment("GLIBC_TUNABLES");
        if (tunables is not null && tunables.Contains("glibc.malloc.hugetlb", StringComparison.Ordinal)) return null;

        if (tcmalloc is not null && choice is not "hugepages")
        {
            var value = string.IsNullOrEmpty(preload) ? tcmalloc : tcmalloc + ":" + preload;
            (string, string)[] extra = [QuietLargeAllocations, KeepFreedMemory, .. Trains(args) ? SettleCompilation : []];
            return new MallocRelaunch(MallocKind.TcMalloc, "LD_PRELOAD", value, extra);
        }

        if (!KernelAllows(thpSetting)) return null;
        return new MallocRelaunch(MallocKind.HugePages, "GLIBC_TUNABLES", string.IsNullOrEmpty(tunables) ? Tunable : tunables + ":" + Tunable);
    }

    /// <summary>
    /// Whether <paramref name="args"/> run training steps: <c>train</c>, <c>reproduce</c>, and <c>bench</c> with
    /// <c>--mode train</c> (also written <c>--mode=train</c> or <c>--mode:train</c>).
    /// </summary>
    internal static bool Trains(string[] args)
    {
        if (args.Length == 0) return false;
        if (args[0] is "train" or "reproduce") return true;
        if (args[0] != "bench") return false;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] is "--mode=train" or "--mode:train") return true;
            if (args[i] == "--mode" && i + 1 < args.Length && args[i + 1] == "train") return true;
        }

        return false;
    }

    /// <summary>Whether <paramref name="tunables"/> (a GLIBC_TUNABLES value) turns malloc's huge pages on.</summary>
    internal static bool HasTunable(string? tunables) =>
        tunables is not null && tunables.Split(':').Any(t => t is "glibc.malloc.hugetlb=1" or "glibc.malloc.hugetlb=2");

    /// <summary>Whether the kernel's setting (the text of <c>transparent_hugepage/enabled</c>) lets malloc ask for huge pages.</summary>
    internal static bool KernelAllows(string? thpSetting) =>
        thpSetting is not null && (thpSetting.Contains("[madvise]", StringComparison.Ordinal) || thpSetting.Contains("[always]", StringComparison.Ordinal));

    /// <summary>The path of an installed tcmalloc library, or null.</summary>
    internal static string? FindTcMalloc() =>
        TcMallocNames.SelectMany(name => LibraryFolders.Select(folder => Path.Combine(folder, name))).FirstOrDefault(File.Exists);

    /// <summary>
    /// Replaces this process with a fresh start of the same command with the chosen allocator (<c>execve</c>: same
    /// process id, standard streams and signals, no second process). Returns only when that is not done (see the
    /// remarks) or fails, and the command then runs in this process.
    /// </summary>
    public static void Relaunch(string[] args)
    {
        if (!OperatingSystem.IsLinux()) return;
        var plan = Plan(args, Environment.GetEnvironmentVariable, true, ReadThpSetting(), FindTcMalloc());
        if (plan is null) return;
        var argv = CommandLine(args);
        if (argv is null) return;
        var environment = new List<string?>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var name = (string)e.Key;
            if (name != plan.Variable && name != Switch) environment.Add($"{name}={e.Value}");
        }

        environment.Add($"{plan.Variable}={plan.Value}");
        foreach (var (name, value) in plan.Extra)
        {
            if (Environment.GetEnvironmentVariable(name) is null) environment.Add($"{name}={value}");
        }

        environment.Add($"{Switch}={Relaunched}");
        environment.Add(null);
        argv.Add(null);
        // On success execve does not return; on failure the command simply runs here with the system's allocator.
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

    private static string[] MappedFiles()
    {
        try
        {
            return File.ReadAllLines("/proc/self/maps");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static string? ReadThpSetting()
    {
        try
        {
            return File.Exists(ThpSetting) ? File.ReadAllText(ThpSetting) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
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
