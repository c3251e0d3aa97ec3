namespace Incept.Data.Transforms;

/// <summary>
/// Maps [0, 1] values to what a network expects: optionally reverses the channels to BGR, multiplies by
/// <see cref="Scale"/> (1 or 255), then subtracts <see cref="Mean"/> and divides by <see cref="Std"/>, both given in
/// the output channel order and in scaled units: output[c] = (input[c′] × scale − mean[c]) / std[c], where c′ = 2 − c
/// for BGR and c otherwise.
/// </summary>
public sealed class Normalize : IImageTransform
{
    private readonly float[] _mean;
    private readonly float[] _std;

    /// <summary>Creates the transform; <paramref name="mean"/> and <paramref name="std"/> have one value per channel.</summary>
    public Normalize(IReadOnlyList<float> mean, IReadOnlyList<float> std, bool bgr = false, double scale = 1.0)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Count == 0 || mean.Count != std.Count)
            throw new ArgumentException($"Mean ({mean.Count} values) and std ({std.Count} values) need one value per channel each.", nameof(std));
        if (std.Any(s => !(s > 0) || float.IsInfinity(s)))
            throw new ArgumentException("Every std value must be positive and finite.", nameof(std));
        if (bgr && mean.Count != 3)
            throw new ArgumentException("BGR order needs three channels.", nameof(bgr));
        if (!(scale > 0) || double.IsInfinity(scale))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "The scale must be positive (1 for [0, 1] inputs, 255 for [0, 255]).");
        _mean = [.. mean];
        _std = [.. std];
        Bgr = bgr;
        Scale = scale;
    }

    /// <summary>The normalisation of <paramref name="spec"/>.</summary>
    public static Normalize From(PreprocessSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new Normalize(spec.Mean, spec.Std, spec.Bgr, spec.Scale);
    }

    /// <summary>Means, output channel order, scaled units.</summary>
    public IReadOnlyList<float> Mean => _mean;

    /// <summary>Standard deviations, output channel order, scaled units.</summary>
    public IReadOnlyList<float> Std => _std;

    /// <summary>Whether channels are reversed to BGR.</summary>
    public bool Bgr { get; }

    /// <summary>Multiplier applied to [0, 1] inputs before the mean is subtracted.</summary>
    public double Scale { get; }

    /// <inheritdoc/>
    /// <exception cref="InceptException">The image does not have one channel per mean value.</exception>
    public FloatImage Apply(FloatImage image, Random random)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels != _mean.Length)
            throw new InceptException($"Normalisation has {_mean.Length} channel means but the image has {image.Channels} channels; add GrayscaleToRgb for grayscale data or give one mean and std per channel.");
        int plane = image.Height * image.Width;
        var src = image.Array;
        var dst = new float[src.Length];
        for (int c = 0; c < _mean.Length; c++)
        {
            int from = (Bgr ? _mean.Length - 1 - c : c) * plane;
            float scale = (float)Scale, mean = _mean[c], std = _std[c];
            for (int p = 0; p < plane; p++)
                dst[c * plane + p] = (src[from + p] * scale - mean) / std;
        }
        return new FloatImage(image.Channels, image.Height, image.Width, dst);
    }
}
