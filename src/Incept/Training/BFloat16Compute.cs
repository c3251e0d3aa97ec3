using System.Reflection;
using Incept.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Training;

/// <summary>
/// Mixed-precision training in bfloat16 on the CPU, without an autocast: for one forward and backward pass the
/// convolution and linear layers hold bfloat16 copies of their float32 weights, the activations are bfloat16, and
/// the BatchNorms keep their float32 parameters and statistics (libtorch normalises a bfloat16 input with float32
/// parameters). After the backward pass the float32 weights are put back and receive the gradients converted to
/// float32, so the optimizer, the moving average, gradient clipping and checkpoints see only float32 tensors.
/// </summary>
/// <remarks>
/// Use one pass at a time: <c>using (compute.Enter()) { forward; loss; backward; }</c>, then the optimizer step.
/// The copies are made from the current weights on every <see cref="Enter"/>, so an optimizer step between passes
/// is always seen. The weights keep their memory layout (channels-last stays channels-last).
/// </remarks>
public sealed class BFloat16Compute
{
    private readonly Slot[] slots;
    private bool inPass;

    private BFloat16Compute(Slot[] slots) => this.slots = slots;

    /// <summary>The weights and biases that are computed in bfloat16: those of every convolution and linear layer.</summary>
    public int ParameterCount => slots.Length;

    /// <summary>Prepares <paramref name="model"/>'s convolution and linear layers (and those of its auxiliary heads).</summary>
    public static BFloat16Compute For(InceptionModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var slots = new List<Slot>();
        // TorchSharp's modules() lists the descendants only.
        foreach (var module in model.modules().Prepend(model))
        {
            var (weight, bias) = module switch
            {
                Convolution => (ConvWeight, ConvBias),
                Linear => (LinearWeight, LinearBias),
                _ => (null, null),
            };
            if (weight is null || bias is null) continue;
            slots.Add(new Slot(module, weight));
            if (bias.GetValue(module) is not null) slots.Add(new Slot(module, bias));
        }

        return new BFloat16Compute([.. slots]);
    }

    /// <summary>
    /// Gives the layers bfloat16 copies of their weights until the returned pass is disposed, which moves the
    /// gradients to the float32 weights and puts those back.
    /// </summary>
    public IDisposable Enter() => new Pass(this);

    /// <summary>
    /// <paramref name="model"/>'s forward pass on <paramref name="x"/> in bfloat16, logits back in float32; call it
    /// inside <see cref="Enter"/>.
    /// </summary>
    public ModelOutput Forward(InceptionModel model, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!inPass) throw new InvalidOperationException("The layers hold float32 weights outside a pass; call Forward inside Enter().");
        return ToFullPrecision(model.call(Input(x)));
    }

    /// <summary>The network's input in bfloat16 (same layout).</summary>
    public static Tensor Input(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return x.to(ScalarType.BFloat16);
    }

    /// <summary>The output's logits (main and auxiliary) in float32, for the loss and the metrics.</summary>
    public static ModelOutput ToFullPrecision(ModelOutput output)
    {
        ArgumentNullException.ThrowIfNull(output);
        return new ModelOutput(output.Logits.to(ScalarType.Float32), [.. output.Aux.Select(a => a with { Logits = a.Logits.to(ScalarType.Float32) })]);
    }

    private static readonly FieldInfo ConvWeight = Field(typeof(Convolution), "_weight");
    private static readonly FieldInfo ConvBias = Field(typeof(Convolution), "_bias");
    private static readonly FieldInfo LinearWeight = Field(typeof(Linear), "_weight");
    private static readonly FieldInfo LinearBias = Field(typeof(Linear), "_bias");

    private static FieldInfo Field(Type type, string name) =>
        type.GetField(name, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public) is { } f && f.FieldType == typeof(Parameter)
            ? f
            : throw new NotSupportedException($"This TorchSharp version has no {type.Name}.{name} parameter field; bfloat16 training needs TorchSharp 0.107.");

    /// <summary>One weight or bias field of one layer.</summary>
    private sealed record Slot(nn.Module Module, FieldInfo Field)
    {
        public Parameter Get() => (Parameter)Field.GetValue(Module)!;

        public void Set(Parameter value) => Field.SetValue(Module, value);
    }

    private sealed class Pass : IDisposable
    {
        private readonly BFloat16Compute owner;
        private readonly Parameter[] masters;
        private readonly Parameter[] copies;
        private bool done;

        public Pass(BFloat16Compute owner)
        {
            this.owner = owner;
            if (owner.inPass) throw new InvalidOperationException("A bfloat16 pass is already open; dispose it before entering another.");
            masters = new Parameter[owner.slots.Length];
            copies = new Parameter[owner.slots.Length];
            using var _ = no_grad();
            for (int i = 0; i < owner.slots.Length; i++)
            {
                var master = owner.slots[i].Get();
                masters[i] = master;
                // The copy is owned by this pass (outside any dispose scope) and disposed when it ends.
                var data = master.detach().to(ScalarType.BFloat16).DetachFromDisposeScope();
                copies[i] = new Parameter(data, requires_grad: master.requires_grad);
                owner.slots[i].Set(copies[i]);
            }

            owner.inPass = true;
        }

        public void Dispose()
        {
            if (done) return;
            done = true;
            owner.inPass = false;
            using var _ = no_grad();
            for (int i = 0; i < masters.Length; i++)
            {
                owner.slots[i].Set(masters[i]);
                using var grad = copies[i].grad;
                if (grad is not null)
                {
                    using var g = grad.to(ScalarType.Float32);
                    // Setting grad makes the parameter share g's tensor, so g's own handle can go.
                    if (masters[i].grad is { } existing)
                        existing.add_(g, Runtime.Scalars.One);
                    else
                        masters[i].grad = g;
                }

                copies[i].Dispose();
            }
        }
    }
}
