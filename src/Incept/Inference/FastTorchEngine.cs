using Incept.Layers;
using Incept.Models;
using Incept.Registry;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Inference;

/// <summary>How <see cref="FastTorchEngine"/> prepares its copy of a model.</summary>
public sealed record FastTorchOptions
{
    /// <summary>Fold every BatchNorm into the convolution before it (conv bias = folded shift) and apply the conv units' ReLU in place.</summary>
    public bool FoldBatchNorm { get; init; } = true;

    /// <summary>
    /// Run in the channels-last memory layout (N×C×H×W shapes with N×H×W×C strides), which libtorch's oneDNN
    /// convolutions run faster on the CPU. Inputs are converted on entry; the logits are the same.
    /// </summary>
    public bool ChannelsLast { get; init; } = true;

    /// <summary>
    /// Hold the weights and run the network in bfloat16 (8-bit mantissa), which CPUs with AVX-512 BF16 or AMX
    /// multiply natively. Inputs are converted on entry and the logits returned in float32; they differ from the
    /// float32 logits by the rounding of every layer (about 1 % of the largest logit), so top-1 may change on
    /// close calls. Off by default.
    /// </summary>
    public bool BFloat16 { get; init; }
}

/// <summary>
/// The fast TorchSharp inference path: a private copy of a model prepared once for evaluation on the CPU, with the
/// BatchNorms folded into the convolutions and the weights in the channels-last layout, run under
/// <c>torch.inference_mode</c>. Its logits equal the model's own evaluation logits up to float32 rounding.
/// </summary>
/// <remarks>
/// The copy does not follow later changes to the source model: build a new engine after training or loading
/// other weights. The auxiliary heads, which never run at inference, are not copied.
/// </remarks>
public sealed class FastTorchEngine : IInferenceEngine
{
    private readonly InceptionModel model;

    private FastTorchEngine(InceptionModel model, FastTorchOptions options, int foldedUnits)
    {
        this.model = model;
        Options = options;
        FoldedUnits = foldedUnits;
    }

    /// <inheritdoc/>
    public string Name => Options.BFloat16 ? "fast-bf16" : "fast";

    /// <summary>How the copy was prepared.</summary>
    public FastTorchOptions Options { get; }

    /// <summary>How many BatchNorms were folded into their convolutions.</summary>
    public int FoldedUnits { get; }

    /// <summary>
    /// Builds the engine from <paramref name="source"/>, an instance of <paramref name="spec"/>'s architecture
    /// (on any device; the copy lives on the CPU). The source model is not changed; with <paramref name="releaseModel"/>
    /// it is disposed once copied, so that only the engine's weights stay in memory (it must not be used afterwards).
    /// </summary>
    public static FastTorchEngine Create(ModelSpec spec, InceptionModel source, FastTorchOptions? options = null, bool releaseModel = false)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(source);
        options ??= new FastTorchOptions();
        var config = source.Config with { AuxLogits = false, NumClasses = source.NumClasses };
        var copy = spec.Build(config);
        try
        {
            if (copy.GetType() != source.GetType())
                throw new ArgumentException($"The model is a {source.GetType().Name}, but {spec.Name} builds a {copy.GetType().Name}; pass the spec the model was built from.", nameof(spec));
            CopyState(source, copy);
            copy.eval();
            int folded = 0;
            using (no_grad())
            {
                if (options.FoldBatchNorm)
                {
                    foreach (var unit in copy.ConvBnUnits())
                    {
                        if (unit.Bn is not null) folded++;
                        unit.FoldBatchNorm();
                    }
                }

                foreach (var p in copy.parameters()) p.requires_grad = false;
                if (options.BFloat16) copy.to(ScalarType.BFloat16);
                if (options.ChannelsLast) MemoryFormat.ToChannelsLast(copy);
            }

            var engine = new FastTorchEngine(copy, options, folded);
            if (releaseModel) source.Dispose();
            return engine;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public Tensor Run(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dtype != ScalarType.Float32)
            throw new InceptException($"The inference engine takes float32 images; got {input.dtype}. Convert the batch to float32 first.");
        using var scope = NewDisposeScope();
        Tensor logits;
        using (inference_mode())
        {
            var x = input.device_type == DeviceType.CPU ? input : input.cpu();
            if (Options.BFloat16) x = x.to(ScalarType.BFloat16);
            if (Options.ChannelsLast && x.dim() == 4) x = MemoryFormat.ToChannelsLast(x);
            logits = model.call(x).Logits;
            if (Options.BFloat16) logits = logits.to(ScalarType.Float32);
        }

        // A copy made outside inference mode is an ordinary tensor, which the caller may use in any way.
        return logits.contiguous().clone().MoveToOuterDisposeScope();
    }

    /// <summary>Disposes the engine's copy of the model.</summary>
    public void Dispose() => model.Dispose();

    private static void CopyState(InceptionModel source, InceptionModel copy)
    {
        var from = source.state_dict();
        using var _ = no_grad();
        foreach (var (name, target) in copy.state_dict())
        {
            if (!from.TryGetValue(name, out var value) || !value.shape.SequenceEqual(target.shape))
                throw new ArgumentException($"The model has no '{name}' of shape [{string.Join(", ", target.shape)}]; pass the spec the model was built from.", nameof(source));
            target.copy_(value);
        }
    }
}
