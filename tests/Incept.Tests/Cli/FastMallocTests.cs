using System.Diagnostics;
using System.Text.Json;
using Incept.Cli;

namespace Incept.Tests.Cli;

public sealed class HugePagesTests
{
    private const string Madvise = "always [madvise] never\n";

    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void Heavy_commands_are_relaunched_with_the_tunable_added_to_any_there_are()
    {
        Assert.Equal("glibc.malloc.hugetlb=1", HugePages.RelaunchTunables(["train"], Env(), true, Madvise));
        Assert.Equal("glibc.malloc.hugetlb=1", HugePages.RelaunchTunables(["bench", "--model", "googlenet"], Env(), true, "[always] madvise never"));
        Assert.Equal("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1",
            HugePages.RelaunchTunables(["eval"], Env(("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")), true, Madvise));
    }

    [Theory]
    [InlineData("models")] // quick commands stay in this process
    [InlineData("summary")]
    [InlineData("train --help")]
    [InlineData("")]
    public void Quick_commands_and_help_run_in_this_process(string command)
    {
        Assert.Null(HugePages.RelaunchTunables(command.Split(' ', StringSplitOptions.RemoveEmptyEntries), Env(), true, Madvise));
    }

    [Fact]
    public void No_relaunch_when_switched_off_already_set_off_Linux_or_when_the_kernel_says_never()
    {
        Assert.Null(HugePages.RelaunchTunables(["train"], Env(("INCEPT_HUGE_PAGES", "0")), true, Madvise));
        Assert.Null(HugePages.RelaunchTunables(["train"], Env(("INCEPT_HUGE_PAGES", "relaunched")), true, Madvise)); // at most once
        Assert.Null(HugePages.RelaunchTunables(["train"], Env(("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0")), true, Madvise));
        Assert.Null(HugePages.RelaunchTunables(["train"], Env(), false, Madvise));
        Assert.Null(HugePages.RelaunchTunables(["train"], Env(), true, "always madvise [never]"));
        Assert.Null(HugePages.RelaunchTunables(["train"], Env(), true, null));
    }

    [Fact]
    public void The_tunable_counts_only_when_it_turns_huge_pages_on()
    {
        Assert.True(HugePages.HasTunable("glibc.malloc.hugetlb=1"));
        Assert.True(HugePages.HasTunable("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2"));
        Assert.False(HugePages.HasTunable("glibc.malloc.hugetlb=0"));
        Assert.False(HugePages.HasTunable(null));
    }

    private static string? KernelSetting() =>
        File.Exists("/sys/kernel/mm/transparent_hugepage/enabled") ? File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled") : null;

    private static ProcessStartInfo Incept(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "incept.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment.Remove("GLIBC_TUNABLES");
        start.Environment.Remove(HugePages.Switch);
        return start;
    }

    private static readonly string[] TinyBench =
        ["bench", "--model", "googlenet", "--width", "0.25", "--small-input", "--input-size", "28", "--in-channels", "1",
         "--num-classes", "10", "--batch-size", "2", "--warmup", "0", "--iterations", "1", "--threads", "1", "--format", "json"];

    private static (int Code, string Out, string Err) RunToEnd(ProcessStartInfo start)
    {
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }

    [SkippableFact]
    public void The_program_runs_heavy_commands_with_huge_pages_and_passes_exit_codes_back()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && HugePages.KernelAllows(KernelSetting()), "the kernel's transparent huge pages are off");
        var on = RunToEnd(Incept(TinyBench));
        Assert.True(on.Code == 0, on.Err);
        Assert.True(JsonDocument.Parse(on.Out.Trim().Split('\n')[^1]).RootElement.GetProperty("malloc_huge_pages").GetBoolean());

        var offStart = Incept(TinyBench);
        offStart.Environment[HugePages.Switch] = "0";
        var off = RunToEnd(offStart);
        Assert.True(off.Code == 0, off.Err);
        Assert.False(JsonDocument.Parse(off.Out.Trim().Split('\n')[^1]).RootElement.GetProperty("malloc_huge_pages").GetBoolean());

        // A user's mistake in the relaunched process: its one-line message and exit code come through.
        var wrong = RunToEnd(Incept("bench", "--model", "no_such_net"));
        Assert.Equal(InceptCli.Usage, wrong.Code);
        Assert.Contains("no_such_net", wrong.Err, StringComparison.Ordinal);
        Assert.Single(wrong.Err.Trim().Split('\n'));
    }

    [SkippableFact]
    public void The_relaunch_replaces_the_process_rather_than_starting_a_second_one()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && HugePages.KernelAllows(KernelSetting()), "the kernel's transparent huge pages are off");
        var args = TinyBench.ToArray();
        args[Array.IndexOf(args, "--iterations") + 1] = "100000";
        using var process = Process.Start(Incept(args))!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        try
        {
            // The same process id comes to carry the tunable in its environment once it has replaced itself.
            bool relaunched = false;
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!relaunched && DateTime.UtcNow < deadline && !process.HasExited)
            {
                Thread.Sleep(100);
                try
                {
                    relaunched = File.ReadAllText($"/proc/{process.Id}/environ").Split('\0').Contains("GLIBC_TUNABLES=" + HugePages.Tunable);
                }
                catch (IOException)
                {
                }
            }

            Assert.True(relaunched, "the process never ran with the tunable");
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
