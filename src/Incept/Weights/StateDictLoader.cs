using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Weights;

/// <summary>How strictly a state dict must match the model.</summary>
public sealed record LoadOptions
{
    /// <summary>Fail on any missing key, unexpected key or shape mismatch (the default).</summary>
    public bool Strict { get; init; } = true;

    /// <summary>Model key prefixes that may be absent from the checkpoint (for example aux heads or the classifier).</summary>
    public IReadOnlyList<string> MayBeMissing { get; init; } = [];

    /// <summary>Checkpoint key prefixes to ignore (for example a classifier with another class count).</summary>
    public IReadOnlyList<string> Skip { get; init; } = [];
}

/// <summary>What a load did: the keys it copied and those it left alone.</summary>
public sealed record LoadReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected, IReadOnlyList<string> ShapeMismatches);

/// <summary>Copies a state dict held in memory into a model, strictly by default.</summary>
public static class StateDictLoader
{
    /// <summary>
    /// Copies <paramref name="source"/> into <paramref name="model"/>. BatchNorm <c>num_batches_tracked</c>
    /// may always be missing (older checkpoints lack it). Throws <see cref="CheckpointMismatchException"/>
    /// in strict mode when anything else differs.
    /// </summary>
    public static LoadReport Load(nn.Module model, IReadOnlyDictionary<string, Tensor> source, LoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(source);
        options ??= new LoadOptions();
        var target = model.state_dict();
        bool Skipped(string k) => options.Skip.Any(p => k.StartsWith(p, StringComparison.Ordinal));
        var missing = target.Keys
            .Where(k => !source.ContainsKey(k) && !k.EndsWith(".num_batches_tracked", StringComparison.Ordinal) && !Skipped(k))
            .ToList();
        var unexpected = source.Keys.Where(k => !target.ContainsKey(k) && !Skipped(k)).ToList();
        var shapes = new List<string>();
        foreach (var (k, t) in source)
        {
            if (Skipped(k) || !target.TryGetValue(k, out var dst)) continue;
            if (!dst.shape.SequenceEqual(t.shape))
                shapes.Add($"{k}: checkpoint [{string.Join(", ", t.shape)}] vs model [{string.Join(", ", dst.shape)}]");
        }

        var reportMissing = missing.Where(k => !options.MayBeMissing.Any(p => k.StartsWith(p, StringComparison.Ordinal))).ToList();
        if (options.Strict && (reportMissing.Count > 0 || unexpected.Count > 0 || shapes.Count > 0))
            throw new CheckpointMismatchException(model.GetName(), reportMissing, unexpected, shapes);

        var loaded = new List<string>();
        using (no_grad())
        {
            foreach (var (k, dst) in target)
            {
                if (Skipped(k) || !source.TryGetValue(k, out var src) || !dst.shape.SequenceEqual(src.shape)) continue;
                dst.copy_(src);
                loaded.Add(k);
            }
        }

        return new LoadReport(loaded, missing, unexpected, shapes);
    }
}
