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

    /// <summary>
    /// The largest im2col buffer, in bytes, that one convolution may ask libtorch for at once; larger batches are
    /// convolved in slices (same values, same speed, less memory: see <see cref="Layers.BatchSplitConvolution"/>).
    /// Null, the default, chooses <see cref="DefaultColumnBudgetBytes"/> when libtorch convolves without oneDNN (which is
    /// when it unfolds whole batches) and no limit otherwise; 0 never splits.
    /// </summary>
    public long? ColumnBudgetBytes { get; init; }

    /// <summary>The column budget chosen when libtorch convolves without oneDNN: 16 MiB.</summary>
    public const long DefaultColumnBudgetBytes = 16L << 20;

    /// <summary>
    /// The most images that go through the network in one pass; a larger batch is run in passes of this many and the
    /// logits concatenated (the same values). Without oneDNN libtorch convolves image by image anyway, so passes run
    /// nearly as fast as the whole batch while holding a fraction of its activations (inception_v4 at batch 16, passes
    /// of 8: 656 instead of 851 MiB at about 2 % of the speed; of 4: 530 MiB at 3–9 %). Null, the default, chooses
    /// <see cref="DefaultImagesPerPass"/> when libtorch convolves without oneDNN and the whole batch otherwise (oneDNN's
    /// kernels gain from large batches); 0 always takes the whole batch.
    /// </summary>
    public int? ImagesPerPass { get; init; }

    /// <summary>
    /// Compute stride-1 convolutions by Winograd's minimal filtering where the CPU has 256-bit or 512-bit vectors, the
    /// weights are float32 (not with <see cref="BFloat16"/>), the BatchNorms are folded and both channel counts are
    /// multiples of 16: 3×3 kernels by F(4×4, 3×3) (4× fewer multiplications; F(2×2, 3×3), 2.25×, for layers with more
    /// than 256×256 channels), 5×5 by F(2×2, 5×5), and 1×7 and 7×1 by F(3, 7). 1.9–2.4× faster per 3×3 layer on a Zen 5
    /// core pair at batch 8. The transformed weights replace the layers' own, so the copy grows by the difference only
    /// (36/9, 16/9, 36/25 and 9/7 of the layers' weights). The outputs differ from libtorch's by float32 rounding. On
    /// by default; off leaves every convolution to libtorch.
    /// </summary>
    public bool Winograd { get; init; } = true;

    /// <summary>
    /// Compute the convolutions that Winograd's method does not take (1×1 layers, strided and 1×3 or 3×1 kernels, image
    /// stems) and the Inception-ResNet blocks' projections with their residual sums as Incept's own matrix product,
    /// where the CPU has AVX2 with FMA (<see cref="Layers.PanelProduct.Pays"/>; 512-bit kernels where it has AVX-512, not
    /// yet measured against oneDNN's AVX-512 kernels, only against MKL's), the weights are float32 (not with <see cref="BFloat16"/>) and the BatchNorms are
    /// folded: the weights are laid out once in panels of 16 output channels (see <see cref="Layers.PanelProduct"/>),
    /// where libtorch would copy them into its own layout on every call. The gain is largest at batch 1, where the last
    /// stages' small grids multiply a few dozen rows by the largest weights (docs/benchmarks.md). The panels replace the
    /// layers' own weights. The outputs differ from libtorch's by float32 rounding. On by default; off leaves these
    /// layers to libtorch.
    /// </summary>
    public bool Panels { get; init; } = true;

    /// <summary>The pass size chosen when libtorch convolves without oneDNN: 8 images.</summary>
    public const int DefaultImagesPerPass = 8;
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

    private FastTorchEngine(InceptionModel model, FastTorchOptions options, int foldedUnits, int winogradUnits, int panelLayers, long columnBudget, int imagesPerPass)
    {
        PanelLayers = panelLayers;
        this.model = model;
        Options = options;
        FoldedUnits = foldedUnits;
        WinogradUnits = winogradUnits;
        ColumnBudgetBytes = columnBudget;
        ImagesPerPass = imagesPerPass;
    }

    /// <inheritdoc/>
    public string Name => Options.BFloat16 ? "fast-bf16" : Options.Winograd ? "fast" : "fast-no-winograd";

    /// <summary>How the copy was prepared.</summary>
    public FastTorchOptions Options { get; }

    /// <summary>How many BatchNorms were folded into their convolutions.</summary>
    public int FoldedUnits { get; }

    /// <summary>How many conv units compute their convolution by Winograd's method (see <see cref="FastTorchOptions.Winograd"/>).</summary>
    public int WinogradUnits { get; }

    /// <summary>How many convolutions (conv units and residual projections) are panel products (see <see cref="FastTorchOptions.Panels"/>).</summary>
    public int PanelLayers { get; }

    /// <summary>The im2col budget in use (see <see cref="FastTorchOptions.ColumnBudgetBytes"/>; 0: none).</summary>
    public long ColumnBudgetBytes { get; }

    /// <summary>The most images one pass through the network takes (see <see cref="FastTorchOptions.ImagesPerPass"/>; 0: the whole batch).</summary>
    public int ImagesPerPass { get; }

    /// <summary>The engine's prepared copy of the model (for tests).</summary>
    internal InceptionModel Model => model;

    /// <summary>
    /// Builds the engine from <paramref name="source"/>, an instance of <paramref name="spec"/>'s architecture
    /// (on any device; the copy lives on the CPU). The source model is not changed, unless <paramref name="releaseModel"/>
    /// hands it over: then a model on the CPU is prepared in place and becomes the engine's copy (never two sets of weights
    /// at once), and one on another device is disposed once copied. Either way the caller must not use it afterwards;
    /// disposing it after the engine does nothing.
    /// </summary>
    public static FastTorchEngine Create(ModelSpec spec, InceptionModel source, FastTorchOptions? options = null, bool releaseModel = false)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(source);
        options ??= new FastTorchOptions();
        if (options.ColumnBudgetBytes < 0 || options.ImagesPerPass < 0)
            throw new ArgumentOutOfRangeException(nameof(options), "The column budget and the images per pass are 0 (no limit) or more.");
        // A model handed over on the CPU becomes the engine's copy itself: building a second one would hold two sets of
        // weights at once, which for inception_v4 is 170 MB more at the peak.
        bool adopt = releaseModel && source.parameters().All(p => p.device_type == DeviceType.CPU);
        var copy = adopt ? source : spec.Build(source.Config with { AuxLogits = false, NumClasses = source.NumClasses });
        try
        {
            if (copy.GetType() != source.GetType())
                throw new ArgumentException($"The model is a {source.GetType().Name}, but {spec.Name} builds a {copy.GetType().Name}; pass the spec the model was built from.", nameof(spec));
            if (!adopt) CopyState(source, copy);
            copy.eval();
            int folded = 0, winograd = 0, panels = 0;
            bool unfolds = Runtime.TorchRuntime.OneDnnInUse != true;
            long budget = options.ColumnBudgetBytes ?? (unfolds ? FastTorchOptions.DefaultColumnBudgetBytes : 0);
            using (no_grad())
            {
                if (options.FoldBatchNorm)
                {
                    foreach (var unit in copy.ConvBnUnits())
                    {
                        if (unit.Bn is not null) folded++;
                        unit.FoldBatchNorm();
                        unit.ColumnBudgetBytes = budget;
                    }
                }

                foreach (var p in copy.parameters()) p.requires_grad = false;
                if (options.BFloat16) copy.to(ScalarType.BFloat16);
                if (options.ChannelsLast) MemoryFormat.ToChannelsLast(copy);
                // Each transformed weight replaces the unit's own weight, so the copy grows by the difference only.
                if (options.Winograd && options.FoldBatchNorm && !options.BFloat16)
                    winograd = copy.ConvBnUnits().Count(unit => unit.PrepareWinograd());
                // After Winograd's method, which takes the convolutions it can first.
                if (options.Panels && PanelProduct.Pays && options.FoldBatchNorm && !options.BFloat16)
                {
                    panels = copy.ConvBnUnits().Count(unit => unit.PreparePanels());
                    panels += copy.modules().OfType<IProjectedResidual>().Count(block => block.PreparePanels());
                }
            }

            int perPass = options.ImagesPerPass ?? (unfolds ? FastTorchOptions.DefaultImagesPerPass : 0);
            var engine = new FastTorchEngine(copy, options, folded, winograd, panels, budget, perPass);
            if (releaseModel && !adopt) source.Dispose();
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
            logits = Forward(x);
            if (Options.BFloat16) logits = logits.to(ScalarType.Float32);
        }

        // A copy made outside inference mode is an ordinary tensor, which the caller may use in any way.
        return logits.contiguous().clone().MoveToOuterDisposeScope();
    }

    // A batch larger than ImagesPerPass goes through in passes of that many images; the logits are concatenated.
    private Tensor Forward(Tensor x)
    {
        long batch = x.shape[0];
        if (ImagesPerPass <= 0 || batch <= ImagesPerPass) return model.call(x).Logits;
        var parts = new List<Tensor>();
        for (long start = 0; start < batch; start += ImagesPerPass)
        {
            using var slice = x.narrow(0, start, Math.Min(ImagesPerPass, batch - start));
            parts.Add(model.call(slice).Logits);
        }

        return cat(parts, 0);
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
