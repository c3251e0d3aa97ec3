using System.Diagnostics;
using Incept.Runtime;

namespace Incept.Tests.Runtime;

public class NnpackTests
{
    [Fact]
    public void The_switch_reaches_libtorch_and_reads_back()
    {
        TorchRuntime.EnsureAvailable();
        Assert.False(Nnpack.Enabled, "EnsureAvailable leaves NNPACK off");
        try
        {
            Assert.True(Nnpack.TrySetEnabled(true));
            Assert.True(Nnpack.Enabled);
            Assert.True(Nnpack.TrySetEnabled(false));
            Assert.False(Nnpack.Enabled);
        }
        finally
        {
            Nnpack.TrySetEnabled(false);
        }
    }

    [Fact]
    public void A_batch_one_run_of_the_plain_engine_writes_nothing_about_NNPACK()
    {
        // On CPUs NNPACK cannot initialise on (Zen 5 among them), libtorch logged one line per batch-1 NCHW
        // convolution before the switch was turned off: about sixty for this run.
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "incept.dll"));
        foreach (var a in (string[])["bench", "--model", "googlenet", "--width", "0.25", "--input-size", "64", "--engine", "torch",
                     "--batch-size", "1", "--warmup", "1", "--iterations", "2", "--threads", "1", "--format", "json"])
            start.ArgumentList.Add(a);
        var (code, stdout, stderr) = RunToEnd(start);
        Assert.True(code == 0, stderr);
        Assert.Contains("images_per_second", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("NNPACK", stderr, StringComparison.Ordinal);
    }

    private static (int Code, string Out, string Err) RunToEnd(ProcessStartInfo start)
    {
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }
}
