using Incept.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Inference;

/// <summary>
/// Reads one layer of a model for a batch of images: a feature map named in <see cref="InceptionModel.FeatureInfo"/>
/// (N×C×H×W), the pooled pre-logits features (<see cref="Pooled"/>, N×<see cref="InceptionModel.NumFeatures"/>),
/// or, for Inception-ResNet-v1, the L2-normalised 512-d face embedding (<see cref="Embedding"/>).
/// </summary>
public sealed class FeatureExtractor
{
    /// <summary>The layer name of the pooled features the classifier reads (<c>ForwardHead(x, preLogits: true)</c>).</summary>
    public const string Pooled = "pooled";

    /// <summary>The layer name of Inception-ResNet-v1's L2-normalised face embedding.</summary>
    public const string Embedding = "embedding";

    private readonly nn.Module<Tensor, Tensor>? _tap;

    /// <summary>Reads <paramref name="layer"/> of <paramref name="model"/>, whose parameters are on <paramref name="device"/> (CPU when null).</summary>
    /// <exception cref="InceptException">The model has no layer of that name; the message lists the valid ones.</exception>
    public FeatureExtractor(InceptionModel model, string layer, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(layer);
        Model = model;
        Layer = layer;
        Device = device ?? CPU;
        var layers = LayerNames(model);
        if (!layers.Contains(layer, StringComparer.Ordinal))
            throw new InceptException($"{model.GetName()} has no layer '{layer}'; valid layers: {string.Join(", ", layers)}.");
        if (layer is not (Pooled or Embedding)) _tap = FindModule(model, layer);
    }

    /// <summary>The model.</summary>
    public InceptionModel Model { get; }

    /// <summary>The layer read.</summary>
    public string Layer { get; }

    /// <summary>Where the model's parameters live; inputs are moved there.</summary>
    public Device Device { get; }

    /// <summary>
    /// The layers <paramref name="model"/> offers: its feature taps from the stem to the last stage, then
    /// <see cref="Pooled"/>, then <see cref="Embedding"/> for Inception-ResNet-v1.
    /// </summary>
    public static IReadOnlyList<string> LayerNames(InceptionModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var names = model.FeatureInfo.Select(f => f.Module).Append(Pooled).ToList();
        if (model is Models.InceptionResNetV1.InceptionResNetV1) names.Add(Embedding);
        return names;
    }

    /// <summary>
    /// Runs the float32 N×C×H×W batch <paramref name="input"/> (in evaluation mode, without gradients) and returns the
    /// layer's float32 output on the CPU. The caller owns the result.
    /// </summary>
    public Tensor Extract(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Model.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x = input.to(Device);
        if (_tap is null)
        {
            // For Inception-ResNet-v1 the pre-logits output is already the normalised embedding.
            return Model.ForwardHead(Model.ForwardFeatures(x), preLogits: true).cpu().MoveToOuterDisposeScope();
        }

        Tensor? captured = null;
        var hook = _tap.register_forward_hook((_, _, y) =>
        {
            // The module's output lives in the forward pass's own dispose scope; keep a copy outside it.
            captured ??= y.detach().clone().DetachFromDisposeScope();
            return y;
        });
        try
        {
            Model.ForwardFeatures(x);
        }
        finally
        {
            hook.remove();
        }

        var result = captured ?? throw new InvalidOperationException($"The module '{Layer}' did not run in {Model.GetName()}'s forward pass.");
        result.MoveToOtherDisposeScope(scope);
        return result.cpu().MoveToOuterDisposeScope();
    }

    private static nn.Module<Tensor, Tensor> FindModule(InceptionModel model, string name)
    {
        // Feature taps name a module, or for flat layouts (BN-Inception) one of the model's stages.
        var module = model.named_modules().FirstOrDefault(m => m.name == name).module
            ?? model.Stages().FirstOrDefault(s => s.Name == name).Module;
        return module as nn.Module<Tensor, Tensor>
            ?? throw new InvalidOperationException($"{model.GetName()}'s feature tap '{name}' is not a tensor-to-tensor module.");
    }
}
