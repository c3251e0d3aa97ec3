using static TorchSharp.torch;

namespace Incept.Weights.KeyMaps;

/// <summary>
/// Renames a checkpoint's keys from its source's scheme to Incept's. Incept's module names are those of
/// torchvision, timm, facenet-pytorch and (for BN-Inception) Cadene, so most sources need no change;
/// Cadene's Inception-v3 and Inception-ResNet-v2 call their classifier <c>last_linear</c>.
/// </summary>
public static class KeyMap
{
    private static readonly Dictionary<string, string> CadeneClassifier = new()
    {
        ["inception_v3"] = "fc",
        ["inception_resnet_v2"] = "classif",
    };

    /// <summary>The format a state dict for <paramref name="arch"/> is most likely in.</summary>
    public static KeyFormat Detect(string arch, IEnumerable<string> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var set = keys.ToHashSet();
        if (CadeneClassifier.ContainsKey(arch) && set.Contains("last_linear.weight")) return KeyFormat.Cadene;
        return arch switch
        {
            "googlenet" or "googlenet_paper" => KeyFormat.TorchVision,
            "inception_v3" => KeyFormat.TorchVision,
            "bn_inception" => KeyFormat.Cadene,
            "inception_resnet_v1" => KeyFormat.Facenet,
            _ => KeyFormat.Timm,
        };
    }

    /// <summary>Returns <paramref name="source"/> with keys renamed from <paramref name="format"/> to Incept's names for <paramref name="arch"/>.</summary>
    public static Dictionary<string, Tensor> ToIncept(string arch, IReadOnlyDictionary<string, Tensor> source, KeyFormat format)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (format == KeyFormat.Auto) format = Detect(arch, source.Keys);
        if (format == KeyFormat.Cadene && CadeneClassifier.TryGetValue(arch, out var classifier))
            return source.ToDictionary(kv => Rename(kv.Key, "last_linear.", classifier + "."), kv => kv.Value);
        return source.ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    /// <summary>The inverse of <see cref="ToIncept"/>: Incept's keys in <paramref name="format"/>'s scheme.</summary>
    public static Dictionary<string, Tensor> FromIncept(string arch, IReadOnlyDictionary<string, Tensor> source, KeyFormat format)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (format == KeyFormat.Cadene && CadeneClassifier.TryGetValue(arch, out var classifier))
            return source.ToDictionary(kv => Rename(kv.Key, classifier + ".", "last_linear."), kv => kv.Value);
        return source.ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    private static string Rename(string key, string from, string to)
        => key.StartsWith(from, StringComparison.Ordinal) ? to + key[from.Length..] : key;
}
