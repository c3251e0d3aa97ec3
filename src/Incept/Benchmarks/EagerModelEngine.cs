using Incept.Inference;
using Incept.Models;
using static TorchSharp.torch;

namespace Incept.Benchmarks;

/// <summary>
/// The plain path a benchmark compares the fast engines with: the model itself in evaluation mode under
/// <c>no_grad</c>, NCHW, BatchNorm applied as in training code. The model stays the caller's.
/// </summary>
internal sealed class EagerModelEngine(InceptionModel model) : IInferenceEngine
{
    /// <inheritdoc/>
    public string Name => "torch";

    /// <inheritdoc/>
    public Tensor Run(Tensor input)
    {
        model.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return model.call(input).Logits.MoveToOuterDisposeScope();
    }

    /// <summary>Leaves the model to its owner.</summary>
    public void Dispose()
    {
    }
}
