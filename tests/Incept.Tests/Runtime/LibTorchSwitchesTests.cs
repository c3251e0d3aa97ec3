using System.Diagnostics;
using Incept.Runtime;

namespace Incept.Tests.Runtime;

public class LibTorchSwitchesTests
{
    [Fact]
    public void The_nnpack_switch_reaches_libtorch_and_reads_back()
    {
        TorchRuntime.EnsureAvailable();
        Assert.False(LibTorchSwitches.NnpackEnabled, "EnsureAvailable leaves NNPACK off");
        try
        {
            Assert.True(LibTorchSwitches.TrySetNnpack(true));
            Assert.True(LibTorchSwitches.NnpackEnabled);
            Assert.True(LibTorchSwitches.TrySetNnpack(false));
            Assert.False(LibTorchSwitches.NnpackEnabled);
        }
        finally
        {
            LibTorchSwitches.TrySetNnpack(false);
        }
    }

    [Fact]
    public void The_onednn_switch_reaches_libtorch_and_the_convolutions_stay_correct_without_it()
    {
        TorchRuntime.EnsureAvailable();
        bool before = LibTorchSwitches.OneDnnEnabled ?? throw new InvalidOperationException("libtorch does not export the oneDNN switch");
        try
        {
            Assert.True(LibTorchSwitches.TrySetOneDnn(false));
            Assert.False(LibTorchSwitches.OneDnnEnabled);
            // libtorch's own kernels are the fallback the runtime relies on: they must pass the check.
            var check = ConvolutionSelfTest.Run();
            Assert.True(check.Passed, check.Failure);
            Assert.True(LibTorchSwitches.TrySetOneDnn(true));
            Assert.True(LibTorchSwitches.OneDnnEnabled);
        }
        finally
        {
            LibTorchSwitches.TrySetOneDnn(before);
        }
    }

    [Fact]
    public void After_initialisation_the_convolutions_in_use_pass_the_check()
    {
        TorchRuntime.EnsureAvailable();
        var check = ConvolutionSelfTest.Run();
        Assert.True(check.Passed, $"{check.Failure} (oneDNN in use: {TorchRuntime.OneDnnInUse})");
        Assert.Equal(7, check.Cases);
        // Where the start-up check failed, oneDNN is off; where it passed, oneDNN is still on.
        Assert.NotNull(TorchRuntime.ConvolutionCheck);
        Assert.Equal(TorchRuntime.ConvolutionCheck.Passed, TorchRuntime.OneDnnInUse);
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
