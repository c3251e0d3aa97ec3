using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Incept.Export;
using Incept.Weights;
using Spectre.Console;

namespace Incept.Cli.Commands;

/// <summary><c>incept export</c>: writes weights as an ONNX file that ONNX Runtime (or <c>--engine onnx</c>) runs.</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var weightsFile = new Option<string>("--weights") { Description = "Weights to export.", Required = true };
        var outputFile = new Option<string>("--output", "-o") { Description = "The .onnx file to write.", Required = true };
        var opset = new Option<int>("--opset") { Description = "ONNX opset (7 to 23; ceil-mode pools need 10).", DefaultValueFactory = _ => OnnxExportOptions.DefaultOpset };
        var foldBn = new Option<bool>("--fold-bn") { Description = "Fold every BatchNorm into the convolution before it." };
        var dynamicBatch = new Option<bool>("--dynamic-batch") { Description = "Leave the batch size open (symbolic N) instead of fixing it." };
        var batchSize = new Option<int>("--batch-size") { Description = "The fixed batch size without --dynamic-batch.", DefaultValueFactory = _ => 1 };
        var inputSize = new Option<int?>("--input-size") { Description = "Side of the square input in pixels; default: the weights' preprocessing, else the model's default (28 for the small-input stem)." };
        var format = CommonOptions.Format();
        var weights = new WeightsOptions();
        var command = new Command("export", "Export weights to ONNX (inference mode: no aux heads, no dropout), with the preprocessing in the file's metadata.")
        {
            weightsFile, outputFile, opset, foldBn, dynamicBatch, batchSize, inputSize, format,
        };
        weights.AddTo(command);
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var clock = Stopwatch.StartNew();
            using var loaded = CheckpointLoader.Load(parse.GetValue(weightsFile)!, weights.Read(parse));
            var options = new OnnxExportOptions
            {
                Opset = parse.GetValue(opset),
                FoldBatchNorm = parse.GetValue(foldBn),
                DynamicBatch = parse.GetValue(dynamicBatch),
                BatchSize = parse.GetValue(batchSize),
                InputSize = parse.GetValue(inputSize) ?? loaded.Preprocess?.InputSize
                    ?? (loaded.Model.Config.SmallInput ? Incept.Analysis.ModelSummary.DefaultSmallInputSize : loaded.Spec.InputSize),
                ModelName = loaded.Spec.Name,
                Preprocess = loaded.Preprocess,
                ClassNames = loaded.ClassNames,
                Labels = loaded.Weights?.Labels,
                Weights = loaded.Weights?.Name,
            };
            var result = OnnxExporter.Export(loaded.Model, parse.GetValue(outputFile)!, options);
            double seconds = clock.Elapsed.TotalSeconds;
            string Shape(IReadOnlyList<long> shape) => string.Join("×", shape.Select(d => d < 0 ? "N" : $"{d}"));
            if (parse.GetValue(format) == "json")
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    model = loaded.Spec.Name, path = result.Path, bytes = result.Bytes, opset = result.Opset,
                    fold_bn = options.FoldBatchNorm, dynamic_batch = options.DynamicBatch,
                    input = new { name = OnnxExporter.InputName, shape = result.InputShape },
                    output = new { name = OnnxExporter.OutputName, shape = result.OutputShape },
                    nodes = result.Nodes, parameters = result.Parameters, preprocess = options.Preprocess is not null, seconds,
                }, CommonOptions.Json));
                return 0;
            }

            var console = InceptCli.Console(output);
            console.MarkupLine($"Wrote [bold]{Markup.Escape(result.Path)}[/] ({result.Bytes / 1e6:0.0} MB): {Markup.Escape(loaded.Spec.Name)}, opset {result.Opset}, " +
                $"{OnnxExporter.InputName} {Shape(result.InputShape)} → {OnnxExporter.OutputName} {Shape(result.OutputShape)}, {result.Nodes} nodes" +
                $"{(options.FoldBatchNorm ? ", BatchNorm folded" : "")}, in {seconds:0.0} s.");
            if (options.Preprocess is null)
                console.MarkupLine("The weights record no preprocessing, so neither does the file: whoever runs it must know the mean, std and input size.");
            return 0;
        });
        return command;
    }
}
