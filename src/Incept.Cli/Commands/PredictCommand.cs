using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Incept.Data;
using Incept.Export;
using Incept.Inference;
using Incept.Training;
using Incept.Weights;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Cli.Commands;

/// <summary>
/// <c>incept predict</c>: the most probable classes of image files (or folders of them), prepared as the weights say;
/// or, for scripts, the logits of an already preprocessed N×C×H×W tensor.
/// </summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var images = new Argument<string[]>("images") { Description = "Image files or folders of images (searched recursively).", Arity = ArgumentArity.ZeroOrMore };
        var weightsFile = new Option<string>("--weights") { Description = "Weights to load.", Required = true };
        var top = new Option<int>("--top") { Description = "Classes to show per image.", DefaultValueFactory = _ => 5 };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per batch.", DefaultValueFactory = _ => 16 };
        var engine = new Option<string?>("--engine")
        {
            Description = "What runs the network: onnx (ONNX Runtime on a .onnx file, or on the checkpoint exported on the fly with BatchNorm folded; the default on the CPU), fast (TorchSharp with BatchNorm folded, channels-last) or torch (the model as trained; the default on a GPU).",
        };
        engine.AcceptOnlyFromAmong("fast", "torch", "onnx");
        var precision = CommonOptions.Precision("float32, or bfloat16 (the fast engine in bfloat16: faster on CPUs with AVX-512 BF16 or AMX, logits rounded by about 1 %).");
        var inputTensor = new Option<string?>("--input-tensor") { Description = "Instead of images: a float32 or float64 N×C×H×W .npy file, already preprocessed." };
        var saveLogits = new Option<string?>("--save-logits") { Description = ".npy file to write the float32 N×classes logits to (rows in the order of the images read)." };
        var format = new Option<string>("--format") { Description = "Output format: table, json or csv.", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json", "csv");
        var tta = CommonOptions.Tta();
        var weights = new WeightsOptions();
        var command = new Command("predict", "Classify images with a model and show the most probable classes (or save the logits of a preprocessed tensor).")
        {
            images, weightsFile, top, batchSize, engine, precision, tta, inputTensor, saveLogits, format,
        };
        weights.AddTo(command);
        command.SetAction(parse =>
        {
            var augmentation = TestTimeAugmentationNames.Parse(parse.GetValue(tta)!);
            CheckArguments(parse.GetValue(images) is { Length: > 0 }, parse.GetValue(inputTensor) is not null, parse.GetValue(saveLogits) is not null,
                parse.GetValue(format)!, parse.GetValue(top), parse.GetValue(batchSize), augmentation != TestTimeAugmentation.None);
            var file = parse.GetValue(weightsFile)!;
            var options = weights.Read(parse);
            bool bf16 = parse.GetValue(precision) == CommonOptions.BFloat16;
            var engineName = parse.GetValue(engine) ?? (bf16 ? "fast" : DefaultEngine(file, options.Device, parse.GetValue(inputTensor) is not null));
            if (bf16 && engineName != "fast")
                throw new InceptException($"bfloat16 runs in the fast engine, not {engineName}; use --engine fast with a checkpoint.");
            using var target = PredictionTarget.Open(engineName, file, options, bf16);
            return parse.GetValue(inputTensor) is { } tensorFile
                ? PredictTensor(parse.InvocationConfiguration.Output, target, tensorFile, parse.GetValue(saveLogits)!, parse.GetValue(format)!)
                : PredictImages(parse, target, file, parse.GetValue(images)!, parse.GetValue(top), parse.GetValue(batchSize), parse.GetValue(saveLogits), parse.GetValue(format)!, augmentation);
        });
        return command;
    }

    private static void CheckArguments(bool hasImages, bool hasTensor, bool hasLogitsFile, string format, int top, int batchSize, bool augmented)
    {
        if (hasTensor && augmented) throw new UsageException("--tta applies to images; a preprocessed --input-tensor is run as it is, so leave out --tta.");
        if (hasImages && hasTensor) throw new UsageException("Give either images or --input-tensor, not both.");
        if (!hasImages && !hasTensor) throw new UsageException("Name image files or folders to classify (or give --input-tensor with --save-logits).");
        if (hasTensor && !hasLogitsFile) throw new UsageException("--input-tensor needs --save-logits, the .npy file to write the logits to.");
        if (hasTensor && format == "csv") throw new UsageException("--format csv lists image predictions; use table or json with --input-tensor.");
        if (top < 1) throw new UsageException($"--top must be at least 1; got {top}.");
        if (batchSize < 1) throw new UsageException($"--batch-size must be at least 1; got {batchSize}.");
    }

    /// <summary>
    /// The engine used without --engine: ONNX Runtime for a .onnx file; for images on the CPU ONNX Runtime on the
    /// checkpoint exported on the fly (the fastest engine in docs/benchmarks.md); for a tensor (the scripting path,
    /// where logits are compared with other frameworks) and on a GPU the model exactly as loaded.
    /// </summary>
    private static string DefaultEngine(string file, Device? device, bool tensorInput) =>
        file.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) || (!tensorInput && (device is null || device.type == DeviceType.CPU))
            ? "onnx" : "torch";

    private static int PredictTensor(TextWriter output, PredictionTarget target, string tensorFile, string logitsFile, string format)
    {
        using var input = Npy.Read(tensorFile);
        if (input.dtype is not (ScalarType.Float32 or ScalarType.Float64))
            throw new InceptException($"The input tensor must be float32 or float64; '{tensorFile}' is {input.dtype}.");
        using var x = input.to_type(ScalarType.Float32);
        using var logits = target.Engine.Run(x);
        Npy.Write(logitsFile, logits);
        if (format == "json")
            output.WriteLine(JsonSerializer.Serialize(new { model = target.ModelName, engine = target.Engine.Name, logits = logitsFile, shape = logits.shape }, CommonOptions.Json));
        else
            output.WriteLine($"Wrote {logitsFile}: logits [{string.Join(", ", logits.shape)}] from {target.ModelName}.");
        return 0;
    }

    private static int PredictImages(ParseResult parse, PredictionTarget target, string weightsFile, string[] paths, int top, int batchSize, string? logitsFile, string format,
        TestTimeAugmentation tta)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        if (target.NumClasses == 0)
            throw new InceptException($"'{weightsFile}' holds {target.ModelName} without a classifier, so it predicts no classes; use 'incept features' for its embeddings.");
        var files = ImageFiles.Expand(paths);
        var labels = ClassLabels.Resolve(target.NumClasses, target.ClassNames, target.LabelSet);
        var predictor = new Predictor(target.Engine, target.Preprocessor(weightsFile, error), labels, tta);
        var predictions = new List<ImagePrediction>();
        var failures = new List<ImageFailure>();
        BatchProgress.Run(error, "Predicting", files.Count, done =>
        {
            for (int start = 0; start < files.Count; start += batchSize)
            {
                var batch = files.Skip(start).Take(batchSize).ToList();
                var result = predictor.Predict(batch, top);
                predictions.AddRange(result.Predictions);
                failures.AddRange(result.Failures);
                done(batch.Count);
            }
        });

        if (logitsFile is not null && predictions.Count > 0)
        {
            using var logits = tensor(predictions.SelectMany(p => p.Logits).ToArray(), [predictions.Count, labels.Count], ScalarType.Float32);
            Npy.Write(logitsFile, logits);
        }

        switch (format)
        {
            case "json":
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    model = target.ModelName, engine = target.Engine.Name, tta = tta.Name(), preprocess = predictor.Preprocessor.Spec,
                    predictions = predictions.Select(p => new
                    {
                        image = p.Path,
                        top = p.Top.Select(s => new { index = s.Index, label = s.Label, probability = s.Probability, logit = s.Logit }),
                    }),
                    failed = failures.Select(f => new { image = f.Path, error = f.Message }),
                    logits = predictions.Count > 0 ? logitsFile : null,
                }, CommonOptions.Json));
                break;
            case "csv":
                output.WriteLine("image,rank,index,label,probability,logit");
                foreach (var p in predictions)
                {
                    for (int r = 0; r < p.Top.Count; r++)
                    {
                        var s = p.Top[r];
                        output.WriteLine(string.Join(',', Csv(p.Path), (r + 1).ToString(CultureInfo.InvariantCulture), s.Index.ToString(CultureInfo.InvariantCulture),
                            Csv(s.Label), s.Probability.ToString("R", CultureInfo.InvariantCulture), s.Logit.ToString("R", CultureInfo.InvariantCulture)));
                    }
                }
                break;
            default:
                var console = InceptCli.Console(output);
                var table = new Table().AddColumn("image").AddColumn(new TableColumn("#").RightAligned()).AddColumn("class")
                    .AddColumn(new TableColumn("index").RightAligned()).AddColumn(new TableColumn("probability").RightAligned());
                foreach (var p in predictions)
                {
                    for (int r = 0; r < p.Top.Count; r++)
                    {
                        var s = p.Top[r];
                        table.AddRow(r == 0 ? Markup.Escape(p.Path) : "", $"{r + 1}", Markup.Escape(s.Label), $"{s.Index}", $"{s.Probability:P2}");
                    }
                }
                if (predictions.Count > 0) console.Write(table);
                if (logitsFile is not null && predictions.Count > 0) console.WriteLine($"Logits: {logitsFile}");
                break;
        }

        return ImageInputs.ReportFailures(error, failures, files.Count);
    }

    /// <summary>A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).</summary>
    private static string Csv(string value)
    {
        if (value.IndexOfAny([',', '"', '\n', '\r']) < 0) return value;
        return new StringBuilder("\"").Append(value.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"').ToString();
    }

    /// <summary>What predict runs: an engine with the model's name, classes and preprocessing, from a checkpoint or a .onnx file.</summary>
    private sealed class PredictionTarget : IDisposable
    {
        private readonly LoadedModel? loaded;
        private readonly OnnxModelInfo? onnx;

        private PredictionTarget(IInferenceEngine engine, LoadedModel? loaded, OnnxModelInfo? onnx)
        {
            Engine = engine;
            this.loaded = loaded;
            this.onnx = onnx;
        }

        public IInferenceEngine Engine { get; }

        public string ModelName => loaded?.Spec.Name ?? onnx!.Model ?? Path.GetFileName(onnx!.Path);

        public int NumClasses => loaded?.Model.NumClasses ?? onnx!.Outputs;

        public IReadOnlyList<string>? ClassNames => loaded is not null ? loaded.ClassNames : onnx!.ClassNames;

        public string? LabelSet => loaded is not null ? loaded.Weights?.Labels : onnx!.Labels;

        public static PredictionTarget Open(string engine, string file, CheckpointOptions options, bool bfloat16 = false)
        {
            bool onnxFile = file.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);
            if (engine == "onnx")
            {
                if (options.Device is { } device && device.type != DeviceType.CPU)
                    throw new InceptException("The onnx engine runs on the CPU; predict with --device cpu, or with --engine torch on the GPU.");
                if (onnxFile)
                {
                    var onnxEngine = OnnxEngine.Open(file);
                    return new PredictionTarget(onnxEngine, null, onnxEngine.Info);
                }
            }

            if (onnxFile)
                throw new InceptException($"'{file}' is an ONNX file, which only --engine onnx runs; drop --engine {engine} or give a checkpoint.");
            var model = CheckpointLoader.Load(file, options);
            try
            {
                IInferenceEngine runner = engine switch
                {
                    "fast" when options.Device is null || options.Device.type == DeviceType.CPU => FastTorchEngine.Create(model.Spec, model.Model, new FastTorchOptions { BFloat16 = bfloat16 }, releaseModel: true),
                    "fast" => throw new InceptException("The fast engine runs on the CPU; use --engine torch with --device cuda."),
                    "torch" => new TorchEngine(model.Model, options.Device),
                    // A checkpoint for ONNX Runtime: exported on the fly at the size its images are prepared to.
                    // Exported through a temporary file. The fast and onnx engines free the loaded model's tensors once
                    // they hold their own (its configuration, classes and preprocessing stay readable).
                    "onnx" => OnnxEngine.FromModel(model.Model, new OnnxExportOptions
                    {
                        InputSize = ImageInputs.Preprocessor(model, file, TextWriter.Null).Spec.InputSize, ModelName = model.Spec.Name,
                    }, releaseModel: true),
                    _ => throw new UsageException($"Unknown engine '{engine}'; use fast, torch or onnx."),
                };
                return new PredictionTarget(runner, model, null);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }

        /// <summary>How images are prepared: the checkpoint's or the ONNX file's recorded preprocessing.</summary>
        public ImagePreprocessor Preprocessor(string weightsFile, TextWriter error)
        {
            if (loaded is not null) return ImageInputs.Preprocessor(loaded, weightsFile, error);
            return onnx!.Preprocess is { } spec
                ? new ImagePreprocessor(spec, onnx.InChannels)
                : throw new InceptException($"'{weightsFile}' does not record how to prepare images; export it with 'incept export', which writes the preprocessing into the file.");
        }

        public void Dispose()
        {
            Engine.Dispose();
            loaded?.Dispose();
        }
    }
}
