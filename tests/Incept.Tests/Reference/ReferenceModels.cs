namespace Incept.Tests.Reference;

/// <summary>Which reference fixture folder documents which registered model.</summary>
internal static class ReferenceModels
{
    /// <summary>Registry name → (fixture without aux heads, fixture with aux heads or null).</summary>
    public static IReadOnlyDictionary<string, (string Plain, string? Aux)> Folders { get; } = new Dictionary<string, (string, string?)>
    {
        ["googlenet"] = ("torchvision_googlenet", "torchvision_googlenet_aux"),
        ["bn_inception"] = ("cadene_bninception", null),
        ["inception_v3"] = ("torchvision_inception_v3", "torchvision_inception_v3_aux"),
        ["inception_v4"] = ("timm_inception_v4", null),
        ["inception_resnet_v1"] = ("facenet_inception_resnet_v1", null),
        ["inception_resnet_v2"] = ("timm_inception_resnet_v2", null),
    };

    /// <summary>
    /// Relative tolerance of the float32 logit comparison: 1e-4 by default. The Inception-v3 fixture sits on a
    /// chaotic stretch of the network (formula weights, calibrated BN statistics): a relative input change of
    /// 1e-7 moves its logits by 4e-3, and Debian's own torchvision 0.14 on this machine differs from the shipped
    /// logits by 3.6e-3 (2.6e-3 relative). Its bound is therefore 5e-3, still far below the smallest porting
    /// mistake the fixture README measures (a BN-eps swap moves the logits by 0.56).
    /// </summary>
    public static double Tolerance(string name) => name switch
    {
        "inception_v3" => 5e-3,
        _ => 1e-4,
    };

    /// <summary>
    /// Registry name → the module prefix where the layer-by-layer check stops, because float32 round-off, amplified
    /// by the network with the formula weights, comes within a few times of the parity tolerance from there on. For
    /// these fixtures another libtorch build (even another thread count) cannot reproduce <c>logits.npy</c>, so the
    /// logits theory is replaced by a check of every BatchNorm's input channel means before that prefix.
    /// </summary>
    /// <remarks>
    /// inception_v4 (measured with libtorch 2.10, TorchSharp 0.107): the gap between our float32 and float64
    /// activations grows 1.5–2× per block up to Reduction-A and 3–5× per Inception-B block; by features.17 it is as
    /// large as the activations themselves. Our own float32 and float64 logits differ by 0.34, and one and two
    /// intra-op threads by 0.17, against a tolerance of 1e-4 and a logit range of ±0.74. The channel means of every
    /// BatchNorm input in features.0–12 agree with the reference to ≤ 1.2e-5 (features.13 reaches 3.6e-5,
    /// features.14 passes 1e-4). Reduction-B and Inception-C are therefore checked by shapes and keys only.
    /// </remarks>
    public static IReadOnlyDictionary<string, string> Float32Unstable { get; } = new Dictionary<string, string>
    {
        ["inception_v4"] = "features.13.",
    };

    public static TheoryData<string> WithReference()
    {
        var data = new TheoryData<string>();
        foreach (var name in Incept.Registry.ModelRegistry.Names.Where(Folders.ContainsKey)) data.Add(name);
        return data;
    }

    public static TheoryData<string> WithAuxReference()
    {
        var data = new TheoryData<string>();
        foreach (var name in Incept.Registry.ModelRegistry.Names.Where(n => Folders.TryGetValue(n, out var f) && f.Aux is not null)) data.Add(name);
        return data;
    }

    public static TheoryData<string> WithStableLogits()
    {
        var data = new TheoryData<string>();
        foreach (var name in Incept.Registry.ModelRegistry.Names.Where(n => Folders.ContainsKey(n) && !Float32Unstable.ContainsKey(n))) data.Add(name);
        return data;
    }

    public static TheoryData<string> WithUnstableLogits()
    {
        var data = new TheoryData<string>();
        foreach (var name in Incept.Registry.ModelRegistry.Names.Where(n => Folders.ContainsKey(n) && Float32Unstable.ContainsKey(n))) data.Add(name);
        return data;
    }
}
