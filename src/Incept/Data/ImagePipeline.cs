using Incept.Data.Transforms;

namespace Incept.Data;

/// <summary>
/// Turns an 8-bit image into a network input: converts it to float CHW in [0, 1], then applies the
/// transforms in order. Transforms operate on floats without rounding to 8 bits between steps, except the
/// evaluation resize, which rounds as Pillow does (see <see cref="Evaluation"/>); training augmentations therefore
/// differ from PIL pipelines by up to about one grey level.
/// </summary>
public sealed class ImagePipeline
{
    private readonly IImageTransform[] _transforms;

    /// <summary>Creates a pipeline of <paramref name="transforms"/>, applied in order.</summary>
    public ImagePipeline(params IImageTransform[] transforms)
    {
        ArgumentNullException.ThrowIfNull(transforms);
        if (transforms.Any(t => t is null))
            throw new ArgumentException("A transform is null.", nameof(transforms));
        _transforms = [.. transforms];
    }

    /// <summary>The transforms, in order.</summary>
    public IReadOnlyList<IImageTransform> Transforms => _transforms;

    /// <summary>Converts <paramref name="image"/> to float and applies the transforms, drawing from <paramref name="random"/>.</summary>
    public FloatImage Apply(ByteImage image, Random random)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(random);
        var result = image.ToFloat();
        foreach (var t in _transforms) result = t.Apply(result, random);
        return result;
    }

    /// <summary>
    /// Evaluation preprocessing of <paramref name="spec"/>, as timm builds it: grayscale to three channels (when
    /// the spec has three means), resize the shorter side to floor(InputSize / CropFraction) with the spec's
    /// filter, centre crop InputSize squared, normalise. An antialiased bilinear or bicubic resize runs in Pillow's
    /// 8-bit arithmetic (<see cref="Resampler.ResizeEightBit"/>), as the reference loaders resize PIL images, so that
    /// the network sees the pixels it was evaluated on; without antialiasing it resizes in float, as torchvision does
    /// on tensors.
    /// </summary>
    public static ImagePipeline Evaluation(PreprocessSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Validate(spec);
        var interpolation = InterpolationNames.Parse(spec.Interpolation);
        int resized = (int)Math.Floor(spec.InputSize / spec.CropFraction);
        var steps = new List<IImageTransform>();
        if (spec.Mean.Length == 3) steps.Add(new GrayscaleToRgb());
        bool eightBit = spec.Antialias && interpolation != Interpolation.Nearest;
        steps.Add(new Resize(resized, interpolation, spec.Antialias, eightBit));
        steps.Add(new CenterCrop(spec.InputSize));
        steps.Add(Normalize.From(spec));
        return new ImagePipeline([.. steps]);
    }

    /// <summary>
    /// Inception training preprocessing for <paramref name="spec"/>: grayscale to three channels (when the spec has
    /// three means), random-resized crop to InputSize (area 8–100 %, aspect 3/4–4/3, the spec's filter), horizontal
    /// flip with probability one half, optional photometric distortion, normalise.
    /// </summary>
    public static ImagePipeline Training(PreprocessSpec spec, ColorJitter? colorJitter = null, double minScale = 0.08)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Validate(spec);
        var interpolation = InterpolationNames.Parse(spec.Interpolation);
        var steps = new List<IImageTransform>();
        if (spec.Mean.Length == 3) steps.Add(new GrayscaleToRgb());
        steps.Add(new RandomResizedCrop(spec.InputSize, interpolation, minScale));
        steps.Add(new RandomHorizontalFlip());
        if (colorJitter is not null) steps.Add(colorJitter);
        steps.Add(Normalize.From(spec));
        return new ImagePipeline([.. steps]);
    }

    /// <summary>
    /// Training preprocessing for small images (28–64 px, trained from scratch): grayscale to three channels
    /// (when the spec has three means), resize to InputSize when the image differs, zero-pad by an eighth of the
    /// side and take a random InputSize crop, horizontal flip with probability one half, normalise.
    /// </summary>
    public static ImagePipeline SmallImageTraining(PreprocessSpec spec, bool flip = true)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Validate(spec);
        var steps = new List<IImageTransform>();
        if (spec.Mean.Length == 3) steps.Add(new GrayscaleToRgb());
        steps.Add(new ResizeIfNeeded(spec.InputSize, InterpolationNames.Parse(spec.Interpolation)));
        steps.Add(new RandomCrop(spec.InputSize, Math.Max(1, spec.InputSize / 8)));
        if (flip) steps.Add(new RandomHorizontalFlip());
        steps.Add(Normalize.From(spec));
        return new ImagePipeline([.. steps]);
    }

    /// <summary>
    /// Evaluation preprocessing for small images: grayscale to three channels when needed, resize to InputSize
    /// when the image differs, normalise (no crop).
    /// </summary>
    public static ImagePipeline SmallImageEvaluation(PreprocessSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Validate(spec);
        var steps = new List<IImageTransform>();
        if (spec.Mean.Length == 3) steps.Add(new GrayscaleToRgb());
        steps.Add(new ResizeIfNeeded(spec.InputSize, InterpolationNames.Parse(spec.Interpolation)));
        steps.Add(Normalize.From(spec));
        return new ImagePipeline([.. steps]);
    }

    /// <summary>Resizes to a square side only when the image is not already that size.</summary>
    private sealed class ResizeIfNeeded(int size, Interpolation interpolation) : IImageTransform
    {
        private readonly Resize resize = new(size, interpolation);

        public FloatImage Apply(FloatImage image, Random random)
            => image.Height == size && image.Width == size ? image : new CenterCrop(size).Apply(resize.Apply(image, random), random);
    }

    private static void Validate(PreprocessSpec spec)
    {
        if (spec.InputSize < 1)
            throw new InceptException($"The input size {spec.InputSize} is not positive; give the network's input side in pixels.");
        if (!(spec.CropFraction > 0 && spec.CropFraction <= 1))
            throw new InceptException($"The crop fraction {spec.CropFraction} is outside (0, 1]; use the weights' crop fraction, such as 0.875.");
    }
}
