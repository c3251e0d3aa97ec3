using System.Text.Json;
using Incept.Analysis;
using Incept.Benchmarks;
using Incept.Cli;
using Incept.Tests.Cli;
using Incept.Models;

namespace Incept.Tests.Benchmarks;

public class BenchmarkTests
{
    private const string CpuInfo = """
        processor	: 0
        vendor_id	: GenuineIntel
        model name	: Intel(R) Xeon(R) Platinum 8480C
        cpu MHz		: 2000.000
        flags		: fpu sse avx avx2 fma avx512f avx512_bf16 amx_tile
        
        processor	: 1
        model name	: Intel(R) Xeon(R) Platinum 8480C
        cpu MHz		: 2500.000
        flags		: fpu sse avx avx2 fma avx512f avx512_bf16 amx_tile
        """;

    private static (int Code, string Out, string Err) Cli(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void Cpuinfo_gives_the_model_cores_clock_flags_and_fma_peak()
    {
        var m = MachineInfo.Parse(CpuInfo);
        Assert.Equal("Intel(R) Xeon(R) Platinum 8480C", m.CpuModel);
        Assert.Equal(2, m.Cores);
        Assert.Equal(2.0, m.Ghz, 6);
        Assert.True(m.HasAvx512 && m.HasAvx512Bf16 && m.HasAmx);
        Assert.Equal(16, m.Fp32Lanes);
        Assert.Equal(2 * 2.0 * 2 * 16 * 2, m.PeakGflops, 6);
        Assert.Equal(m.PeakGflops / 2, m.PeakGflopsFor(1), 6);
        Assert.Equal(m.PeakGflops, m.PeakGflopsFor(8), 6);
    }

    [Fact]
    public void Without_avx512_the_peak_uses_eight_avx2_lanes()
    {
        var m = MachineInfo.Parse("processor : 0\nmodel name : AMD EPYC\ncpu MHz : 2600.0\nflags : fpu avx avx2 fma\n", cores: 4);
        Assert.Equal(4, m.Cores);
        Assert.Equal("avx2", m.VectorIsa);
        Assert.Equal(4 * 2.6 * 2 * 8 * 2, m.PeakGflops, 6);
    }

    [Fact]
    public void Proc_status_lines_with_tabs_read_as_mebibytes()
    {
        Assert.Equal(2.0, ProcessMemory.ParseKb("Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n", "VmHWM:"));
        Assert.Null(ProcessMemory.ParseKb("Name:\tx\n", "VmHWM:"));
        Assert.True(ProcessMemory.PeakRssMb() > 0);
        Assert.Equal(1.5, ProcessMemory.ParseKb("VmHWM:\t 9216 kB\nRssAnon:\t 7680 kB\nRssFile:\t 1536 kB\n", "RssFile:"));
        // This process maps libtorch: some of its resident memory is library pages, and less than all of its peak.
        double files = ProcessMemory.FileRssMb()!.Value;
        Assert.True(files >= 1 && files < ProcessMemory.PeakRssMb()!.Value, $"{files} MiB of file pages");
    }

    [Fact]
    public void An_inference_run_reports_times_rate_memory_and_flops_from_the_summary_macs()
    {
        var r = Benchmark.Run(new BenchmarkOptions
        {
            Model = "googlenet", Width = 0.25, SmallInput = true, NumClasses = 10, BatchSize = 2, Warmup = 1, Iterations = 3,
        });
        Assert.Equal("fast", r.Engine);
        Assert.Equal(28, r.InputSize);
        Assert.Equal(ModelSummary.Create("googlenet", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 }).Macs, r.MacsPerImage);
        Assert.True(r.MsPerBatchMin <= r.MsPerBatchMedian && r.MsPerBatchMedian <= r.MsPerBatchMax);
        Assert.Equal(2 / (r.MsPerBatchMedian / 1000), r.ImagesPerSecond, 6);
        Assert.Equal(2.0 * r.MacsPerImage * 2 / (r.MsPerBatchMedian / 1000) / 1e9, r.Gflops, 6);
        Assert.True(r.PeakRssMb > 0);
        Assert.InRange(r.FileRssMb!.Value, 1, r.PeakRssMb!.Value);
    }

    [Fact]
    public void A_training_run_counts_the_aux_heads_and_three_passes()
    {
        var options = new BenchmarkOptions
        {
            Model = "googlenet", Mode = BenchmarkMode.Train, Width = 0.25, SmallInput = true, NumClasses = 10, BatchSize = 2,
            Aux = true, ChannelsLast = true, Warmup = 0, Iterations = 2,
        };
        var r = Benchmark.Run(options);
        Assert.True(r.Aux);
        Assert.Equal("torch-channels-last", r.Engine);
        long macs = ModelSummary.Create("googlenet", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10, AuxLogits = true }).Macs;
        Assert.Equal(macs, r.MacsPerImage);
        Assert.Equal(3 * 2.0 * macs * 2 / (r.MsPerBatchMedian / 1000) / 1e9, r.Gflops, 6);
    }

    [Fact]
    public void Bench_json_has_the_fields_scripts_read()
    {
        var (code, output, error) = Cli("bench", "--model", "inception_v3", "--width", "0.25", "--input-size", "75", "--engine", "torch",
            "--warmup", "0", "--iterations", "1", "--format", "json");
        Assert.True(code == 0, error);
        var root = JsonDocument.Parse(output).RootElement;
        Assert.True(root.GetProperty("images_per_second").GetDouble() > 0);
        Assert.True(root.GetProperty("ms_per_batch_median").GetDouble() > 0);
        Assert.True(root.GetProperty("peak_rss_mb").GetDouble() > 0);
        Assert.InRange(root.GetProperty("rss_file_mb").GetDouble(), 1, root.GetProperty("peak_rss_mb").GetDouble());
        Assert.Equal("torch", root.GetProperty("engine").GetString());
        Assert.True(root.GetProperty("peak_gflops").GetDouble() > 0);
        // The matrix-product rate is only measured when asked for.
        Assert.Equal(JsonValueKind.Null, root.GetProperty("gemm_gflops").ValueKind);
        Assert.Equal(JsonValueKind.Null, root.GetProperty("gemm_fraction").ValueKind);
    }

    [Fact]
    public void Measure_peak_reports_the_matrix_product_rate_and_the_models_share_of_it()
    {
        var (code, output, error) = Cli("bench", "--model", "googlenet", "--width", "0.25", "--small-input", "--batch-size", "2",
            "--warmup", "0", "--iterations", "2", "--measure-peak", "--format", "json");
        Assert.True(code == 0, error);
        var root = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;
        double gemm = root.GetProperty("gemm_gflops").GetDouble();
        double gflops = root.GetProperty("gflops").GetDouble();
        Assert.True(gemm > 0, $"gemm_gflops {gemm}");
        // The three numbers are rounded separately in the JSON, so the share matches their quotient to rounding only.
        double fraction = root.GetProperty("gemm_fraction").GetDouble();
        Assert.True(Math.Abs(gflops / gemm - fraction) < 1e-3, $"gemm_fraction {fraction} against {gflops} / {gemm}");
    }

    [Fact]
    public void No_winograd_runs_the_fast_engine_with_libtorchs_convolutions_and_names_it()
    {
        var (code, output, error) = Cli("bench", "--model", "googlenet", "--width", "0.5", "--small-input", "--batch-size", "2",
            "--warmup", "0", "--iterations", "1", "--no-winograd", "--format", "json");
        Assert.True(code == 0, error);
        var root = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal("fast-no-winograd", root.GetProperty("engine").GetString());
        Assert.True(root.GetProperty("images_per_second").GetDouble() > 0);
    }

    [Fact]
    public void The_matrix_product_rate_counts_two_flops_per_multiply_add()
    {
        // A product of 256×256 matrices is 2·256³ FLOPs; the rate is that over the fastest product's seconds, so it
        // lies between the FLOPs over a generous upper bound of the time and something no CPU core reaches.
        double rate = Benchmark.MatrixProductGflops(256, 3);
        Assert.InRange(rate, 2.0 * 256 * 256 * 256 / 1.0 / 1e9, 1e5);
        Assert.Throws<ArgumentOutOfRangeException>(() => Benchmark.MatrixProductGflops(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Benchmark.MatrixProductGflops(16, 0));
    }

    [Fact]
    public void The_onnx_engine_times_an_exported_file_with_the_architecture_read_from_its_metadata()
    {
        using var temp = new Incept.Tests.Data.TempFolder();
        var weights = temp.File("tiny.safetensors");
        using (var model = Incept.Registry.ModelFactory.Create(Incept.Registry.ModelRegistry.Get("googlenet"), new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10, InChannels = 1 }))
            Incept.Weights.CheckpointLoader.Save(weights, model, Incept.Registry.ModelRegistry.Get("googlenet"));
        var onnx = temp.File("tiny.onnx");
        var (code, _, error) = Cli("export", "--weights", weights, "-o", onnx, "--batch-size", "3");
        Assert.True(code == 0, error);

        (code, var output, error) = Cli("bench", "--engine", "onnx", "--weights", onnx, "--warmup", "1", "--iterations", "2", "--format", "json");
        Assert.True(code == 0, error);
        var root = JsonDocument.Parse(output).RootElement;
        Assert.Equal("onnx", root.GetProperty("engine").GetString());
        Assert.Equal("googlenet", root.GetProperty("model").GetString());
        Assert.Equal(3, root.GetProperty("batch_size").GetInt32());
        Assert.Equal(28, root.GetProperty("input_size").GetInt32());
        Assert.True(root.GetProperty("images_per_second").GetDouble() > 0);
        long macs = ModelSummary.Create("googlenet", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10, InChannels = 1 }, 28).Macs;
        Assert.Equal(macs, root.GetProperty("macs_per_image").GetInt64());
    }

    [Fact]
    public void The_onnx_engine_without_a_file_times_the_model_exported_in_memory()
    {
        var (code, output, error) = Cli("bench", "--model", "googlenet", "--width", "0.25", "--small-input", "--input-size", "32", "--engine", "onnx",
            "--batch-size", "2", "--warmup", "1", "--iterations", "2", "--format", "json");
        Assert.True(code == 0, error);
        var root = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal("onnx", root.GetProperty("engine").GetString());
        Assert.Equal(2, root.GetProperty("batch_size").GetInt32());
        Assert.True(root.GetProperty("images_per_second").GetDouble() > 0);
    }

    [Fact]
    public void Bad_settings_are_one_sentence()
    {
        var (code, _, error) = Cli("bench", "--model", "googlenet", "--engine", "onnx", "--weights", "missing.onnx");
        Assert.Equal(InceptCli.BadInput, code);
        Assert.Contains("'missing.onnx' does not exist", error, StringComparison.Ordinal);
        (code, _, error) = Cli("bench", "--model", "googlenet", "--iterations", "0");
        Assert.Equal(InceptCli.BadInput, code);
        Assert.Contains("timed iteration", error, StringComparison.Ordinal);
        (code, _, error) = Cli("bench", "--model", "inception_v4", "--mode", "train", "--batch-size", "2", "--aux");
        Assert.Equal(InceptCli.BadInput, code);
        Assert.Contains("no auxiliary heads", error, StringComparison.Ordinal);
        (code, _, error) = Cli("bench", "--model", "googlenet", "--warmup-seconds", "-1");
        Assert.Equal(InceptCli.BadInput, code);
        Assert.Contains("warm-up time", error, StringComparison.Ordinal);
        (code, _, _) = Cli("bench", "--model", "nonet");
        Assert.Equal(InceptCli.Usage, code);
    }

    [Fact]
    public void A_warm_up_time_runs_more_untimed_iterations_than_asked_and_reports_them()
    {
        var options = new BenchmarkOptions
        {
            Model = "googlenet", Width = 0.25, SmallInput = true, NumClasses = 10, BatchSize = 1, Warmup = 1, Iterations = 2,
        };
        Assert.Equal(1, Benchmark.Run(options).Warmup);
        // A step of this 28-pixel quarter-width model takes milliseconds, so half a second holds many of them.
        var r = Benchmark.Run(options with { WarmupSeconds = 0.5 });
        Assert.True(r.Warmup > 5, $"only {r.Warmup} warm-up iterations in half a second");
        Assert.Equal(2, r.Iterations);
    }
}
