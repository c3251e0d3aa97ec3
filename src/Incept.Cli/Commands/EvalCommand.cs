using System.CommandLine;
using System.Text.Json;
using Incept.Data;
using Incept.Inference;
using Incept.Training;
using Incept.Training.Reporting;
using Incept.Weights;
using Spectre.Console;
using TorchSharp;

namespace Incept.Cli.Commands;

/// <summary><c>incept eval</c>: accuracy, per-class accuracy and confusion matrix of weights on a data set's test split.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var weightsFile = new Option<string>("--weights") { Description = "Weights to evaluate.", Required = true };
        var data = new Option<string>("--data") { Description = "fashion-mnist, or a folder of IDX files, CIFAR-10 batches, or train/ and test/ image folders.", DefaultValueFactory = _ => DataSources.FashionMnistName };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per batch.", DefaultValueFactory = _ => 128 };
        var plot = new Option<string?>("--plot") { Description = "Write the confusion matrix as a PNG to this file." };
        var engineName = new Option<string?>("--engine") { Description = "torch (a checkpoint in TorchSharp), fast (the checkpoint with BatchNorm folded, channels-last, on the CPU) or onnx (an exported .onnx file run by ONNX Runtime); default: onnx for a .onnx file, fast with --precision bfloat16, else torch." };
        engineName.AcceptOnlyFromAmong("torch", "fast", "onnx");
        var precision = CommonOptions.Precision("float32, or bfloat16 (the fast engine in bfloat16, to measure what the rounding costs in accuracy).");
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime threads with --engine onnx (0: one per core).", DefaultValueFactory = _ => 0 };
        var tta = CommonOptions.Tta();
        var format = CommonOptions.Format();
        var weights = new WeightsOptions();
        var command = new Command("eval", "Evaluate weights on the test split: top-1, top-5, per-class accuracy, confusion matrix.") { weightsFile, data, batchSize, plot, engineName, precision, threads, tta, format };
        weights.AddTo(command);
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var options = weights.Read(parse);
            var source = DataSources.Open(parse.GetValue(data)!);
            var classes = source.Test.ClassNames;
            var path = parse.GetValue(weightsFile)!;
            bool bf16 = parse.GetValue(precision) == CommonOptions.BFloat16;
            var chosen = parse.GetValue(engineName) ?? (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? "onnx" : bf16 ? "fast" : "torch");
            bool onnx = chosen == "onnx";
            if (bf16 && chosen != "fast")
                throw new InceptException($"bfloat16 evaluation runs in the fast engine, not {chosen}; use --engine fast with a checkpoint.");
            if (chosen != "torch" && options.Device is { } device && device.type != DeviceType.CPU)
                throw new InceptException($"The {chosen} engine runs on the CPU; evaluate with --device cpu, or with --engine torch on the GPU.");
            using var loaded = onnx ? null : CheckpointLoader.Load(path, options);
            using IInferenceEngine? engine = onnx
                ? OnnxEngine.Open(path, new OnnxEngineOptions { Threads = parse.GetValue(threads) })
                : chosen == "fast" ? FastTorchEngine.Create(loaded!.Spec, loaded.Model, new FastTorchOptions { BFloat16 = bf16 }) : null;
            var onnxInfo = (engine as OnnxEngine)?.Info;
            string modelName = loaded?.Spec.Name ?? onnxInfo!.Model ?? Path.GetFileName(path);
            int modelClasses = loaded?.Model.NumClasses ?? onnxInfo!.NumClasses;
            if (modelClasses != classes.Count)
                throw new InceptException($"The weights classify {modelClasses} classes but the data has {classes.Count}; evaluate them on matching data, or fine-tune them first.");
            var known = loaded is not null ? loaded.Preprocess : onnxInfo!.Preprocess;
            int size = known?.InputSize ?? onnxInfo?.Height ?? source.ImageSize ?? loaded!.Spec.InputSize;
            var preprocess = known ?? new PreprocessSpec(size, 1.0, "bilinear", source.Mean, source.Std, false, 1.0);
            var pipeline = preprocess.InputSize <= 64 && preprocess.CropFraction >= 1.0
                ? ImagePipeline.SmallImageEvaluation(preprocess)
                : ImagePipeline.Evaluation(preprocess);
            var loader = new DataLoader(source.Test, pipeline, new DataLoaderOptions { BatchSize = parse.GetValue(batchSize) });
            var augmentation = TestTimeAugmentationNames.Parse(parse.GetValue(tta)!);
            var (loss, metrics) = engine is not null
                ? Trainer.Evaluate(engine, loader, classes.Count, tta: augmentation)
                : Trainer.Evaluate(loaded!.Model, loader, classes.Count, options.Device ?? TorchSharp.torch.CPU, tta: augmentation);
            var plotPath = parse.GetValue(plot);
            if (plotPath is not null) TrainingPlots.ConfusionMatrix(plotPath, metrics.ConfusionMatrix, classes, $"{modelName} on {source.Name} (top-1 {metrics.Top1:P2})");
            var perClass = metrics.PerClassAccuracy;
            if (parse.GetValue(format) == "json")
            {
                var matrix = metrics.ConfusionMatrix;
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    model = modelName, engine = engine?.Name ?? "torch", data = source.Name, tta = augmentation.Name(), count = metrics.Count, top1 = metrics.Top1, top5 = metrics.Top5, loss,
                    expected_calibration_error = metrics.ExpectedCalibrationError,
                    per_class = classes.Select((c, i) => new { name = c, accuracy = perClass[i] }),
                    confusion_matrix = Enumerable.Range(0, classes.Count).Select(i => Enumerable.Range(0, classes.Count).Select(j => matrix[i, j])),
                    plot = plotPath,
                }, CommonOptions.Json));
                return 0;
            }

            var console = InceptCli.Console(output);
            console.MarkupLine($"[bold]{Markup.Escape(modelName)}[/] on {Markup.Escape(source.Name)} ({metrics.Count:N0} images{(augmentation == TestTimeAugmentation.None ? "" : ", each with its mirror image")}): top-1 {metrics.Top1:P2}, top-5 {metrics.Top5:P2}, loss {loss:0.0000}");
            var table = new Table().AddColumn("class").AddColumn(new TableColumn("accuracy").RightAligned());
            for (int i = 0; i < classes.Count; i++) table.AddRow(Markup.Escape(classes[i]), $"{perClass[i]:P1}");
            console.Write(table);
            var cm = new Table().AddColumn("true \\ predicted");
            for (int j = 0; j < classes.Count; j++) cm.AddColumn(new TableColumn($"{j}").RightAligned());
            var m = metrics.ConfusionMatrix;
            for (int i = 0; i < classes.Count; i++)
                cm.AddRow([$"{i} {Markup.Escape(classes[i])}", .. Enumerable.Range(0, classes.Count).Select(j => $"{m[i, j]}")]);
            console.Write(cm);
            if (plotPath is not null) console.MarkupLine($"Confusion matrix plot: {Markup.Escape(plotPath)}");
            return 0;
        });
        return command;
    }
}
