using System.Collections;
using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// Whether a module has hooks, for the paths that compute a module's work without calling it (the training
/// convolutions, the pooling kernel): those may only be taken where TorchSharp's hook tables are found and empty.
/// </summary>
internal static class ModuleHooks
{
    // TorchSharp keeps a module's hooks in protected tables (0.107's names), declared on its generic module base class.
    private static readonly FieldInfo[] HookFields = FindHookFields();

    /// <summary>Whether TorchSharp's hook tables were found, so that a module without hooks can be bypassed at all.</summary>
    internal static bool Seen => HookFields.Length > 0;

    /// <summary>Whether <paramref name="module"/> has hooks, or its hook tables cannot be found (then the module's own call is the safe path).</summary>
    internal static bool Any(nn.Module<Tensor, Tensor> module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (HookFields.Length == 0) return true;
        foreach (var field in HookFields)
            if (field.GetValue(module) is not ICollection { Count: 0 }) return true;
        return false;
    }

    private static FieldInfo[] FindHookFields()
    {
        string[] names = ["pre_hooks", "post_hooks", "module_pre_hooks", "module_post_hooks"];
        var found = new List<FieldInfo>();
        foreach (var name in names)
        {
            FieldInfo? field = null;
            for (var type = typeof(nn.Module<Tensor, Tensor>); type is not null && field is null; type = type.BaseType)
                field = type.GetField(name, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly);
            if (field is null) return [];
            found.Add(field);
        }

        return [.. found];
    }
}
