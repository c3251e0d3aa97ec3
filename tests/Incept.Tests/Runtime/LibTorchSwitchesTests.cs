using Incept.Cli;
using Incept.Runtime;
using Incept.Tests.Cli;
using TorchSharp;

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
    public void The_check_names_a_convolution_whose_last_partial_block_of_channels_is_wrong()
    {
        TorchRuntime.EnsureAvailable();
        // The failure seen with oneDNN 3.7.1 on a Zen 5 VM: the last 16 of 112 output channels wrong.
        var check = ConvolutionSelfTest.Run((x, w, stride, padding) =>
        {
            var y = TorchSharp.torch.nn.functional.conv2d(x, w, strides: stride, padding: padding);
            if (y.shape[1] % 32 != 16) return y;
            var keep = TorchSharp.torch.ones(1, y.shape[1], 1, 1);
            keep.narrow(1, y.shape[1] - 16, 16).zero_();
            return y.mul(keep);
        });
        Assert.False(check.Passed);
        Assert.Equal(
            "the output of a 1×1 convolution (stride 1) from 40 to 112 channels on a 2×40×7×7 channels-last input is off by 100 % of its range",
            check.Failure);

        // A convolution whose output is right but whose gradients are not: the input gradient is checked too.
        check = ConvolutionSelfTest.Run((x, w, stride, padding) =>
        {
            var y = TorchSharp.torch.nn.functional.conv2d(x, w, strides: stride, padding: padding);
            using var half = 0.5.ToScalar();
            return y.detach().add(y.mul(half), Scalars.One).sub(y.mul(half).detach());
        });
        Assert.False(check.Passed);
        Assert.StartsWith("the input gradient of a 3×3 convolution (stride 1) from 24 to 40 channels", check.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_batch_one_run_of_the_plain_engine_writes_nothing_about_NNPACK()
    {
        // On CPUs NNPACK cannot initialise on (Zen 5 among them), libtorch logged one line per batch-1 NCHW
        // convolution before the switch was turned off: about sixty for this run.
        var (code, stdout, stderr) = CliRunner.RunToEnd(CliRunner.Process(
            "bench", "--model", "googlenet", "--width", "0.25", "--input-size", "64", "--engine", "torch",
            "--batch-size", "1", "--warmup", "1", "--iterations", "2", "--threads", "1", "--format", "json"));
        Assert.True(code == 0, stderr);
        Assert.Contains("images_per_second", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("NNPACK", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_cli_reports_the_check_and_takes_the_onednn_setting_from_the_environment()
    {
        var auto = CliRunner.TinyBench();
        Assert.True(auto.Code == 0, auto.Err);
        string check = auto.Report.GetProperty("convolution_check").GetString()!;
        Assert.Contains(check, (string[])["passed", "failed"]);
        // oneDNN stays on exactly where the check passed; a failed check is said in one warning line.
        Assert.Equal(check == "passed", auto.Report.GetProperty("onednn").GetBoolean());
        Assert.Equal(check == "failed", auto.Err.Contains("warning: libtorch's oneDNN convolutions compute wrong values", StringComparison.Ordinal));
        // Without oneDNN libtorch has no fast bfloat16 convolution; the same line says so.
        Assert.Equal(check == "failed", auto.Err.Contains("bfloat16 (--precision bfloat16) 5–20× slower than float32", StringComparison.Ordinal));

        var off = CliRunner.TinyBench((InceptCli.OneDnnSwitch, "off"));
        Assert.True(off.Code == 0, off.Err);
        Assert.False(off.Report.GetProperty("onednn").GetBoolean());
        Assert.Equal("not run", off.Report.GetProperty("convolution_check").GetString());

        var wrong = CliRunner.TinyBench((InceptCli.OneDnnSwitch, "sometimes"));
        Assert.Equal(InceptCli.Usage, wrong.Code);
        Assert.Equal($"error: {InceptCli.OneDnnSwitch}=sometimes is not a setting: use auto, on or off.", wrong.Err.Trim());
    }
}
