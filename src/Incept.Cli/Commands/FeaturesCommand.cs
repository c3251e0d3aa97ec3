using System.CommandLine;
using System.Text.Json;
using Incept.Data;
using Incept.Inference;
using Incept.Weights;
using static TorchSharp.torch;

namespace Incept.Cli.Commands;

/// <summary><c>incept features</c>: one layer's output for image files, saved as .npy (feature maps, pooled features, face embeddings).</summary>
internal static class FeaturesCommand
{
    public static Command Create()
    {
        var images = new Argument<string[]>("images") { Description = "Image files or folders of images (searched recursively).", Arity = ArgumentArity.OneOrMore };
        var weightsFile = new Option<string>("--weights") { Description = "Weights to load.", Required = true };
        var layer = new Option<string>("--layer") { Description = "A feature tap (module name, see the error for an unknown one), pooled (pre-logits features) or embedding (inception_resnet_v1's normalised face embedding).", Required = true };
        var output = new Option<string>("--out", "-o") { Description = ".npy file to write the float32 features to, one row per image read.", Required = true };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per batch.", DefaultValueFactory = _ => 16 };
        var format = CommonOptions.Format();
        var weights = new WeightsOptions();
        var command = new Command("features", "Extract a layer's features for images and save them as .npy: N×C×H×W feature maps, N×C pooled features or N×512 face embeddings.")
        {
            images, weightsFile, layer, output, batchSize, format,
        };
        weights.AddTo(command);
        command.SetAction(parse =>
        {
            int size = parse.GetValue(batchSize);
            if (size < 1) throw new InceptException($"--batch-size must be at least 1; got {size}.");
            var stdout = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var options = weights.Read(parse);
            var file = parse.GetValue(weightsFile)!;
            var outFile = parse.GetValue(output)!;
            using var loaded = CheckpointLoader.Load(file, options);
            var extractor = new FeatureExtractor(loaded.Model, parse.GetValue(layer)!, options.Device);
            var files = ImageFiles.Expand(parse.GetValue(images)!);
            var preprocessor = ImageInputs.Preprocessor(loaded, file, error);
            var rows = new List<Tensor>();
            var read = new List<string>();
            var failures = new List<ImageFailure>();
            try
            {
                BatchProgress.Run(error, "Extracting", files.Count, done =>
                {
                    for (int start = 0; start < files.Count; start += size)
                    {
                        var paths = files.Skip(start).Take(size).ToList();
                        using var batch = preprocessor.LoadBatch(paths);
                        failures.AddRange(batch.Failures);
                        if (batch.Images is not null)
                        {
                            rows.Add(extractor.Extract(batch.Images));
                            read.AddRange(batch.Paths);
                        }
                        done(paths.Count);
                    }
                });

                if (rows.Count == 0)
                {
                    ImageInputs.ReportFailures(error, failures, files.Count);
                    throw new InceptException($"None of the {files.Count} images could be read, so '{outFile}' was not written.");
                }

                using var features = cat(rows, 0);
                Npy.Write(outFile, features);
                if (parse.GetValue(format) == "json")
                {
                    stdout.WriteLine(JsonSerializer.Serialize(new
                    {
                        model = loaded.Spec.Name, layer = extractor.Layer, @out = outFile, shape = features.shape, images = read,
                        failed = failures.Select(f => new { image = f.Path, error = f.Message }),
                    }, CommonOptions.Json));
                }
                else
                {
                    stdout.WriteLine($"Wrote {outFile}: {extractor.Layer} of {loaded.Spec.Name}, [{string.Join(", ", features.shape)}] for {read.Count} images.");
                }
            }
            finally
            {
                foreach (var t in rows) t.Dispose();
            }

            return ImageInputs.ReportFailures(error, failures, files.Count);
        });
        return command;
    }
}
