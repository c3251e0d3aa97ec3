using Incept.Registry;

namespace Incept.Tests.Models;

internal static class RegistryModels
{
    public static TheoryData<string> All()
    {
        var data = new TheoryData<string>();
        foreach (var name in ModelRegistry.Names) data.Add(name);
        return data;
    }

    public static TheoryData<string> WithAux()
    {
        var data = new TheoryData<string>();
        foreach (var spec in ModelRegistry.All.Where(s => s.HasAux)) data.Add(spec.Name);
        return data;
    }
}
