namespace Incept.Data.Transforms;

/// <summary>The resampling filter of a resize.</summary>
public enum Interpolation
{
    /// <summary>Nearest neighbour (the source pixel whose centre is nearest the output pixel's centre, as PIL).</summary>
    Nearest,

    /// <summary>Linear in each direction (triangle filter).</summary>
    Bilinear,

    /// <summary>Cubic convolution with a = −0.5 (Keys' kernel, as PIL and torchvision's antialiased path use).</summary>
    Bicubic,
}

/// <summary>Names of <see cref="Interpolation"/> values as weights metadata spells them.</summary>
public static class InterpolationNames
{
    /// <summary>Parses <c>bilinear</c>, <c>bicubic</c> or <c>nearest</c> (any case).</summary>
    /// <exception cref="InceptException">The name is none of those.</exception>
    public static Interpolation Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "bilinear" or "linear" => Interpolation.Bilinear,
            "bicubic" or "cubic" => Interpolation.Bicubic,
            "nearest" => Interpolation.Nearest,
            _ => throw new InceptException($"Unknown interpolation '{name}'; use bilinear, bicubic or nearest."),
        };
    }
}
