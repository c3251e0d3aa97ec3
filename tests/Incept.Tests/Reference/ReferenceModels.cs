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

    /// <summary>
    /// Relative tolerance of the logits comparison, as a multiple of max(1, max|ref|): 1e-4 unless listed here.
    /// </summary>
    /// <remarks>
    /// bn_inception: the formula-weight network amplifies float32 round-off about twofold per Inception module
    /// (measured against a float64 evaluation of the same weights: 7e-7 relative after conv1, 1e-3 after
    /// inception_5b). The reference's own float32 logits differ from the float64 ones by 1.8e-4 × max|ref|, and
    /// ours, on libtorch 2.10, by 1.2e-4, so two float32 builds cannot be expected to agree to 1e-4 (we measure
    /// 1.01e-4). It takes the fixture's tolerance_hint, 1e-3, which every porting mistake of the sensitivity table
    /// still exceeds 149-fold.
    /// inception_v3: a relative input change of 1e-7 moves the formula-weight logits by 4e-3, and Debian's own
    /// torchvision 0.14 (PyTorch 1.13) on this machine differs from the shipped logits by 3.6e-3 (2.6e-3 relative;
    /// float64 by 1.7e-3). Its bound is 5e-3, still a hundred times below the smallest porting mistake the fixture
    /// README measures (a BN-eps swap moves the logits by 0.56).
    /// </remarks>
    public static IReadOnlyDictionary<string, double> LogitTolerance { get; } = new Dictionary<string, double>
    {
        ["bn_inception"] = 1e-3,
        ["inception_v3"] = 5e-3,
    };

    public static double Tolerance(string name) => LogitTolerance.GetValueOrDefault(name, 1e-4);

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
