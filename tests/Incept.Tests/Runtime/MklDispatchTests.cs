using Incept.Cli;
using Incept.Runtime;
using Incept.Tests.Cli;
using TorchSharp;

namespace Incept.Tests.Runtime;

public class MklDispatchTests
{
    [Fact]
    public void The_matrix_products_in_use_pass_the_check()
    {
        TorchRuntime.EnsureAvailable();
        var check = MatrixProductSelfTest.Run();
        Assert.True(check.Passed, $"{check.Failure} (MKL: {TorchRuntime.Mkl}, code path {MklDispatch.CodePath})");
        Assert.Equal(4, check.Cases);
    }

    [Fact]
    public void The_check_names_a_wrong_last_column_and_a_wrong_transposed_product()
    {
        TorchRuntime.EnsureAvailable();
        var check = MatrixProductSelfTest.Run((a, b, bias) =>
        {
            var p = bias is null ? a.mm(b) : torch.addmm(bias, a, b, 1, 1);
            // A kernel that forgets the tail column of a block.
            p.narrow(1, p.shape[1] - 1, 1).zero_();
            return p;
        });
        Assert.False(check.Passed);
        Assert.StartsWith("the float32 matrix product 67×129 by 129×45 is off by", check.Failure, StringComparison.Ordinal);

        // Right for plain operands, wrong where the left side is a transposed view.
        using var factor = 1.01.ToScalar();
        check = MatrixProductSelfTest.Run((a, b, bias) => a.is_contiguous() ? a.mm(b) : a.contiguous().mm(b).mul_(factor));
        Assert.False(check.Passed);
        Assert.StartsWith("the float32 matrix product 67×129 by 129×45 with the left side transposed is off by 1 %", check.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void The_start_up_outcome_matches_the_cpu()
    {
        TorchRuntime.EnsureAvailable();
        if (!MklDispatch.CpuWouldBenefit)
        {
            Assert.Equal(MklOutcome.NotNeeded, TorchRuntime.Mkl);
            return;
        }

        // A non-Intel CPU with AVX-512: switched, unless this MKL is not one Incept can switch.
        Assert.Contains(TorchRuntime.Mkl, (MklOutcome[])[MklOutcome.Switched, MklOutcome.Unavailable]);
        if (TorchRuntime.Mkl == MklOutcome.Switched) Assert.True(MklDispatch.CodePath > 0);
    }

    [SkippableFact]
    public void A_failed_check_puts_mkl_back_on_its_own_path_and_a_passed_one_keeps_the_switch()
    {
        TorchRuntime.EnsureAvailable();
        Skip.IfNot(TorchRuntime.Mkl == MklOutcome.Switched, "MKL was not switched on this machine");
        int switched = MklDispatch.CodePath!.Value;
        try
        {
            MklDispatch.Undecide();
            var failing = new MatrixProductCheckResult(false, "planted", 4);
            Assert.Equal(MklOutcome.FailedCheck, MklDispatch.Apply(MklPolicy.Auto, () => failing));
            int own = MklDispatch.CodePath!.Value;
            Assert.True(own < switched, $"MKL's own path {own} should be below the AVX-512 one, {switched}");
            Assert.True(MatrixProductSelfTest.Run().Passed);

            // Once MKL has chosen, nothing is switched behind its back.
            Assert.Equal(MklOutcome.AlreadyChosen, MklDispatch.Apply(MklPolicy.Auto, MatrixProductSelfTest.Run));
            Assert.Equal(MklOutcome.NotRun, MklDispatch.Apply(MklPolicy.Off, MatrixProductSelfTest.Run));
        }
        finally
        {
            MklDispatch.Undecide();
            Assert.Equal(MklOutcome.Switched, MklDispatch.Apply(MklPolicy.Auto, MatrixProductSelfTest.Run));
        }

        Assert.Equal(switched, MklDispatch.CodePath);
    }

    [Fact]
    public void The_cli_reports_the_mkl_path_and_takes_its_setting_from_the_environment()
    {
        var auto = CliRunner.TinyBench();
        Assert.True(auto.Code == 0, auto.Err);
        string expected = MklDispatch.CpuWouldBenefit ? "switched on" : "not needed";
        Assert.Equal(expected, auto.Report.GetProperty("mkl_avx512").GetString());

        var off = CliRunner.TinyBench((InceptCli.MklSwitch, "off"));
        Assert.True(off.Code == 0, off.Err);
        Assert.Equal("not run", off.Report.GetProperty("mkl_avx512").GetString());
        if (MklDispatch.CpuWouldBenefit)
            Assert.True(off.Report.GetProperty("mkl_code_path").GetInt32() < MklDispatch.CodePath);

        var wrong = CliRunner.TinyBench((InceptCli.MklSwitch, "fast"));
        Assert.Equal(InceptCli.Usage, wrong.Code);
        Assert.Equal($"error: {InceptCli.MklSwitch}=fast is not a setting: use auto or off.", wrong.Err.Trim());
    }
}
