using System.CommandLine;
using System.Text.Json;
using Incept.Analysis;
using Incept.Data;
using Incept.Inference;
using Incept.Weights;
using static TorchSharp.torch;

namespace Incept.Cli.Commands;

/// <summary><c>incept cam</c>: Grad-CAM of one image, overlaid on the image as a heat map.</summary>
internal static class CamCommand
{
    private static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];
    private static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];

    public static Command Create()
    {
        var weightsFile = new Option<string>("--weights") { Description = "Weights to explain.", Required = true };
        var image = new Argument<string>("image") { Description = "Image file (JPEG, PNG, BMP, WebP)." };
        var output = new Option<string>("--output", "-o") { Description = "PNG to write: the centre-cropped image with the heat map over it.", Required = true };
        var classIndex = new Option<int?>("--class") { Description = "Class to explain (default: the top-1 class)." };
        var layer = new Option<string?>("--layer") { Description = "Module whose output is explained (default: the last feature map); the feature taps are listed by 'incept summary'." };
        var alpha = new Option<double>("--alpha") { Description = "Opacity of the heat map, 0–1.", DefaultValueFactory = _ => 0.5 };
        var format = CommonOptions.Format();
        var weights = new WeightsOptions();
        var command = new Command("cam", "Grad-CAM: where in an image the network finds the evidence for a class, as a heat map over the image.")
        {
            weightsFile, image, output, classIndex, layer, alpha, format,
        };
        weights.AddTo(command);
        command.SetAction(parse =>
        {
            var writer = parse.InvocationConfiguration.Output;
            var opacity = parse.GetValue(alpha);
            if (!(opacity is >= 0 and <= 1)) throw new InceptException($"--alpha is the heat map's opacity, between 0 and 1; got {opacity}.");
            var outPath = parse.GetValue(output)!;
            var imagePath = parse.GetValue(image)!;
            var options = weights.Read(parse);
            var decoded = ImageDecoder.DecodeRgb(imagePath);
            using var loaded = CheckpointLoader.Load(parse.GetValue(weightsFile)!, options);
            int channels = loaded.Model.Config.InChannels;
            var preprocess = loaded.Preprocess;
            if (preprocess is null)
            {
                if (channels != 3)
                    throw new InceptException($"'{parse.GetValue(weightsFile)}' does not record how its {channels}-channel inputs are prepared; save the weights with Incept (incept convert) to record it.");
                preprocess = new PreprocessSpec(loaded.Spec.InputSize, 0.875, "bilinear", ImageNetMean, ImageNetStd, false, 1.0);
                parse.InvocationConfiguration.Error.WriteLine($"warning: the weights do not record their preprocessing; using {preprocess.InputSize} px, crop 0.875 and ImageNet's mean and standard deviation.");
            }

            var (shown, input) = GradCam.Prepare(decoded, preprocess, channels);
            GradCamResult result;
            using (var x = input.ToTensor().to(options.Device ?? CPU))
                result = GradCam.Compute(loaded.Model, x, parse.GetValue(classIndex), parse.GetValue(layer));
            HeatMapOverlay.WritePng(outPath, shown, result.Map, opacity);
            var labels = ClassLabels.Resolve(loaded.Model.NumClasses, loaded.ClassNames, loaded.Weights?.Labels);
            var className = result.ClassIndex < labels.Count && labels[result.ClassIndex] != $"class {result.ClassIndex}" ? labels[result.ClassIndex] : null;
            if (parse.GetValue(format) == "json")
            {
                writer.WriteLine(JsonSerializer.Serialize(new
                {
                    model = loaded.Spec.Name, image = imagePath, output = outPath, @class = result.ClassIndex, class_name = className,
                    probability = result.Probability, layer = result.Layer, width = result.Map.Width, height = result.Map.Height,
                    peak = new { y = result.Map.ArgMax().Y, x = result.Map.ArgMax().X },
                }, CommonOptions.Json));
            }
            else
            {
                var label = className is null ? $"class {result.ClassIndex}" : $"class {result.ClassIndex} ({className})";
                writer.WriteLine($"Grad-CAM of {label}, probability {result.Probability:P2}, from {result.Layer}: wrote {outPath} ({result.Map.Width}×{result.Map.Height}).");
            }

            return 0;
        });
        return command;
    }
}
