using static TorchSharp.torch;

namespace Incept.Models;

/// <summary>The logits of one auxiliary classifier, named after its module (<c>aux1</c>, <c>AuxLogits</c>).</summary>
public sealed record AuxOutput(string Name, Tensor Logits);

/// <summary>
/// What every model's forward pass returns, in training and in evaluation alike: the main logits and,
/// in training with auxiliary heads enabled, the auxiliary logits. Evaluation never computes the aux heads.
/// </summary>
public sealed class ModelOutput
{
    /// <summary>Creates an output.</summary>
    public ModelOutput(Tensor logits, IReadOnlyList<AuxOutput>? aux = null)
    {
        Logits = logits;
        Aux = aux ?? [];
    }

    /// <summary>The main classifier's logits (or the embedding for a model without classifier).</summary>
    public Tensor Logits { get; }

    /// <summary>Auxiliary logits, in the order of the heads from input to output; empty in evaluation.</summary>
    public IReadOnlyList<AuxOutput> Aux { get; }

    /// <summary>The auxiliary logits of the head called <paramref name="name"/>, or null.</summary>
    public Tensor? AuxLogits(string name) => Aux.FirstOrDefault(a => a.Name == name)?.Logits;
}

/// <summary>One feature map a model exposes: its channels, its stride from the input, its module.</summary>
/// <param name="NumChannels">Channels of the feature map.</param>
/// <param name="Reduction">Total stride from the input image.</param>
/// <param name="Module">Name of the module whose output it is.</param>
public sealed record FeatureInfo(int NumChannels, int Reduction, string Module);
