namespace Incept.Models;

/// <summary>
/// The settings every family takes. Defaults give the reference architecture with 1000 classes.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>Classes of the main classifier; 0 builds the model without a classifier (features only).</summary>
    public int NumClasses { get; init; } = 1000;

    /// <summary>Channels of the input image.</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>Dropout before the classifier; null takes the reference's value.</summary>
    public double? DropRate { get; init; }

    /// <summary>Whether to build the auxiliary heads (for families that have them).</summary>
    public bool AuxLogits { get; init; }

    /// <summary>Checks the values and throws an <see cref="InceptException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (NumClasses < 0) throw new InceptException($"The number of classes must be 0 or more; got {NumClasses}.");
        if (InChannels < 1) throw new InceptException($"The number of input channels must be at least 1; got {InChannels}.");
        if (AuxLogits && NumClasses == 0) throw new InceptException("Auxiliary heads need a classifier; set the number of classes above 0 or turn the aux heads off.");
        if (DropRate is < 0 or >= 1) throw new InceptException($"The dropout rate must be in [0, 1); got {DropRate}.");
    }
}
