using Incept.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Inference;

/// <summary>
/// Runs an <see cref="InceptionModel"/> with TorchSharp: in evaluation mode, without gradients, on the model's
/// device, returning the main logits on the CPU.
/// </summary>
public sealed class TorchEngine : IInferenceEngine
{
    private readonly bool _ownsModel;

    /// <summary>
    /// Wraps <paramref name="model"/> (put into evaluation mode), whose parameters are on <paramref name="device"/>
    /// (the CPU when null). With <paramref name="ownsModel"/> the engine disposes the model.
    /// </summary>
    public TorchEngine(InceptionModel model, Device? device = null, bool ownsModel = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        Device = device ?? CPU;
        _ownsModel = ownsModel;
        model.eval();
    }

    /// <inheritdoc/>
    public string Name => "torch";

    /// <summary>The model it runs.</summary>
    public InceptionModel Model { get; }

    /// <summary>Where the model's parameters live; inputs are moved there.</summary>
    public Device Device { get; }

    /// <inheritdoc/>
    public Tensor Run(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dtype != ScalarType.Float32)
            throw new InceptException($"The inference engine takes float32 images; got {input.dtype}. Convert the batch to float32 first.");
        // The model may have been switched to training since the engine was made (fine-tuning between calls).
        Model.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var logits = Model.call(input.to(Device)).Logits;
        return logits.cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Disposes the model when the engine owns it.</summary>
    public void Dispose()
    {
        if (_ownsModel) Model.Dispose();
    }
}
