using System.Reflection;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Training;

/// <summary>
/// Saves and loads optimizer state for parameters in any memory layout. TorchSharp 0.107 serialises an optimizer's
/// per-parameter tensors byte for byte, which fails for channels-last ones ("Bytes() called on non-contiguous tensor"),
/// and loads them back contiguous. Around the save or load, every state tensor is made contiguous; afterwards each one
/// of its parameter's shape gets its parameter's strides again, so that an interrupted and an uninterrupted run do the
/// same arithmetic in the same layout and stay bit-identical.
/// </summary>
internal static class OptimizerStateLayout
{
    public static void Save(OptimizerHelper optimizer, BinaryWriter writer) =>
        WithContiguousState(optimizer, () => optimizer.save_state_dict(writer));

    public static void Load(OptimizerHelper optimizer, BinaryReader reader) =>
        WithContiguousState(optimizer, () => optimizer.load_state_dict(reader));

    private static void WithContiguousState(OptimizerHelper optimizer, Action action)
    {
        // state_dict() lists the live state objects in parameter order, group after group, as parameters() does.
        var states = optimizer.state_dict().State;
        var parameters = optimizer.parameters().ToList();
        using var _ = no_grad();
        foreach (var state in states) Relayout(state, t => t.is_contiguous() ? null : t.contiguous());
        try
        {
            action();
        }
        finally
        {
            for (int i = 0; i < states.Count && i < parameters.Count; i++)
            {
                var p = parameters[i];
                var strides = p.stride();
                Relayout(states[i], t => t.shape.SequenceEqual(p.shape) && !t.stride().SequenceEqual(strides)
                    ? Layers.MemoryFormat.WithStrides(t, strides)
                    : null);
            }
        }
    }

    /// <summary>Replaces each tensor the state holds by <paramref name="convert"/>'s result, when it gives one.</summary>
    private static void Relayout(OptimizerState state, Func<Tensor, Tensor?> convert)
    {
        foreach (var field in TensorFields(state.GetType()))
        {
            if (field.GetValue(state) is not Tensor t || t.IsInvalid) continue;
            var converted = convert(t);
            if (converted is null) continue;
            field.SetValue(state, converted.DetachFromDisposeScope());
            t.Dispose();
        }
    }

    /// <summary>
    /// The fields of type <see cref="Tensor"/> a state class declares (public fields such as SGD's
    /// <c>momentum_buffer</c>, and the backing fields of properties such as <see cref="TfRmsPropState.MeanSquare"/>).
    /// The parameter a state refers to is a <see cref="Parameter"/> and is left alone.
    /// </summary>
    private static IEnumerable<FieldInfo> TensorFields(Type type)
    {
        for (var t = type; t is not null && t != typeof(OptimizerState); t = t.BaseType)
        {
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                if (f.FieldType == typeof(Tensor)) yield return f;
        }
    }
}
