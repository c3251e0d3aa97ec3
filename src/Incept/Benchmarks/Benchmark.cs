using System.Diagnostics;
using Incept.Analysis;
using Incept.Inference;
using Incept.Layers;
using Incept.Models;
using Incept.Registry;
using Incept.Runtime;
using Incept.Training;
using Incept.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Benchmarks;

/// <summary>What a benchmark times.</summary>
public enum BenchmarkMode
{
    /// <summary>Inference: one engine call on a batch.</summary>
    Infer,

    /// <summary>One training step: forward in training mode (with the aux heads if built), loss, backward, SGD step.</summary>
    Train,
}

/// <summary>The engine an inference benchmark runs.</summary>
public enum BenchmarkEngine
{
    /// <summary><see cref="FastTorchEngine"/>: BatchNorm folded, channels-last, inference mode.</summary>
    Fast,

    /// <summary>The model itself in evaluation mode under <c>no_grad</c>.</summary>
    Torch,

    /// <summary>An exported ONNX file run by ONNX Runtime.</summary>
    Onnx,
}

/// <summary>Settings of one benchmark run.</summary>
public sealed record BenchmarkOptions
{
    /// <summary>Registered model name; optional with <see cref="Weights"/> when the file names its model.</summary>
    public string? Model { get; init; }

    /// <summary>What to time.</summary>
    public BenchmarkMode Mode { get; init; } = BenchmarkMode.Infer;

    /// <summary>The inference engine (training always runs the TorchSharp model).</summary>
    public BenchmarkEngine Engine { get; init; } = BenchmarkEngine.Fast;

    /// <summary>Images per batch.</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>Square input side in pixels (default: the model's, or 28 with <see cref="SmallInput"/>).</summary>
    public int? InputSize { get; init; }

    /// <summary>libtorch intra-op threads (default: libtorch's, one per core).</summary>
    public int? Threads { get; init; }

    /// <summary>Width multiplier of the model (<see cref="ModelConfig.Width"/>).</summary>
    public double Width { get; init; } = 1.0;

    /// <summary>Build the small-input stem (<see cref="ModelConfig.SmallInput"/>).</summary>
    public bool SmallInput { get; init; }

    /// <summary>Build and train the auxiliary heads (training only; they never run at inference).</summary>
    public bool Aux { get; init; }

    /// <summary>Classes of the classifier.</summary>
    public int NumClasses { get; init; } = 1000;

    /// <summary>Input channels.</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>
    /// Train in the channels-last layout (conv weights and input with N×H×W×C strides). Inference engines choose
    /// their own layout.
    /// </summary>
    public bool ChannelsLast { get; init; }

    /// <summary>
    /// Compute in bfloat16: the fast engine in bfloat16 (<see cref="FastTorchOptions.BFloat16"/>) for inference,
    /// mixed precision with float32 master weights (<see cref="BFloat16Compute"/>) for training.
    /// </summary>
    public bool BFloat16 { get; init; }

    /// <summary>
    /// The fast engine computes 3×3, 5×5, 1×7 and 7×1 convolutions by Winograd's method where it can
    /// (<see cref="FastTorchOptions.Winograd"/>), and so does a training step on the larger grids
    /// (<see cref="Layers.WinogradTraining"/>); false leaves them to libtorch.
    /// </summary>
    public bool Winograd { get; init; } = true;

    /// <summary>
    /// Training steps serve their large tensors from one buffer laid out after the first step
    /// (<see cref="Runtime.StepMemory"/>); false leaves every allocation to the allocator, to compare the two.
    /// </summary>
    public bool PlanMemory { get; init; } = true;

    /// <summary>
    /// The fast engine computes the convolutions Winograd's method does not take as Incept's panel product where it can
    /// (<see cref="FastTorchOptions.Panels"/>); false leaves them to libtorch.
    /// </summary>
    public bool Panels { get; init; } = true;

    /// <summary>Untimed iterations first.</summary>
    public int Warmup { get; init; } = 3;

    /// <summary>
    /// The warm-up also lasts at least this many seconds (more iterations than <see cref="Warmup"/> where needed), so
    /// that the process's first second (the runtime compiling and the allocator growing) stays out of the timing.
    /// </summary>
    public double WarmupSeconds { get; init; }

    /// <summary>Timed iterations.</summary>
    public int Iterations { get; init; } = 10;

    /// <summary>A checkpoint to load (an .onnx file for the ONNX engine); random weights otherwise.</summary>
    public string? Weights { get; init; }

    /// <summary>
    /// After the timing, also measure the float32 matrix-product rate libtorch reaches on these threads
    /// (<see cref="Benchmark.MatrixProductGflops"/>), a practical ceiling for convolutions computed as products.
    /// </summary>
    public bool MeasurePeak { get; init; }

    /// <summary>Throws an <see cref="InceptException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        if (BatchSize < 1) throw new InceptException($"The batch size must be at least 1; got {BatchSize}.");
        if (Mode == BenchmarkMode.Train && BatchSize < 2) throw new InceptException($"Training needs a batch of at least 2 (BatchNorm needs two samples); got {BatchSize}.");
        if (InputSize is < 1) throw new InceptException($"The input size must be at least 1 pixel; got {InputSize}.");
        if (Threads is < 1) throw new InceptException($"The thread count must be at least 1; got {Threads}.");
        if (Warmup < 0) throw new InceptException($"The warm-up iteration count cannot be negative; got {Warmup}.");
        if (!(WarmupSeconds >= 0) || double.IsInfinity(WarmupSeconds)) throw new InceptException($"The warm-up time must be a number of seconds of at least 0; got {WarmupSeconds}.");
        if (Iterations < 1) throw new InceptException($"At least one timed iteration is needed; got {Iterations}.");
        if (Model is null && Weights is null) throw new InceptException("Name a model with --model, or give a checkpoint with --weights.");
        if (Mode == BenchmarkMode.Train && Engine == BenchmarkEngine.Onnx) throw new InceptException("The ONNX engine only runs inference; use --mode infer or --engine torch.");
        if (BFloat16 && Mode == BenchmarkMode.Infer && Engine != BenchmarkEngine.Fast) throw new InceptException("bfloat16 inference runs in the fast engine; use --engine fast, or leave out --precision bfloat16.");
    }
}

/// <summary>The timings and resources of one benchmark run.</summary>
/// <param name="Model">Registered model name.</param>
/// <param name="Mode">What was timed.</param>
/// <param name="Engine">The engine's name (<c>fast</c>, <c>torch</c>, <c>onnx</c>; <c>torch</c> or <c>torch-channels-last</c> in training).</param>
/// <param name="BatchSize">Images per batch.</param>
/// <param name="InputSize">Square input side in pixels.</param>
/// <param name="Width">Width multiplier.</param>
/// <param name="Aux">Whether the auxiliary heads were trained.</param>
/// <param name="Threads">libtorch intra-op threads.</param>
/// <param name="Warmup">Untimed iterations run (at least the requested count; more to fill the warm-up time).</param>
/// <param name="Iterations">Timed iterations.</param>
/// <param name="MsPerBatchMedian">Median milliseconds per batch.</param>
/// <param name="MsPerBatchMin">Fastest batch.</param>
/// <param name="MsPerBatchMax">Slowest batch.</param>
/// <param name="ImagesPerSecond">Batch size over the median batch time.</param>
/// <param name="PeakRssMb">Peak resident memory of the process (VmHWM) in MiB, or null where unknown.</param>
/// <param name="MacsPerImage">Multiply-accumulates of one image's forward pass (conv and linear layers).</param>
/// <param name="Gflops">Achieved GFLOP/s at the median: 2 FLOPs per MAC, three passes' worth for a training step.</param>
/// <param name="PeakGflops">The theoretical float32 peak of the cores the threads can use (<see cref="MachineInfo.PeakGflopsFor"/>).</param>
/// <param name="Machine">The CPU.</param>
public sealed record BenchmarkResult(
    string Model, BenchmarkMode Mode, string Engine, int BatchSize, int InputSize, double Width, bool Aux, int Threads,
    int Warmup, int Iterations, double MsPerBatchMedian, double MsPerBatchMin, double MsPerBatchMax, double ImagesPerSecond,
    double? PeakRssMb, long MacsPerImage, double Gflops, double PeakGflops, MachineInfo Machine)
{
    /// <summary>
    /// Resident pages of mapped files (the libraries) when the timed steps ended, in MiB, or null where unknown: the
    /// part of <see cref="PeakRssMb"/> that depends on the page cache rather than on the work (<see cref="ProcessMemory.FileRssMb"/>).
    /// </summary>
    public double? FileRssMb { get; init; }

    /// <summary>
    /// What the training steps' memory plan did (<see cref="BenchmarkOptions.PlanMemory"/>), read when the timed steps
    /// ended; null for inference, or where the plan was off or could not run.
    /// </summary>
    public StepMemoryStatistics? MemoryPlan { get; init; }

    /// <summary>Achieved GFLOP/s as a fraction of the theoretical peak.</summary>
    public double PeakFraction => PeakGflops > 0 ? Gflops / PeakGflops : double.NaN;

    /// <summary>
    /// The measured float32 matrix-product rate on the same threads (<see cref="BenchmarkOptions.MeasurePeak"/>), or
    /// null where it was not measured.
    /// </summary>
    public double? MatrixProductGflops { get; init; }

    /// <summary>Achieved GFLOP/s as a fraction of <see cref="MatrixProductGflops"/>, or null where it was not measured.</summary>
    public double? MatrixProductFraction => MatrixProductGflops is > 0 and var peak ? Gflops / peak : null;
}

/// <summary>
/// Times a model's inference or training step on random data: warm-up iterations, then timed ones, reporting the
/// median, fastest and slowest batch, images per second, the process's peak memory, and the achieved GFLOP/s as a
/// share of the CPU's multiply-add peak.
/// </summary>
public static class Benchmark
{
    /// <summary>The weight of each auxiliary loss in a training step (torchvision's GoogLeNet recipe: 0.3).</summary>
    public const double AuxLossWeight = 0.3;

    /// <summary>Runs the benchmark described by <paramref name="options"/>.</summary>
    public static BenchmarkResult Run(BenchmarkOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.Threads is { } threads) set_num_threads(threads);
        if (options.Engine == BenchmarkEngine.Onnx && options.Weights is { } file && file.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            return RunOnnx(options);

        using var loaded = Load(options);
        var (model, spec) = (loaded.Model, loaded.Spec);
        int size = options.InputSize ?? (model.Config.SmallInput ? ModelSummary.DefaultSmallInputSize : spec.InputSize);
        if (size < model.MinInputSize)
            throw new InputShapeException($"{spec.Name} needs inputs of at least {model.MinInputSize}×{model.MinInputSize} pixels with these settings; got {size}. Use --input-size {model.MinInputSize} or more.");
        bool train = options.Mode == BenchmarkMode.Train;
        if (train && model.HasAux && size < model.MinAuxInputSize)
            throw new InputShapeException($"{spec.Name}'s auxiliary heads need inputs of at least {model.MinAuxInputSize} pixels; got {size}. Use a larger --input-size or leave out --aux.");
        var summaryConfig = model.Config with { AuxLogits = train && model.HasAux };

        manual_seed(0);
        using var input = randn(options.BatchSize, model.Config.InChannels, size, size);
        Timed times;
        string engineName;
        if (train)
        {
            engineName = (options.ChannelsLast ? "torch-channels-last" : "torch") + (options.BFloat16 ? "-bf16" : "");
            times = TimeTraining(model, input, options);
        }
        else
        {
            // As in `incept predict`, the fast and ONNX engines keep their own copy of the weights and the model goes.
            using var engine = CreateEngine(options.Engine, spec, model, size, new FastTorchOptions { BFloat16 = options.BFloat16, Winograd = options.Winograd, Panels = options.Panels }, releaseModel: true);
            engineName = engine.Name;
            times = Time(() => engine.Run(input).Dispose(), options);
        }

        // Counted once the timing (and its peak memory) is done: the count builds a model of its own.
        long macs = ModelSummary.Create(spec.Name, summaryConfig, size).Macs;
        return Summarise(spec.Name, engineName, options, size, summaryConfig.Width, summaryConfig.AuxLogits, times, macs, train ? 3 : 1);
    }

    /// <summary>The side of the square products <see cref="MatrixProductGflops"/> times by default.</summary>
    public const int MatrixProductSize = 2048;

    /// <summary>
    /// The float32 GFLOP/s of libtorch's matrix product (<c>mm</c>) of two <paramref name="size"/>×<paramref name="size"/>
    /// matrices on the current threads: the fastest of <paramref name="repeats"/> products after one untimed product.
    /// </summary>
    /// <remarks>
    /// The nominal peak (<see cref="MachineInfo.PeakGflops"/>) rests on the clock that <c>/proc/cpuinfo</c> reports, which
    /// on virtual machines is often the base clock while the cores run faster; a large product is what libtorch's
    /// convolutions (im2col and a matrix product) can reach at best, so a network's rate is better read against it.
    /// </remarks>
    public static double MatrixProductGflops(int size = MatrixProductSize, int repeats = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var a = randn(size, size);
        var b = randn(size, size);
        mm(a, b).Dispose();
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            mm(a, b).Dispose();
            best = Math.Min(best, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds);
        }

        return 2.0 * size * size * size / best / 1e9;
    }

    /// <summary>
    /// Opens the inference engine <paramref name="kind"/> over <paramref name="model"/> for inputs of
    /// <paramref name="inputSize"/> pixels; the onnx engine runs the model exported on the fly, the fast engine uses
    /// <paramref name="fast"/> (default settings when null). The model stays the caller's, except that with
    /// <paramref name="releaseModel"/> the fast and onnx engines, which hold their own copies of the weights, dispose it
    /// as soon as they no longer need it (the onnx engine before ONNX Runtime reads its copy).
    /// </summary>
    public static IInferenceEngine CreateEngine(BenchmarkEngine kind, ModelSpec spec, InceptionModel model, int inputSize, FastTorchOptions? fast = null, bool releaseModel = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        switch (kind)
        {
            case BenchmarkEngine.Fast:
                return FastTorchEngine.Create(spec, model, fast, releaseModel);
            case BenchmarkEngine.Torch:
                return new EagerModelEngine(model);
            case BenchmarkEngine.Onnx:
                return OnnxEngine.FromModel(model, new Export.OnnxExportOptions { InputSize = inputSize, ModelName = spec.Name },
                    new OnnxEngineOptions { Threads = get_num_threads() }, releaseModel);
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown engine.");
        }
    }

    /// <summary>Opens an exported ONNX file with ONNX Runtime.</summary>
    private static OnnxEngine OpenOnnx(string? path)
    {
        if (string.IsNullOrEmpty(path))
            throw new InceptException("The onnx engine runs an exported file: give it with --weights model.onnx.");
        return OnnxEngine.Open(path, new OnnxEngineOptions { Threads = get_num_threads() });
    }

    /// <summary>
    /// Times an exported file. The architecture, width, stem and input size come from the file's metadata (what
    /// <c>incept export</c> writes) unless the options name them; they give the multiply-accumulate count.
    /// </summary>
    private static BenchmarkResult RunOnnx(BenchmarkOptions options)
    {
        using var engine = OpenOnnx(options.Weights);
        var info = engine.Info;
        var spec = ModelRegistry.Get(options.Model ?? info.Model
            ?? throw new InceptException($"'{info.Path}' does not name its architecture; give it with --model so that its multiply-accumulates are known."));
        string? Meta(string key) => info.Metadata.TryGetValue(key, out var v) ? v : null;
        double width = Meta(CheckpointLoader.MetadataKeys.Width) is { } w ? double.Parse(w, System.Globalization.CultureInfo.InvariantCulture) : options.Width;
        bool smallInput = Meta(CheckpointLoader.MetadataKeys.SmallInput) is { } si ? bool.Parse(si) : options.SmallInput;
        var config = new ModelConfig { Width = width, SmallInput = smallInput, NumClasses = Math.Max(1, info.Outputs), InChannels = info.InChannels };
        int size = options.InputSize ?? info.Height;
        int batch = info.BatchSize ?? options.BatchSize;
        manual_seed(0);
        using var input = randn(batch, info.InChannels, size, size);
        var times = Time(() => engine.Run(input).Dispose(), options);
        long macs = ModelSummary.Create(spec.Name, config, size).Macs;
        return Summarise(spec.Name, engine.Name, options with { BatchSize = batch }, size, width, false, times, macs, 1);
    }

    private static LoadedModelOrBuilt Load(BenchmarkOptions options)
    {
        bool aux = options.Mode == BenchmarkMode.Train && options.Aux;
        if (options.Weights is { } path)
        {
            var loaded = CheckpointLoader.Load(path, new CheckpointOptions { Model = options.Model });
            if (aux && !loaded.Model.HasAux)
            {
                loaded.Dispose();
                throw new InceptException($"'{path}' holds {loaded.Spec.Name} without auxiliary heads; leave out --aux to train it.");
            }

            return new LoadedModelOrBuilt(loaded.Model, loaded.Spec);
        }

        var spec = ModelRegistry.Get(options.Model!);
        if (aux && !spec.HasAux) throw new InceptException($"{spec.Name} has no auxiliary heads; leave out --aux.");
        var config = new ModelConfig
        {
            Width = options.Width, SmallInput = options.SmallInput, AuxLogits = aux, NumClasses = options.NumClasses, InChannels = options.InChannels,
        };
        manual_seed(0);
        return new LoadedModelOrBuilt(ModelFactory.Create(spec, config), spec);
    }

    private static Timed TimeTraining(InceptionModel model, Tensor input, BenchmarkOptions options)
    {
        if (options.ChannelsLast) MemoryFormat.ToChannelsLast(model);
        WinogradTraining.Use(model, options.Winograd);

        model.train();
        using var optimizer = new Sgd(model.parameters(), 0.01, momentum: 0.9, weightDecay: 1e-4);
        using var targets = randint(model.NumClasses, [input.shape[0]], dtype: ScalarType.Int64);
        var x = options.ChannelsLast ? MemoryFormat.ToChannelsLast(input) : input;
        using var converted = ReferenceEquals(x, input) ? null : x;
        var bf16 = options.BFloat16 ? BFloat16Compute.For(model) : null;
        using var memory = options.PlanMemory ? StepMemory.Start() : null;
        var timed = Time(() =>
        {
            using (StepMemory.Step()) Body();
        }, options);
        return timed with { MemoryPlan = memory is null ? null : StepMemory.Statistics };
        void Body()
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            using (bf16?.Enter())
            {
                var output = bf16?.Forward(model, x) ?? model.call(x);
                var loss = Losses.Total(output, targets, AuxLossWeight);
                loss.backward();
            }

            optimizer.step();
        }
    }

    /// <summary>Step times, how many warm-up steps ran, and the process's peak memory and file pages when the last step ended.</summary>
    private readonly record struct Timed(double[] Times, int Warmups, double? PeakRssMb, double? FileRssMb)
    {
        public StepMemoryStatistics? MemoryPlan { get; init; }
    }

    private static Timed Time(Action step, BenchmarkOptions options)
    {
        int warmups = 0;
        long warmupStart = Stopwatch.GetTimestamp();
        while (warmups < options.Warmup || Stopwatch.GetElapsedTime(warmupStart).TotalSeconds < options.WarmupSeconds)
        {
            step();
            warmups++;
        }

        var times = new double[options.Iterations];
        for (int i = 0; i < times.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            step();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        return new Timed(times, warmups, ProcessMemory.PeakRssMb(), ProcessMemory.FileRssMb());
    }

    private static BenchmarkResult Summarise(string model, string engine, BenchmarkOptions o, int size, double width, bool aux, Timed timed, long macs, int passes)
    {
        var sorted = timed.Times.Order().ToArray();
        double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
        var machine = MachineInfo.Detect();
        double gflops = 2.0 * passes * macs * o.BatchSize / (median / 1000.0) / 1e9;
        int threads = get_num_threads();
        return new BenchmarkResult(model, o.Mode, engine, o.BatchSize, size, width, aux, threads, timed.Warmups, o.Iterations,
            median, sorted[0], sorted[^1], o.BatchSize / (median / 1000.0), timed.PeakRssMb, macs, gflops, machine.PeakGflopsFor(threads), machine)
        {
            // Measured last: the products' matrices stay out of the run's peak memory, read when the timed steps ended.
            MatrixProductGflops = o.MeasurePeak ? MatrixProductGflops() : null,
            FileRssMb = timed.FileRssMb,
            MemoryPlan = timed.MemoryPlan,
        };
    }

    /// <summary>A model and its spec, built here or loaded from a checkpoint; disposing it disposes the model.</summary>
    private sealed record LoadedModelOrBuilt(InceptionModel Model, ModelSpec Spec) : IDisposable
    {
        public void Dispose() => Model.Dispose(); // a no-op when an engine has released the model already
    }
}
