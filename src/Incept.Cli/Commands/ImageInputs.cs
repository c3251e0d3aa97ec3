using Incept.Data;
using Incept.Weights;

namespace Incept.Cli.Commands;

/// <summary>What the commands that read image files (predict, features) share: preprocessing and failure reports.</summary>
internal static class ImageInputs
{
    private static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];
    private static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];

    /// <summary>
    /// The weights' preprocessing; for files that do not say (and match no published weights), ImageNet's
    /// torchvision preprocessing at the model's input size, with a warning on <paramref name="error"/>.
    /// </summary>
    public static ImagePreprocessor Preprocessor(LoadedModel loaded, string weightsFile, TextWriter error)
    {
        int channels = loaded.Model.Config.InChannels;
        if (loaded.Preprocess is { } spec) return new ImagePreprocessor(spec, channels);
        if (channels != 3)
            throw new InceptException($"'{weightsFile}' does not say how to prepare images for its {channels}-channel input; save the weights with Incept, which records the preprocessing.");
        int size = loaded.Spec.InputSize;
        error.WriteLine($"warning: '{weightsFile}' does not say how to prepare images; using ImageNet's mean and std, bilinear resize to {(int)Math.Floor(size / 0.875)} and a {size}-pixel centre crop. Name published weights with --model arch.tag to use theirs.");
        return new ImagePreprocessor(new PreprocessSpec(size, 0.875, "bilinear", ImageNetMean, ImageNetStd, false, 1.0), channels);
    }

    /// <summary>Reports each skipped file on <paramref name="error"/> and a closing count; returns the exit code.</summary>
    public static int ReportFailures(TextWriter error, IReadOnlyList<ImageFailure> failures, int total)
    {
        if (failures.Count == 0) return 0;
        foreach (var f in failures) error.WriteLine($"skipped: {f.Message}");
        error.WriteLine($"error: {failures.Count} of {total} images could not be read and were skipped; the results cover the other {total - failures.Count}.");
        return InceptCli.BadInput;
    }
}
