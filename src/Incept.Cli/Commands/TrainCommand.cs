using System.CommandLine;
using System.Text.Json;
using Incept.Data;
using Incept.Training;
using Spectre.Console;

namespace Incept.Cli.Commands;

/// <summary><c>incept train</c>: train a model on Fashion-MNIST (default) or a folder, with a paper's recipe.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Model to train (see 'incept models'; default googlenet). With --from: names the architecture of a file that does not say." };
        var data = new Option<string>("--data") { Description = "fashion-mnist, or a folder of IDX files, CIFAR-10 batches, or train/ and test/ image folders.", DefaultValueFactory = _ => DataSources.FashionMnistName };
        var recipe = new Option<string>("--recipe") { Description = $"Recipe preset ({string.Join(", ", Recipe.Names)}) or a JSON file.", DefaultValueFactory = _ => "fast" };
        var set = new Option<string[]>("--set") { Description = "Override a recipe field, as field=value (repeatable).", AllowMultipleArgumentsPerToken = false };
        var epochs = new Option<int?>("--epochs") { Description = "Epochs (default: the recipe's)." };
        var batchSize = new Option<int?>("--batch-size") { Description = "Batch size (default: the recipe's)." };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default: the recipe's, scaled to the batch size)." };
        var width = new Option<double?>("--width") { Description = "Width multiplier 0.25–1 (default: 0.25 for images of 64 px or less, else 1)." };
        var inputSize = new Option<int?>("--input-size") { Description = "Input side in pixels (default: the data's for small images, else the model's)." };
        var smallInput = new Option<bool?>("--small-input") { Description = "Use the small-image stem (default: for inputs of 64 px or less)." };
        var noAux = new Option<bool>("--no-aux") { Description = "Train without the auxiliary heads." };
        var valSplit = new Option<double>("--val-split") { Description = "Fraction of the training set held out to pick the best epoch.", DefaultValueFactory = _ => 0.05 };
        var outDir = new Option<string?>("--out") { Description = "Run folder (default: runs/<model>-<data>)." };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its last checkpoint." };
        var seed = new Option<int>("--seed") { Description = "Seed of every random choice.", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "cpu or cuda.", DefaultValueFactory = _ => "cpu" };
        device.AcceptOnlyFromAmong("cpu", "cuda");
        var memoryFormat = new Option<string>("--memory-format")
        {
            Description = "Layout of activations and weights while training: channels-last (faster on the CPU) or contiguous.",
            DefaultValueFactory = _ => "channels-last",
        };
        memoryFormat.AcceptOnlyFromAmong("channels-last", "contiguous");
        var noWinograd = new Option<bool>("--no-winograd") { Description = "Leave the larger 3×3, 5×5, 1×7 and 7×1 convolutions to libtorch instead of computing them by Winograd's method (which a channels-last training step uses on CPUs with AVX-512 or AVX2 where libtorch convolves without oneDNN; see docs/training.md)." };
        var noMemoryPlan = new Option<bool>("--no-memory-plan") { Description = "Leave every tensor of a CPU training step to the allocator instead of serving the large ones from one buffer laid out after the first step (see docs/training.md), to compare the two." };
        // The opt-in switch of earlier versions, now the default: still accepted.
        var winograd = new Option<bool>("--winograd") { Hidden = true };
        var precision = CommonOptions.Precision("float32, or bfloat16: convolutions and linear layers computed in bfloat16 with float32 master weights (faster on CPUs with AVX-512 BF16 or AMX; evaluation and saved weights stay float32).");
        var workers = new Option<int>("--workers") { Description = "Threads preparing batches.", DefaultValueFactory = _ => 2 };
        var from = new Option<string?>("--from") { Description = "Fine-tune: start from these weights (Incept, torchvision, timm, facenet or Cadene file) with a new classifier for the data's classes." };
        var fromKeys = new Option<string>("--from-keys") { Description = "Key scheme of the --from file: auto, torchvision, timm, facenet, cadene.", DefaultValueFactory = _ => "auto" };
        fromKeys.AcceptOnlyFromAmong("auto", "torchvision", "timm", "facenet", "cadene");
        var freeze = new Option<bool>("--freeze-backbone") { Description = "With --from: train only the new classifier; the backbone's weights and BatchNorm statistics stay as loaded." };
        var unfreezeAfter = new Option<int?>("--unfreeze-after") { Description = "With --freeze-backbone: train the whole network after this many epochs." };
        var tta = CommonOptions.Tta();
        var finalTestOnly = new Option<bool>("--final-test-only") { Description = "Evaluate the test split once, on the weights the run keeps, instead of after every epoch (saves a test pass per epoch; without a validation split the latest epoch is kept)." };
        var format = CommonOptions.Format();
        var command = new Command("train", "Train a model; writes checkpoints, metrics.jsonl, TensorBoard events, plots and model.safetensors into the run folder.")
        {
            model, data, recipe, set, epochs, batchSize, lr, width, inputSize, smallInput, noAux, valSplit, outDir, resume, seed, device, memoryFormat, noWinograd, noMemoryPlan, winograd, precision, workers,
            tta, finalTestOnly, from, fromKeys, freeze, unfreezeAfter, format,
        };
        command.SetAction((parse, cancellation) =>
        {
            var output = parse.InvocationConfiguration.Output;
            bool json = parse.GetValue(format) == "json";
            var explicitModel = parse.GetValue(model);
            var modelName = explicitModel ?? "googlenet";
            if (explicitModel is not null) Registry.ModelRegistry.Get(explicitModel);
            var fineTune = ReadFineTune(parse, from, fromKeys, freeze, unfreezeAfter, explicitModel);
            if (fineTune is not null && parse.GetValue(width) is not null)
                throw new InceptException("With --from the width comes from the weights; leave out --width.");
            if (fineTune is not null && !File.Exists(fineTune.Weights) && !Directory.Exists(fineTune.Weights))
                throw new InceptException($"Weights file '{fineTune.Weights}' does not exist. Check the --from path.");
            WeightsOptions.ParseDevice(parse.GetValue(device)!);
            var source = DataSources.Open(parse.GetValue(data)!);
            var chosenRecipe = LoadRecipe(parse.GetValue(recipe)!, parse.GetValue(set) ?? []);
            int nativeOrDefault = parse.GetValue(inputSize) ?? source.ImageSize ?? 224;
            var runName = fineTune is null ? modelName : $"{Path.GetFileNameWithoutExtension(fineTune.Weights)}-finetune";
            var options = new TrainOptions
            {
                FineTune = fineTune, Model = modelName, Recipe = chosenRecipe, Epochs = parse.GetValue(epochs), BatchSize = parse.GetValue(batchSize),
                LearningRate = parse.GetValue(lr), Width = parse.GetValue(width) ?? (nativeOrDefault <= 64 ? 0.25 : 1.0),
                InputSize = parse.GetValue(inputSize), SmallInput = parse.GetValue(smallInput), Aux = parse.GetValue(noAux) ? false : null,
                ValidationFraction = parse.GetValue(valSplit), Seed = parse.GetValue(seed), Resume = parse.GetValue(resume),
                OutDir = parse.GetValue(outDir) ?? Path.Combine("runs", $"{runName}-{Path.GetFileName(source.Name.TrimEnd('/'))}"),
                Device = parse.GetValue(device)!, Workers = parse.GetValue(workers),
                ChannelsLast = parse.GetValue(memoryFormat) == "channels-last",
                Winograd = !parse.GetValue(noWinograd),
                PlanMemory = !parse.GetValue(noMemoryPlan),
                BFloat16 = parse.GetValue(precision) == CommonOptions.BFloat16,
                TestTimeAugmentation = TestTimeAugmentationNames.Parse(parse.GetValue(tta)!),
                TestEachEpoch = !parse.GetValue(finalTestOnly),
            };
            var console = InceptCli.Console(json ? parse.InvocationConfiguration.Error : output);
            var result = TrainingProgressView.Run(console, options, source, cancellation);
            if (json)
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    test_top1 = result.TestTop1, test_top5 = result.TestTop5, epochs = result.Epochs, seconds = Math.Round(result.Seconds, 1),
                    weights = result.Weights, run_dir = result.RunDir, best_epoch = result.BestEpoch, model = result.Model, incomplete = result.Incomplete,
                    fine_tuned_from = fineTune?.Weights,
                    artifacts = result.Artifacts,
                }, CommonOptions.JsonLine));
            }
            else
            {
                console.MarkupLine($"[bold]Test accuracy[/] top-1 {result.TestTop1:P2}, top-5 {result.TestTop5:P2} after {result.Epochs} epochs in {TimeSpan.FromSeconds(result.Seconds):m\\:ss} (best epoch {result.BestEpoch}).");
                console.MarkupLine($"Weights: [link]{Markup.Escape(result.Weights)}[/]");
                console.MarkupLine($"Plots:   {Markup.Escape(string.Join(", ", result.Artifacts.Where(a => a.Key.EndsWith("_plot", StringComparison.Ordinal)).Select(a => a.Value)))}");
                console.MarkupLine($"Logs:    {Markup.Escape(result.Artifacts["metrics"])}, TensorBoard in {Markup.Escape(result.Artifacts["tensorboard"])}");
            }

            return Task.FromResult(0);
        });
        return command;
    }

    private static FineTuneOptions? ReadFineTune(ParseResult parse, Option<string?> from, Option<string> fromKeys, Option<bool> freeze,
        Option<int?> unfreezeAfter, string? model)
    {
        var weights = parse.GetValue(from);
        if (weights is null)
        {
            if (parse.GetValue(freeze) || parse.GetValue(unfreezeAfter) is not null)
                throw new InceptException("--freeze-backbone and --unfreeze-after fine-tune pretrained weights; give them with --from <weights>.");
            return null;
        }

        return new FineTuneOptions
        {
            Weights = weights,
            Load = new Weights.CheckpointOptions { Model = model, From = Enum.Parse<Weights.KeyFormat>(parse.GetValue(fromKeys)!, ignoreCase: true) },
            FreezeBackbone = parse.GetValue(freeze),
            UnfreezeAfter = parse.GetValue(unfreezeAfter),
        };
    }

    private static Recipe LoadRecipe(string name, string[] overrides)
    {
        var recipe = File.Exists(name) || name.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? Recipe.Load(name) : Recipe.Get(name);
        foreach (var o in overrides)
        {
            int eq = o.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new InceptException($"--set takes field=value; got '{o}'.");
            recipe = recipe.WithOverride(o[..eq].Trim(), o[(eq + 1)..].Trim());
        }

        return recipe;
    }
}
