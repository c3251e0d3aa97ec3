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
