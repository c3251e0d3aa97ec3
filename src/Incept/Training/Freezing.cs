using Incept.Models;
using Incept.Registry;
using TorchSharp.Modules;

namespace Incept.Training;

/// <summary>
/// Freezes part of a model for fine-tuning: frozen parameters stop requiring gradients (so an optimizer created
/// afterwards by <see cref="Recipe.CreateOptimizer"/> leaves them out and weight decay never touches them), and the
/// frozen BatchNorm layers are held in evaluation mode (<see cref="InceptionModel.HoldInEvaluation"/>), so that their
/// running statistics and <c>num_batches_tracked</c> do not change while the model trains.
/// </summary>
public static class Freezing
{
    /// <summary>
    /// Freezes everything but the classifier (<see cref="ModelSpec.Classifier"/>) and the auxiliary heads
    /// (<see cref="ModelSpec.AuxModules"/>), which stay trainable and in the model's mode.
    /// </summary>
    /// <returns>The number of parameter tensors frozen.</returns>
    public static int FreezeBackbone(InceptionModel model, ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return FreezeAllBut(model, [spec.Classifier, .. spec.AuxModules]);
    }

    /// <summary>
    /// Freezes every parameter and BatchNorm layer of <paramref name="model"/> except those under the module names in
    /// <paramref name="trainable"/> (state-dict prefixes such as <c>fc</c>); parameters there are made trainable.
    /// </summary>
    /// <returns>The number of parameter tensors frozen.</returns>
    public static int FreezeAllBut(InceptionModel model, IEnumerable<string> trainable)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(trainable);
        var prefixes = trainable.Select(p => p.TrimEnd('.') + ".").ToList();
        bool Trainable(string name) => prefixes.Any(p => (name + ".").StartsWith(p, StringComparison.Ordinal));
        int frozen = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            bool train = Trainable(name);
            p.requires_grad = train;
            if (!train) frozen++;
        }

        if (frozen == model.parameters().Count())
            throw new TrainingSettingException("trainable", $"No parameter of the model is under {string.Join(", ", prefixes.Select(p => p.TrimEnd('.')))}; nothing would train.");
        model.HoldInEvaluation(model.named_modules().Where(m => m.module is BatchNorm && !Trainable(m.name)).Select(m => m.module));
        return frozen;
    }

    /// <summary>Makes every parameter trainable again and releases the BatchNorm layers to follow the model's mode.</summary>
    public static void Unfreeze(InceptionModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var p in model.parameters()) p.requires_grad = true;
        model.HoldInEvaluation([]);
    }
}
