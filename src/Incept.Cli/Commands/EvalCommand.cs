using System.CommandLine;
using System.Text.Json;
using Incept.Data;
using Incept.Training;
using Incept.Training.Reporting;
using Incept.Weights;
using Spectre.Console;

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
        var format = CommonOptions.Format();
        var weights = new WeightsOptions();
        var command = new Command("eval", "Evaluate weights on the test split: top-1, top-5, per-class accuracy, confusion matrix.") { weightsFile, data, batchSize, plot, format };
        weights.AddTo(command);
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var options = weights.Read(parse);
            var source = DataSources.Open(parse.GetValue(data)!);
            using var loaded = CheckpointLoader.Load(parse.GetValue(weightsFile)!, options);
            var classes = source.Test.ClassNames;
            if (loaded.Model.NumClasses != classes.Count)
                throw new InceptException($"The weights classify {loaded.Model.NumClasses} classes but the data has {classes.Count}; evaluate them on matching data, or fine-tune them first.");
            int size = loaded.Preprocess?.InputSize ?? source.ImageSize ?? loaded.Spec.InputSize;
            var preprocess = loaded.Preprocess ?? new PreprocessSpec(size, 1.0, "bilinear", source.Mean, source.Std, false, 1.0);
            var pipeline = preprocess.InputSize <= 64 && preprocess.CropFraction >= 1.0
                ? ImagePipeline.SmallImageEvaluation(preprocess)
                : ImagePipeline.Evaluation(preprocess);
            var loader = new DataLoader(source.Test, pipeline, new DataLoaderOptions { BatchSize = parse.GetValue(batchSize) });
            var (loss, metrics) = Trainer.Evaluate(loaded.Model, loader, classes.Count, options.Device ?? TorchSharp.torch.CPU);
            var plotPath = parse.GetValue(plot);
            if (plotPath is not null) TrainingPlots.ConfusionMatrix(plotPath, metrics.ConfusionMatrix, classes, $"{loaded.Spec.Name} on {source.Name} (top-1 {metrics.Top1:P2})");
            var perClass = metrics.PerClassAccuracy;
            if (parse.GetValue(format) == "json")
            {
                var matrix = metrics.ConfusionMatrix;
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    model = loaded.Spec.Name, data = source.Name, count = metrics.Count, top1 = metrics.Top1, top5 = metrics.Top5, loss,
                    expected_calibration_error = metrics.ExpectedCalibrationError,
                    per_class = classes.Select((c, i) => new { name = c, accuracy = perClass[i] }),
                    confusion_matrix = Enumerable.Range(0, classes.Count).Select(i => Enumerable.Range(0, classes.Count).Select(j => matrix[i, j])),
                    plot = plotPath,
                }, CommonOptions.Json));
                return 0;
            }

            var console = InceptCli.Console(output);
            console.MarkupLine($"[bold]{Markup.Escape(loaded.Spec.Name)}[/] on {Markup.Escape(source.Name)} ({metrics.Count:N0} images): top-1 {metrics.Top1:P2}, top-5 {metrics.Top5:P2}, loss {loss:0.0000}");
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
