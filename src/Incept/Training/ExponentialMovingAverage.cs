using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Training;

/// <summary>
/// Polyak averaging of a model's weights as TensorFlow's <c>ExponentialMovingAverage</c> does it: a shadow copy of every
/// state-dict entry (parameters and buffers, BatchNorm statistics included) updated after each training step by
/// <code>shadow ← shadow − (1 − d)·(shadow − value)</code>
/// with d = <see cref="Decay"/>, or with warm-up (TensorFlow's <c>num_updates</c>) d = min(decay, (1 + n)/(10 + n)) where n
/// counts the updates made before this one, so that early averages are not dominated by the random initial weights.
/// Integer buffers (BatchNorm's <c>num_batches_tracked</c>) are copied, not averaged. Evaluate the average with
/// <see cref="Swap"/> (twice: before and after) or copy it into another model with <see cref="CopyTo"/>.
/// </summary>
/// <remarks>
/// Create the average after the model is on its device: the shadow tensors live where the model's tensors were.
/// For exact resume save <see cref="Shadow"/> and <see cref="NumUpdates"/>, and give them back to <see cref="Restore"/>.
/// </remarks>
public sealed class ExponentialMovingAverage : IDisposable
{
    private readonly Dictionary<string, Tensor> shadow = [];

    /// <summary>Starts the average at the current weights of <paramref name="model"/>.</summary>
    /// <param name="model">The model being trained.</param>
    /// <param name="decay">The decay in [0, 1), 0.9999 in the Inception-v3 recipe.</param>
    /// <param name="warmUp">Use min(decay, (1 + n)/(10 + n)) as TensorFlow does when given <c>num_updates</c>.</param>
    public ExponentialMovingAverage(nn.Module model, double decay = 0.9999, bool warmUp = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        TrainingSettingException.CheckRange("ema_decay", decay, 0, 1);
        Decay = decay;
        WarmUp = warmUp;
        using var _ = no_grad();
        foreach (var (name, t) in model.state_dict())
            shadow[name] = t.detach().clone().DetachFromDisposeScope();
    }

    /// <summary>The decay (the upper bound when <see cref="WarmUp"/> is on).</summary>
    public double Decay { get; }

    /// <summary>Whether the decay is capped by (1 + n)/(10 + n) during the first updates.</summary>
    public bool WarmUp { get; }

    /// <summary>Updates made so far.</summary>
    public long NumUpdates { get; private set; }

    /// <summary>The decay the next <see cref="Update"/> will use.</summary>
    public double NextDecay => WarmUp ? Math.Min(Decay, (1.0 + NumUpdates) / (10.0 + NumUpdates)) : Decay;

    /// <summary>The averaged tensors, by state-dict key. They belong to this object: read or copy them, do not dispose them.</summary>
    public IReadOnlyDictionary<string, Tensor> Shadow => shadow;

    /// <summary>Moves the average towards the current weights of <paramref name="model"/>; call it after each optimizer step.</summary>
    public void Update(nn.Module model)
    {
        var d = NextDecay;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        // avg ← avg + (1 − d)(value − avg) in one call per tensor; lerp_ takes its weight as a tensor of avg's type.
        using var weight = (1 - d).ToScalar();
        var steps = new Dictionary<(ScalarType, DeviceType, int), Tensor>();
        foreach (var (name, value, avg) in Pairs(model))
        {
            if (!avg.is_floating_point())
            {
                avg.copy_(value);
                continue;
            }

            var key = (avg.dtype, avg.device_type, avg.device_index);
            if (!steps.TryGetValue(key, out var step)) steps[key] = step = full([], weight, avg.dtype, avg.device);
            avg.lerp_(value.device_type == avg.device_type && value.device_index == avg.device_index ? value : value.to(avg.device), step);
        }
        NumUpdates++;
    }

    /// <summary>Writes the average into <paramref name="model"/> (the model's own weights are lost).</summary>
    public void CopyTo(nn.Module model)
    {
        using var _ = no_grad();
        foreach (var (_, value, avg) in Pairs(model)) value.copy_(avg);
    }

    /// <summary>Exchanges the model's weights and the average; calling it again restores both.</summary>
    public void Swap(nn.Module model)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (_, value, avg) in Pairs(model))
        {
            var saved = value.clone();
            value.copy_(avg);
            avg.copy_(saved);
        }
    }

    /// <summary>
    /// Sets the average and the update count from a saved <see cref="Shadow"/> and <see cref="NumUpdates"/>; the values
    /// are copied. Throws a <see cref="TrainingSettingException"/> if a key is missing, unexpected, or of another shape.
    /// </summary>
    public void Restore(IReadOnlyDictionary<string, Tensor> savedShadow, long numUpdates)
    {
        ArgumentNullException.ThrowIfNull(savedShadow);
        if (numUpdates < 0)
            throw new TrainingSettingException("ema_num_updates", $"The saved number of EMA updates must be 0 or more; got {numUpdates}.");
        var missing = shadow.Keys.Where(k => !savedShadow.ContainsKey(k)).ToList();
        var unexpected = savedShadow.Keys.Where(k => !shadow.ContainsKey(k)).ToList();
        var shapes = shadow.Where(kv => savedShadow.TryGetValue(kv.Key, out var s) && !s.shape.SequenceEqual(kv.Value.shape))
            .Select(kv => kv.Key).ToList();
        if (missing.Count + unexpected.Count + shapes.Count > 0)
            throw new TrainingSettingException("ema", "The saved moving average does not match the model: "
                + Describe("missing", missing) + Describe("unexpected", unexpected) + Describe("of another shape", shapes)
                + " Resume with the same model and settings that wrote it.");
        using var _ = no_grad();
        foreach (var (name, avg) in shadow) avg.copy_(savedShadow[name]);
        NumUpdates = numUpdates;
    }

    /// <summary>Frees the shadow tensors.</summary>
    public void Dispose()
    {
        foreach (var t in shadow.Values) t.Dispose();
        shadow.Clear();
    }

    private List<(string Name, Tensor Value, Tensor Avg)> Pairs(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var state = model.state_dict();
        var pairs = new List<(string, Tensor, Tensor)>(shadow.Count);
        foreach (var (name, avg) in shadow)
        {
            if (!state.TryGetValue(name, out var value))
                throw new TrainingSettingException("ema", $"The model has no '{name}', which the moving average holds; use the model the average was created for.");
            if (!value.shape.SequenceEqual(avg.shape))
                throw new TrainingSettingException("ema", $"'{name}' is [{string.Join(", ", value.shape)}] in the model but [{string.Join(", ", avg.shape)}] in the moving average; use the model the average was created for.");
            pairs.Add((name, value, avg));
        }
        if (state.Count != shadow.Count)
        {
            var extra = state.Keys.First(k => !shadow.ContainsKey(k));
            throw new TrainingSettingException("ema", $"The model has '{extra}', which the moving average lacks; create the average after changing the model (for instance after resetting the classifier).");
        }
        return pairs;
    }

    private static string Describe(string what, List<string> keys) =>
        keys.Count == 0 ? "" : $"{keys.Count} keys {what} ({string.Join(", ", keys.Take(5))}{(keys.Count > 5 ? ", …" : "")}).";
}
