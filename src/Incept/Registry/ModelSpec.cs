using Incept.Models;

namespace Incept.Registry;

/// <summary>
/// One registered architecture: its name, where it comes from, its published size and cost, and how
/// to build and initialise it. Entries live in <see cref="ModelRegistry"/>.
/// </summary>
public sealed record ModelSpec
{
    /// <summary>Registry name, such as <c>inception_v3</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Family, such as <c>Inception-v3</c>.</summary>
    public required string Family { get; init; }

    /// <summary>The paper that describes the architecture.</summary>
    public required string Paper { get; init; }

    /// <summary>The public implementation whose module tree and keys the model reproduces.</summary>
    public required string Reference { get; init; }

    /// <summary>Default square input size in pixels.</summary>
    public required int InputSize { get; init; }

    /// <summary>Smallest square input the network accepts.</summary>
    public required int MinInputSize { get; init; }

    /// <summary>Trainable parameters with 1000 classes and no auxiliary heads.</summary>
    public required long Params { get; init; }

    /// <summary>Trainable parameters with 1000 classes and auxiliary heads, for families that have them.</summary>
    public long? ParamsWithAux { get; init; }

    /// <summary>
    /// Multiply-accumulates of conv and linear layers for one image at <see cref="InputSize"/>, 1000 classes,
    /// no aux, as <see cref="Analysis.ModelSummary"/> counts them (a test keeps the two equal).
    /// </summary>
    public required long Macs { get; init; }

    /// <summary>State-dict prefix of the first convolution (to adapt input channels).</summary>
    public required string FirstConv { get; init; }

    /// <summary>State-dict prefix of the classifier (to reset the head).</summary>
    public required string Classifier { get; init; }

    /// <summary>Whether the family can build auxiliary heads.</summary>
    public bool HasAux => ParamsWithAux is not null;

    /// <summary>State-dict prefixes of the auxiliary heads (<c>aux1</c>, <c>aux2</c>; <c>AuxLogits</c>).</summary>
    public IReadOnlyList<string> AuxModules { get; init; } = [];

    /// <summary>Builds the module tree (no weight loading, no device move).</summary>
    public required Func<ModelConfig, InceptionModel> Build { get; init; }

    /// <summary>Applies the reference's weight initialisation to a freshly built model.</summary>
    public Action<InceptionModel>? Initialize { get; init; }
}
