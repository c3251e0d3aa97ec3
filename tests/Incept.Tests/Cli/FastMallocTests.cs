using System.Diagnostics;
using System.Text.Json;
using Incept.Cli;

namespace Incept.Tests.Cli;

public sealed class FastMallocTests
{
    private const string Madvise = "always [madvise] never\n";
    private const string TcMalloc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";

    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    private static MallocRelaunch? Plan(string[] args, Func<string, string?> env, string? thp = Madvise, string? tcmalloc = TcMalloc, bool linux = true) =>
        FastMalloc.Plan(args, env, linux, thp, tcmalloc);

    [Fact]
    public void Heavy_commands_are_relaunched_with_tcmalloc_preloaded_where_it_is_installed()
    {
        var plan = Plan(["train"], Env());
        Assert.Equal(MallocKind.TcMalloc, plan?.Kind);
        Assert.Equal(("LD_PRELOAD", TcMalloc), (plan!.Variable, plan.Value));
        // tcmalloc's warning about allocations above 1 GiB is kept off standard error.
        Assert.Contains(plan.Extra, e => e.Name == "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD" && long.Parse(e.Value) > 1L << 40);
        // Freed spans stay with tcmalloc (a lower training peak, docs/benchmarks.md).
        Assert.Contains(("TCMALLOC_RELEASE_RATE", "0"), plan.Extra);
        Assert.Equal(TcMalloc + ":/opt/x/libhook.so", Plan(["bench", "--model", "googlenet"], Env(("LD_PRELOAD", "/opt/x/libhook.so")))?.Value);
        // The kernel's huge-pages setting does not matter to tcmalloc.
        Assert.Equal(MallocKind.TcMalloc, Plan(["eval"], Env(("INCEPT_MALLOC", "auto")), thp: "always madvise [never]")?.Kind);
    }

    [Theory]
    [InlineData("train", true)]
    [InlineData("reproduce fig", true)]
    [InlineData("bench --model googlenet --mode train --aux", true)]
    [InlineData("bench --mode=train", true)]
    [InlineData("bench --mode:train", true)]
    [InlineData("bench --model googlenet", false)]
    [InlineData("bench --mode infer --model train", false)]
    [InlineData("predict photo.jpg", false)]
    [InlineData("eval --weights w.safetensors", false)]
    public void Training_commands_are_relaunched_with_compilation_settled_early_and_inference_keeps_dynamic_pgo(string command, bool trains)
    {
        var args = command.Split(' ');
        Assert.Equal(trains, FastMalloc.Trains(args));
        var plan = Plan(args, Env());
        Assert.Equal(MallocKind.TcMalloc, plan?.Kind);
        Assert.Equal(trains, plan!.Extra.Contains(("DOTNET_TieredPGO", "0")));
        Assert.Equal(trains, plan.Extra.Contains(("DOTNET_TC_CallCountingDelayMs", "0")));
        // The allocator's own settings come either way.
        Assert.Contains(("TCMALLOC_RELEASE_RATE", "0"), plan.Extra);
        // Measured with tcmalloc only: glibc's huge pages come without it.
        Assert.Empty(Plan(args, Env(), tcmalloc: null)!.Extra);
    }

    [Fact]
    public void Without_tcmalloc_or_when_asked_heavy_commands_get_huge_pages_added_to_any_tunables()
    {
        Assert.Equal(new MallocRelaunch(MallocKind.HugePages, "GLIBC_TUNABLES", "glibc.malloc.hugetlb=1"), Plan(["train"], Env(), tcmalloc: null));
        Assert.Equal(new MallocRelaunch(MallocKind.HugePages, "GLIBC_TUNABLES", "glibc.malloc.hugetlb=1"),
            Plan(["bench"], Env(("INCEPT_MALLOC", "hugepages")), thp: "[always] madvise never"));
        Assert.Equal("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1",
            Plan(["eval"], Env(("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")), tcmalloc: null)?.Value);
    }

    [Theory]
    [InlineData("models")] // quick commands stay in this process
    [InlineData("summary")]
    [InlineData("train --help")]
    [InlineData("")]
    public void Quick_commands_and_help_run_in_this_process(string command)
    {
        Assert.Null(Plan(command.Split(' ', StringSplitOptions.RemoveEmptyEntries), Env()));
    }

    [Fact]
    public void No_relaunch_when_switched_off_relaunched_already_set_or_off_Linux()
    {
        Assert.Null(Plan(["train"], Env(("INCEPT_MALLOC", "system"))));
        Assert.Null(Plan(["train"], Env(("INCEPT_HUGE_PAGES", "0")))); // the older switch
        Assert.Null(Plan(["train"], Env(("INCEPT_MALLOC", "relaunched")))); // at most once
        Assert.Null(Plan(["train"], Env(("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")))); // the user's allocator
        Assert.Null(Plan(["train"], Env(("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0"))));
        Assert.Null(Plan(["train"], Env(), linux: false));
        Assert.Null(Plan(["train"], Env(), thp: "always madvise [never]", tcmalloc: null));
        Assert.Null(Plan(["train"], Env(), thp: null, tcmalloc: null));
    }

    [Fact]
    public void The_tunable_counts_only_when_it_turns_huge_pages_on()
    {
        Assert.True(FastMalloc.HasTunable("glibc.malloc.hugetlb=1"));
        Assert.True(FastMalloc.HasTunable("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2"));
        Assert.False(FastMalloc.HasTunable("glibc.malloc.hugetlb=0"));
        Assert.False(FastMalloc.HasTunable(null));
    }

    private static string? KernelSetting() =>
        File.Exists("/sys/kernel/mm/transparent_hugepage/enabled") ? File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled") : null;

    private static ProcessStartInfo Incept(params string[] args) => CliRunner.Process(args);

    private static readonly string[] TinyBench =
        ["bench", "--model", "googlenet", "--width", "0.25", "--small-input", "--input-size", "28", "--in-channels", "1",
         "--num-classes", "10", "--batch-size", "2", "--warmup", "0", "--iterations", "1", "--threads", "1", "--format", "json"];

    private static (int Code, string Out, string Err) RunToEnd(ProcessStartInfo start) => CliRunner.RunToEnd(start);

    private static string Malloc(string output) =>
        JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement.GetProperty("malloc").GetString()!;

    private static bool DynamicPgo(string output) =>
        JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement.GetProperty("dynamic_pgo").GetBoolean();

    private static (int Code, string Out, string Err) RunWith(string? malloc, params string[] args)
    {
        var start = Incept(args);
        if (malloc is not null) start.Environment[FastMalloc.Switch] = malloc;
        return RunToEnd(start);
    }

    [SkippableFact]
    public void The_program_runs_heavy_commands_with_tcmalloc_and_passes_exit_codes_back()
    {
        Skip.If(!OperatingSystem.IsLinux() || FastMalloc.FindTcMalloc() is null, "tcmalloc is not installed (apt-get install libtcmalloc-minimal4)");
        var on = RunWith(null, TinyBench);
        Assert.True(on.Code == 0, on.Err);
        Assert.Equal("tcmalloc", Malloc(on.Out));
        // Inference keeps .NET's profile-guided recompilation; a training step runs without it (see FastMalloc).
        Assert.True(DynamicPgo(on.Out));
        var training = RunWith(null, [.. TinyBench, "--mode", "train"]);
        Assert.True(training.Code == 0, training.Err);
        Assert.Equal("tcmalloc", Malloc(training.Out));
        Assert.False(DynamicPgo(training.Out));

        var off = RunWith("system", TinyBench);
        Assert.True(off.Code == 0, off.Err);
        Assert.Equal("glibc", Malloc(off.Out));

        // A user's mistake in the relaunched process: its one-line message and exit code come through.
        var wrong = RunWith(null, "bench", "--model", "no_such_net");
        Assert.Equal(InceptCli.Usage, wrong.Code);
        Assert.Contains("no_such_net", wrong.Err, StringComparison.Ordinal);
        Assert.Single(wrong.Err.Trim().Split('\n'));
    }

    [SkippableFact]
    public void The_program_runs_heavy_commands_with_huge_pages_when_asked()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && FastMalloc.KernelAllows(KernelSetting()), "the kernel's transparent huge pages are off");
        var on = RunWith("hugepages", TinyBench);
        Assert.True(on.Code == 0, on.Err);
        Assert.Equal("glibc, huge pages", Malloc(on.Out));
        Assert.True(JsonDocument.Parse(on.Out.Trim().Split('\n')[^1]).RootElement.GetProperty("malloc_huge_pages").GetBoolean());
    }

    [SkippableFact]
    public void The_relaunch_replaces_the_process_rather_than_starting_a_second_one()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && (FastMalloc.FindTcMalloc() is not null || FastMalloc.KernelAllows(KernelSetting())),
            "neither tcmalloc nor the kernel's transparent huge pages are there");
        var args = TinyBench.ToArray();
        args[Array.IndexOf(args, "--iterations") + 1] = "100000";
        using var process = Process.Start(Incept(args))!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        try
        {
            // The same process id comes to carry the relaunch mark in its environment once it has replaced itself.
            bool relaunched = false;
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!relaunched && DateTime.UtcNow < deadline && !process.HasExited)
            {
                Thread.Sleep(100);
                try
                {
                    relaunched = File.ReadAllText($"/proc/{process.Id}/environ").Split('\0').Contains(FastMalloc.Switch + "=relaunched");
                }
                catch (IOException)
                {
                }
            }

            Assert.True(relaunched, "the process never started itself again");
            if (FastMalloc.FindTcMalloc() is { } tcmalloc)
            {
                var environ = File.ReadAllText($"/proc/{process.Id}/environ").Split('\0');
                Assert.Contains("LD_PRELOAD=" + tcmalloc, environ);
                Assert.Contains(environ, v => v.StartsWith("TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=", StringComparison.Ordinal));
                Assert.Contains("TCMALLOC_RELEASE_RATE=0", environ);
            }

            Assert.Equal("", File.ReadAllText($"/proc/{process.Id}/task/{process.Id}/children").Trim());
            Assert.Equal(0, Kill(process.Id, 15));
            Assert.True(process.WaitForExit(30_000), "the program did not stop after SIGTERM");
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}
