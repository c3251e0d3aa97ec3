using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Incept.Benchmarks;
using Incept.Runtime;
using Spectre.Console;

namespace Incept.Cli.Commands;

/// <summary><c>incept bench</c>: images per second, batch times, peak memory and achieved GFLOP/s of a model.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Model to time (see 'incept models').", DefaultValueFactory = _ => null };
        var mode = new Option<string>("--mode") { Description = "infer, or train (forward, loss, backward, SGD step).", DefaultValueFactory = _ => "infer" };
        mode.AcceptOnlyFromAmong("infer", "train");
        var engine = new Option<string>("--engine")
        {
            Description = "Inference engine: fast (BatchNorm folded, channels-last, inference mode), torch (the model as is), onnx (ONNX Runtime: an exported .onnx file given with --weights, else the model exported on the fly).",
            DefaultValueFactory = _ => "fast",
        };
        engine.AcceptOnlyFromAmong("fast", "torch", "onnx");
        var batchSize = new Option<int>("--batch-size") { Description = "Images per batch.", DefaultValueFactory = _ => 1 };
        var inputSize = new Option<int?>("--input-size") { Description = "Square input side in pixels (default: the model's, 28 with --small-input)." };
        var threads = new Option<int?>("--threads") { Description = "libtorch threads (default: one per core)." };
        var width = new Option<double>("--width") { Description = "Width multiplier from 0.25 to 1.", DefaultValueFactory = _ => 1.0 };
        var smallInput = new Option<bool>("--small-input") { Description = "Build the stem for 28–64 pixel images." };
        var aux = new Option<bool>("--aux") { Description = "Train the auxiliary heads too (training only)." };
        var channelsLast = new Option<bool>("--channels-last") { Description = "Train in the channels-last memory layout (training only)." };
        var classes = new Option<int>("--num-classes") { Description = "Classes of the classifier.", DefaultValueFactory = _ => 1000 };
        var inChannels = new Option<int>("--in-channels") { Description = "Input channels.", DefaultValueFactory = _ => 3 };
        var precision = CommonOptions.Precision("float32, or bfloat16 (fast on CPUs with AVX-512 BF16 or AMX): the fast engine in bfloat16 for inference, mixed precision with float32 master weights for training.");
        var warmup = new Option<int>("--warmup") { Description = "Untimed iterations first.", DefaultValueFactory = _ => 3 };
        var warmupSeconds = new Option<double>("--warmup-seconds") { Description = "Keep warming up for at least this many seconds (beyond --warmup iterations where needed).", DefaultValueFactory = _ => 0 };
        var iterations = new Option<int>("--iterations") { Description = "Timed iterations.", DefaultValueFactory = _ => 10 };
        var weights = new Option<string?>("--weights") { Description = "Checkpoint or, with --engine onnx, an exported .onnx file; random weights otherwise." };
        var noPanels = new Option<bool>("--no-panels") { Description = "Leave the convolutions that Winograd's method does not take (1×1, strided, 1×3 and 3×1, stems) to libtorch instead of Incept's panel product (fast engine), to compare the two." };
        var noWinograd = new Option<bool>("--no-winograd") { Description = "Leave the 3×3, 5×5, 1×7 and 7×1 convolutions to libtorch instead of Winograd's method (fast engine and channels-last training steps alike), to compare the two." };
        var noMemoryPlan = new Option<bool>("--no-memory-plan") { Description = "Leave every tensor of a CPU training step to the allocator instead of serving the large ones from one buffer laid out after the first step (see docs/training.md), to compare the two." };
        var measurePeak = new Option<bool>("--measure-peak") { Description = "Also time a 2048×2048 float32 matrix product on the same threads and report the model's GFLOP/s as a share of it." };
        var format = CommonOptions.Format();
        var command = new Command("bench", "Time a model's inference or training step: images/s, ms per batch, peak memory, GFLOP/s.")
        {
            model, mode, engine, batchSize, inputSize, threads, width, smallInput, aux, channelsLast, classes, inChannels, precision, warmup, warmupSeconds, iterations, weights, noWinograd, noMemoryPlan, noPanels, measurePeak, format,
        };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var name = parse.GetValue(model);
            if (name is not null) Registry.ModelRegistry.Get(name);
            TorchRuntime.EnsureAvailable();
            var options = new BenchmarkOptions
            {
                Model = name, Mode = parse.GetValue(mode) == "train" ? BenchmarkMode.Train : BenchmarkMode.Infer,
                Engine = Enum.Parse<BenchmarkEngine>(parse.GetValue(engine)!, ignoreCase: true), BatchSize = parse.GetValue(batchSize),
                InputSize = parse.GetValue(inputSize), Threads = parse.GetValue(threads), Width = parse.GetValue(width),
                SmallInput = parse.GetValue(smallInput), Aux = parse.GetValue(aux), ChannelsLast = parse.GetValue(channelsLast),
                NumClasses = parse.GetValue(classes), InChannels = parse.GetValue(inChannels), Warmup = parse.GetValue(warmup),
                WarmupSeconds = parse.GetValue(warmupSeconds),
                Iterations = parse.GetValue(iterations), Weights = parse.GetValue(weights),
                BFloat16 = parse.GetValue(precision) == CommonOptions.BFloat16, Winograd = !parse.GetValue(noWinograd), PlanMemory = !parse.GetValue(noMemoryPlan), Panels = !parse.GetValue(noPanels), MeasurePeak = parse.GetValue(measurePeak),
            };
            var r = Benchmark.Run(options);
            if (parse.GetValue(format) == "json")
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    model = r.Model, mode = r.Mode.ToString().ToLowerInvariant(), engine = r.Engine, batch_size = r.BatchSize, input_size = r.InputSize,
                    width = r.Width, aux = r.Aux, threads = r.Threads, warmup = r.Warmup, iterations = r.Iterations,
                    images_per_second = Math.Round(r.ImagesPerSecond, 3), ms_per_batch_median = Math.Round(r.MsPerBatchMedian, 3),
                    ms_per_batch_min = Math.Round(r.MsPerBatchMin, 3), ms_per_batch_max = Math.Round(r.MsPerBatchMax, 3),
                    peak_rss_mb = r.PeakRssMb is { } rss ? Math.Round(rss, 1) : (double?)null,
                    rss_file_mb = r.FileRssMb is { } files ? Math.Round(files, 1) : (double?)null, macs_per_image = r.MacsPerImage,
                    memory_plan_mb = r.MemoryPlan is { } buffer ? Math.Round(buffer.ArenaBytes / 1048576.0, 1) : (double?)null,
                    memory_plan_live_mb = r.MemoryPlan is { } bound ? Math.Round(bound.LiveBoundBytes / 1048576.0, 1) : (double?)null,
                    memory_plan_served = r.MemoryPlan?.LastStepServed, memory_plan_blocks = r.MemoryPlan?.PlannedBlocks,
                    gflops = Math.Round(r.Gflops, 2), peak_gflops = Math.Round(r.PeakGflops, 1), peak_fraction = Math.Round(r.PeakFraction, 4),
                    gemm_gflops = r.MatrixProductGflops is { } gemm ? Math.Round(gemm, 1) : (double?)null,
                    gemm_fraction = r.MatrixProductFraction is { } share ? Math.Round(share, 4) : (double?)null,
                    cpu = r.Machine.CpuModel, cores = r.Machine.Cores, ghz = r.Machine.Ghz, vector_isa = r.Machine.VectorIsa,
                    avx512 = r.Machine.HasAvx512, avx512_bf16 = r.Machine.HasAvx512Bf16, malloc = FastMalloc.Describe(FastMalloc.Current), malloc_huge_pages = FastMalloc.Current == MallocKind.HugePages,
                    dynamic_pgo = FastMalloc.DynamicPgo,
                    onednn = TorchRuntime.OneDnnInUse, convolution_check = TorchRuntime.ConvolutionCheck is { } check ? (check.Passed ? "passed" : "failed") : "not run",
                    mkl_avx512 = MklOutcomeName(TorchRuntime.Mkl), mkl_code_path = MklDispatch.CodePath,
                }, CommonOptions.JsonLine));
                return 0;
            }

            var c = CultureInfo.InvariantCulture;
            var table = new Table().Title(string.Create(c, $"{r.Model} {r.Mode.ToString().ToLowerInvariant()}, engine {r.Engine}, batch {r.BatchSize} at {r.InputSize}×{r.InputSize}{(r.Width != 1 ? $", width {r.Width}" : "")}{(r.Aux ? ", aux heads" : "")}, {r.Threads} threads"));
            table.AddColumn("measure");
            table.AddColumn(new TableColumn("value").RightAligned());
            table.AddRow("images/s", r.ImagesPerSecond.ToString("0.00", c));
            table.AddRow("ms per batch (median)", r.MsPerBatchMedian.ToString("0.00", c));
            table.AddRow("ms per batch (min – max)", string.Create(c, $"{r.MsPerBatchMin:0.00} – {r.MsPerBatchMax:0.00}"));
            table.AddRow("peak memory (RSS)", r.PeakRssMb is { } peak ? string.Create(c, $"{peak:0} MiB") : "unknown");
            if (r.FileRssMb is { } fileRss) table.AddRow("of which library files (at the end)", string.Create(c, $"{fileRss:0} MiB"));
            if (r.MemoryPlan is { } plan)
                table.AddRow("step memory plan", string.Create(c, $"{plan.ArenaBytes / 1048576.0:0} MiB, {plan.LastStepServed} of {plan.PlannedBlocks} tensors"));
            table.AddRow("GMACs per image", (r.MacsPerImage / 1e9).ToString("0.000", c));
            table.AddRow("achieved GFLOP/s", r.Gflops.ToString("0.0", c));
            table.AddRow("share of FMA peak", string.Create(c, $"{r.PeakFraction:P1} of {r.PeakGflops:0} GFLOP/s"));
            if (r.MatrixProductGflops is { } product)
                table.AddRow("share of measured matrix product", string.Create(c, $"{r.MatrixProductFraction:P1} of {product:0} GFLOP/s"));
            table.AddRow("C allocator", FastMalloc.Describe(FastMalloc.Current));
            table.AddRow(".NET dynamic PGO", FastMalloc.DynamicPgo ? "on" : "off");
            table.AddRow("libtorch convolutions", TorchRuntime.OneDnnInUse == false ? "without oneDNN" : "oneDNN");
            table.AddRow("MKL AVX-512 path", MklOutcomeName(TorchRuntime.Mkl));
            InceptCli.Console(output).Write(table);
            output.WriteLine(string.Create(c, $"{r.Warmup} warm-up and {r.Iterations} timed iterations on {r.Machine.CpuModel}, {r.Machine.Cores} cores at {r.Machine.Ghz:0.00} GHz, {r.Machine.VectorIsa}. Peak = cores used × GHz × 2 FMA units × {r.Machine.Fp32Lanes} float32 lanes × 2."));
            return 0;
        });
        return command;
    }

    /// <summary>How the bench output names <see cref="MklOutcome"/>.</summary>
    internal static string MklOutcomeName(MklOutcome outcome) => outcome switch
    {
        MklOutcome.Switched => "switched on",
        MklOutcome.NotNeeded => "not needed",
        MklOutcome.AlreadyChosen => "already chosen",
        MklOutcome.Unavailable => "unavailable",
        MklOutcome.FailedCheck => "failed check",
        _ => "not run",
    };
}
