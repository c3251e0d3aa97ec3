using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Data;

/// <summary>An image that could not be read, with the reason (which names the file).</summary>
public sealed record ImageFailure(string Path, string Message);

/// <summary>A batch of preprocessed images, the files they came from, and the files that could not be read.</summary>
public sealed class ImageBatch : IDisposable
{
    internal ImageBatch(Tensor? images, IReadOnlyList<string> paths, IReadOnlyList<ImageFailure> failures)
    {
        Images = images;
        Paths = paths;
        Failures = failures;
    }

    /// <summary>The float32 N×C×H×W batch (N = <see cref="Paths"/>.Count), or null when no file could be read.</summary>
    public Tensor? Images { get; }

    /// <summary>The files of the batch's rows, in order.</summary>
    public IReadOnlyList<string> Paths { get; }

    /// <summary>The files that were skipped.</summary>
    public IReadOnlyList<ImageFailure> Failures { get; }

    /// <summary>Disposes the tensor.</summary>
    public void Dispose() => Images?.Dispose();
}

/// <summary>
/// Prepares image files for a network as its weights' <see cref="PreprocessSpec"/> says: decodes with SkiaSharp,
/// converts to the network's channels (three for RGB networks, grayscale images included; one, by Pillow's
/// <c>convert("L")</c> luma, for networks trained on grayscale data such as Fashion-MNIST), then applies
/// <see cref="ImagePipeline.Evaluation"/>: resize of the shorter side to floor(size / crop fraction), centre crop,
/// scale, mean and standard deviation, channel order.
/// </summary>
public sealed class ImagePreprocessor
{
    private readonly ImagePipeline _pipeline;

    /// <summary>Prepares images for a network with <paramref name="inChannels"/> input channels (1 or 3).</summary>
    /// <exception cref="InceptException">The spec's normalisation does not have one value per input channel, or is invalid.</exception>
    public ImagePreprocessor(PreprocessSpec spec, int inChannels)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (inChannels is not (1 or 3))
            throw new InceptException($"Images can be prepared for networks with 1 (grayscale) or 3 (RGB) input channels; this one takes {inChannels}.");
        if (spec.Mean.Length != inChannels || spec.Std.Length != inChannels)
            throw new InceptException($"The preprocessing has {spec.Mean.Length} mean and {spec.Std.Length} std values but the network takes {inChannels} channels; fix the weights' preprocessing metadata.");
        Spec = spec;
        InChannels = inChannels;
        _pipeline = ImagePipeline.Evaluation(spec);
    }

    /// <summary>The preprocessing.</summary>
    public PreprocessSpec Spec { get; }

    /// <summary>Channels of the images it produces.</summary>
    public int InChannels { get; }

    /// <summary>Prepares a decoded image (grayscale or RGB).</summary>
    public FloatImage Apply(ByteImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (InChannels == 1 && image.Channels == 3) image = ToLuma(image);
        // Evaluation transforms draw nothing; a fresh generator keeps calls from threads independent.
        return _pipeline.Apply(image, new Random(0));
    }

    /// <summary>Decodes and prepares the image file at <paramref name="path"/>.</summary>
    /// <exception cref="DataFormatException">The file is not a readable image.</exception>
    /// <exception cref="DatasetNotFoundException">The file does not exist.</exception>
    public FloatImage Load(string path) => Apply(ImageDecoder.DecodeRgb(path));

    /// <summary>
    /// Decodes and prepares <paramref name="paths"/> into one batch; files that do not exist or cannot be decoded
    /// are left out and listed in <see cref="ImageBatch.Failures"/>. The caller owns the batch.
    /// </summary>
    public ImageBatch LoadBatch(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var images = new FloatImage?[paths.Count];
        var errors = new string?[paths.Count];
        var fatal = new Exception?[paths.Count];
        // Decoding and resizing are independent per file; the order of the results is kept.
        Parallel.For(0, paths.Count, i =>
        {
            try
            {
                images[i] = Load(paths[i]);
            }
            catch (Exception e) when (e is DataFormatException or DatasetNotFoundException)
            {
                errors[i] = e.Message;
            }
#pragma warning disable CA1031 // Any other failure is rethrown unwrapped below, not swallowed.
            catch (Exception e)
#pragma warning restore CA1031
            {
                fatal[i] = e;
            }
        });
        if (fatal.FirstOrDefault(e => e is not null) is { } first)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();

        var loaded = new List<string>();
        var failures = new List<ImageFailure>();
        var data = new List<float[]>();
        for (int i = 0; i < paths.Count; i++)
        {
            if (images[i] is { } image)
            {
                loaded.Add(paths[i]);
                data.Add(image.Array);
            }
            else
            {
                failures.Add(new ImageFailure(paths[i], errors[i]!));
            }
        }
        if (loaded.Count == 0) return new ImageBatch(null, loaded, failures);
        int size = Spec.InputSize, plane = InChannels * size * size;
        var all = new float[(long)loaded.Count * plane];
        for (int i = 0; i < data.Count; i++) data[i].CopyTo(all, (long)i * plane);
        var tensor = torch.tensor(all, [loaded.Count, InChannels, size, size], ScalarType.Float32);
        return new ImageBatch(tensor, loaded, failures);
    }

    /// <summary>Pillow's ITU-R 601-2 luma, L = (19595 R + 38470 G + 7471 B + 2^15) / 2^16, rounded as Pillow does.</summary>
    internal static ByteImage ToLuma(ByteImage rgb)
    {
        var src = rgb.Pixels;
        var gray = new byte[rgb.Height * rgb.Width];
        for (int p = 0; p < gray.Length; p++)
            gray[p] = (byte)((src[3 * p] * 19595 + src[3 * p + 1] * 38470 + src[3 * p + 2] * 7471 + 0x8000) >> 16);
        return new ByteImage(rgb.Height, rgb.Width, 1, gray);
    }
}
