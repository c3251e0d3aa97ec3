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
    /// Relative tolerance of the logits comparison, as a multiple of max(1, max|ref|): 1e-4 unless listed here.
    /// </summary>
    /// <remarks>
    /// bn_inception: the formula-weight network amplifies float32 round-off about twofold per Inception module
    /// (measured against a float64 evaluation of the same weights: 7e-7 relative after conv1, 1e-3 after
    /// inception_5b). The reference's own float32 logits differ from the float64 ones by 1.8e-4 × max|ref|, and
    /// ours, on libtorch 2.10, by 1.2e-4, so two float32 builds cannot be expected to agree to 1e-4 (we measure
    /// 1.01e-4). It takes the fixture's tolerance_hint, 1e-3, which every porting mistake of the sensitivity table
    /// still exceeds 149-fold.
    /// </remarks>
    public static IReadOnlyDictionary<string, double> LogitTolerance { get; } = new Dictionary<string, double>
    {
        ["bn_inception"] = 1e-3,
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
}
