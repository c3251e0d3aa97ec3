using Incept.Models;
using Incept.Registry;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Analysis;

/// <summary>One top-level stage of a model: its output shape (batch of one), parameters and multiply-accumulates.</summary>
/// <param name="Name">Module name of the stage.</param>
/// <param name="OutputShape">Output shape for a single image, or empty when the stage did not run.</param>
/// <param name="Params">Trainable parameters of the stage.</param>
/// <param name="Macs">Multiply-accumulates of the stage's conv and linear layers for one image.</param>
/// <param name="Columns">Extra descriptive columns (for GoogLeNet: the paper's Table 1 widths).</param>
public sealed record StageSummary(string Name, IReadOnlyList<long> OutputShape, long Params, long Macs, IReadOnlyDictionary<string, long> Columns);

/// <summary>A model's stages and totals at one input size.</summary>
/// <param name="Model">Registry name of the model.</param>
/// <param name="InputSize">Side of the square input, in pixels.</param>
/// <param name="Aux">Whether the auxiliary heads were built, run and counted.</param>
/// <param name="Width">The model's width multiplier (<see cref="ModelConfig.Width"/>).</param>
/// <param name="SmallInput">Whether the model has the small-input stem (<see cref="ModelConfig.SmallInput"/>).</param>
/// <param name="Params">Trainable parameters.</param>
/// <param name="Macs">Multiply-accumulates of conv and linear layers for one image.</param>
/// <param name="Layers">One row per top-level stage.</param>
public sealed record ModelSummary(string Model, int InputSize, bool Aux, double Width, bool SmallInput, long Params, long Macs, IReadOnlyList<StageSummary> Layers)
{
    /// <summary>The input size a summary of a <see cref="ModelConfig.SmallInput"/> model takes when none is given (Fashion-MNIST's 28 pixels).</summary>
    public const int DefaultSmallInputSize = 28;

    /// <summary>
    /// Runs one forward pass of <paramref name="modelName"/> at <paramref name="inputSize"/> (default: the
    /// model's, or <see cref="DefaultSmallInputSize"/> with <paramref name="smallInput"/>) and counts, per
    /// top-level stage, parameters and the multiply-accumulates of convolutions (output elements × input channels
    /// per group × kernel area) and linear layers. With <paramref name="aux"/> the auxiliary heads are built, run
    /// and counted; <paramref name="width"/> and <paramref name="smallInput"/> build the model with
    /// <see cref="ModelConfig.Width"/> and <see cref="ModelConfig.SmallInput"/>.
    /// </summary>
    public static ModelSummary Create(string modelName, int? inputSize = null, bool aux = false, double width = 1.0, bool smallInput = false)
        => Create(modelName, new ModelConfig { AuxLogits = aux, Width = width, SmallInput = smallInput }, inputSize);

    /// <summary>Summarises <paramref name="modelName"/> built with <paramref name="config"/> (see <see cref="Create(string, int?, bool, double, bool)"/>).</summary>
    public static ModelSummary Create(string modelName, ModelConfig config, int? inputSize = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var spec = ModelRegistry.Get(modelName);
        int size = inputSize ?? (config.SmallInput ? DefaultSmallInputSize : spec.InputSize);
        using var model = ModelFactory.Create(spec, config);
        return Create(model, spec.Name, size);
    }

    /// <summary>Summarises an already built model at <paramref name="inputSize"/> pixels.</summary>
    public static ModelSummary Create(InceptionModel model, string name, int inputSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (inputSize < model.MinInputSize)
            throw new InputShapeException($"{name} needs inputs of at least {model.MinInputSize}×{model.MinInputSize} pixels; got {inputSize}. Use --input-size {model.MinInputSize} or more.");
        var stages = model.Stages().ToList();
        // A module belongs to the stage it sits in. Flat layouts (Cadene's BN-Inception) register a stage's
        // layers on the model itself as <stage>_<layer>; those children belong to the stage by their prefix.
        var stageOf = new Dictionary<nn.Module, string>(ReferenceEqualityComparer.Instance);
        void Assign(nn.Module root, string stageName)
        {
            stageOf.TryAdd(root, stageName);
            foreach (var m in root.modules()) stageOf.TryAdd(m, stageName);
        }

        foreach (var (stageName, module) in stages) Assign(module, stageName);
        foreach (var (childName, child) in model.named_children())
        {
            var owner = stages
                .Where(s => childName == s.Name || childName.StartsWith(s.Name + "_", StringComparison.Ordinal))
                .OrderByDescending(s => s.Name.Length)
                .FirstOrDefault().Name;
            if (owner is not null) Assign(child, owner);
        }
        var macs = stages.ToDictionary(s => s.Name, _ => 0L);
        var shapes = new Dictionary<string, long[]>();
        var hooks = new List<Action>();
        // The aux heads only run in training mode; BatchNorm then needs more than one value per channel,
        // so run two images and halve the counts.
        bool training = model.HasAux;
        long batch = training ? 2 : 1;
        foreach (var m in model.modules())
        {
            if (!stageOf.TryGetValue(m, out var stage)) continue;
            if (CountInto(m, batch, n => macs[stage] += n) is { } remove) hooks.Add(remove);
        }

        foreach (var (stageName, module) in stages)
        {
            if (module is nn.Module<Tensor, Tensor> hookable)
            {
                var h = hookable.register_forward_hook((_, _, output) => { shapes[stageName] = [1, .. output.shape.Skip(1)]; return output; });
                hooks.Add(h.remove);
            }
        }

        try
        {
            model.train(training);
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            model.call(zeros(batch, model.Config.InChannels, inputSize, inputSize));
        }
        finally
        {
            foreach (var remove in hooks) remove();
            model.eval();
        }

        var rows = stages.Select(s => new StageSummary(
            s.Name,
            shapes.TryGetValue(s.Name, out var shape) ? shape : [],
            stageOf.Where(kv => kv.Value == s.Name).Sum(kv => kv.Key.parameters(recurse: false).Sum(p => p.numel())),
            macs[s.Name],
            s.Module is IDescribedStage d ? d.Columns : new Dictionary<string, long>())).ToList();
        return new ModelSummary(name, inputSize, model.HasAux, model.Config.Width, model.Config.SmallInput, rows.Sum(r => r.Params), rows.Sum(r => r.Macs), rows);
    }

    /// <summary>
    /// Multiply-accumulates of the convolutions and linear layers inside <paramref name="module"/> (counted as in
    /// <see cref="Create(InceptionModel, string, int)"/>) for one forward pass of a single input shaped
    /// <paramref name="inputShape"/> (channels, height, width for a convolutional block). The module runs in
    /// evaluation mode on zeros.
    /// </summary>
    public static long CountMacs(nn.Module<Tensor, Tensor> module, params long[] inputShape)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(inputShape);
        long total = 0;
        var hooks = new List<Action>();
        foreach (var m in module.modules())
        {
            if (CountInto(m, 1, n => total += n) is { } remove) hooks.Add(remove);
        }

        bool wasTraining = module.training;
        try
        {
            module.eval();
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            module.call(zeros([1, .. inputShape]));
        }
        finally
        {
            foreach (var remove in hooks) remove();
            module.train(wasTraining);
        }

        return total;
    }

    /// <summary>
    /// Hooks <paramref name="m"/> when it is a convolution (output elements × input channels per group × kernel area)
    /// or a linear layer (output elements × input features), adding its multiply-accumulates per image of a batch of
    /// <paramref name="batch"/> to <paramref name="add"/>; returns the hook's removal, or null for other modules.
    /// </summary>
    private static Action? CountInto(nn.Module m, long batch, Action<long> add)
    {
        switch (m)
        {
            case Conv2d conv:
            {
                var w = conv.weight!.shape; // out, in/groups, kh, kw
                return conv.register_forward_hook((_, _, output) => { add(output.numel() / batch * w[1] * w[2] * w[3]); return output; }).remove;
            }

            case Linear linear:
            {
                var w = linear.weight!.shape;
                return linear.register_forward_hook((_, _, output) => { add(output.numel() / batch * w[1]); return output; }).remove;
            }

            default:
                return null;
        }
    }
}

/// <summary>A stage that describes itself with extra summary columns (such as the GoogLeNet paper's Table 1 widths).</summary>
public interface IDescribedStage
{
    /// <summary>Column name → value, in display order.</summary>
    IReadOnlyDictionary<string, long> Columns { get; }
}
