using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Models;

/// <summary>
/// The contract every Incept model follows, whatever its family: a feature extractor, a head,
/// a classifier that can be reset, feature information, and a typed output that carries auxiliary
/// logits in training.
/// </summary>
public abstract class InceptionModel : nn.Module<Tensor, ModelOutput>
{
    private nn.Module[] heldInEvaluation = [];

    /// <summary>Builds the shared part of a model.</summary>
    protected InceptionModel(string name, ModelConfig config) : base(name)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        NumClasses = config.NumClasses;
    }

    /// <summary>The settings the model was built with.</summary>
    public ModelConfig Config { get; }

    /// <summary>Classes of the current classifier (0 when the model has none).</summary>
    public int NumClasses { get; protected set; }

    /// <summary>Channels of the pooled features that the classifier reads.</summary>
    public abstract int NumFeatures { get; }

    /// <summary>The feature maps the model exposes, from the stem to the last stage.</summary>
    public abstract IReadOnlyList<FeatureInfo> FeatureInfo { get; }

    /// <summary>The smallest square input (in pixels) the network accepts.</summary>
    public abstract int MinInputSize { get; }

    /// <summary>The smallest square input the auxiliary heads accept (they run only in training).</summary>
    public virtual int MinAuxInputSize => MinInputSize;

    /// <summary>Whether the model was built with auxiliary heads.</summary>
    public bool HasAux => Config.AuxLogits;

    /// <summary>Runs the network up to the last feature map (before global pooling).</summary>
    public Tensor ForwardFeatures(Tensor x)
    {
        CheckInput(x);
        return ForwardFeatures(x, null);
    }

    /// <summary>
    /// Pools the last feature map and applies the classifier; with <paramref name="preLogits"/> returns
    /// the pooled features instead of the logits.
    /// </summary>
    public abstract Tensor ForwardHead(Tensor features, bool preLogits = false);

    /// <summary>Replaces the classifier by a freshly initialised one with <paramref name="numClasses"/> outputs (0: none).</summary>
    public abstract void ResetClassifier(int numClasses);

    /// <summary>
    /// The model's top-level stages in forward order, as (name, module): the rows of a summary.
    /// By default the registered children.
    /// </summary>
    public virtual IEnumerable<(string Name, nn.Module Module)> Stages() => named_children();

    /// <summary>
    /// Modules that stay in evaluation mode when the model is switched to training mode: the BatchNorm layers of a
    /// frozen backbone, whose running statistics must not move (see <see cref="HoldInEvaluation"/>). Empty by default.
    /// </summary>
    public IReadOnlyList<nn.Module> HeldInEvaluation => heldInEvaluation;

    /// <summary>
    /// Keeps <paramref name="modules"/> (submodules of this model) in evaluation mode from now on, whatever
    /// <see cref="train"/> asks, until the next call replaces the set; an empty set releases them. Applies the current
    /// mode at once.
    /// </summary>
    public void HoldInEvaluation(IEnumerable<nn.Module> modules)
    {
        ArgumentNullException.ThrowIfNull(modules);
        var previous = heldInEvaluation;
        heldInEvaluation = [.. modules];
        foreach (var m in previous) m.train(training);
        train(training);
    }

    /// <summary>Sets training or evaluation mode; modules in <see cref="HeldInEvaluation"/> stay in evaluation mode.</summary>
    public override void train(bool train = true)
    {
        base.train(train);
        foreach (var m in heldInEvaluation) m.train(false);
    }

    /// <summary>
    /// Every conv unit (convolution, optional BatchNorm, ReLU) that an inference copy may fold (see <see cref="IConvBnUnit"/>).
    /// By default the registered modules that are such units; families whose units are not registered modules list them.
    /// </summary>
    internal virtual IEnumerable<IConvBnUnit> ConvBnUnits() => modules().OfType<IConvBnUnit>();

    /// <summary>Runs the network; auxiliary heads run only in training.</summary>
    public override ModelOutput forward(Tensor input)
    {
        CheckInput(input);
        using var scope = NewDisposeScope();
        List<AuxOutput>? aux = training && HasAux ? [] : null;
        if (aux is not null && (input.shape[2] < MinAuxInputSize || input.shape[3] < MinAuxInputSize))
            throw new InputShapeException($"{GetName()} with auxiliary heads needs training inputs of at least {MinAuxInputSize}×{MinAuxInputSize} pixels; got {input.shape[2]}×{input.shape[3]}. Use larger inputs or build the model without aux heads.");
        var features = ForwardFeatures(input, aux);
        var logits = ForwardHead(features).MoveToOuterDisposeScope();
        if (aux is null) return new ModelOutput(logits);
        foreach (var a in aux) a.Logits.MoveToOuterDisposeScope();
        return new ModelOutput(logits, aux);
    }

    /// <summary>
    /// The family's feature extractor. When <paramref name="aux"/> is not null the auxiliary heads run
    /// and add their logits to it.
    /// </summary>
    protected abstract Tensor ForwardFeatures(Tensor x, List<AuxOutput>? aux);

    /// <summary>
    /// One stage of a forward pass: returns <paramref name="output"/> and frees <paramref name="input"/> at once when
    /// <paramref name="scope"/> (the pass's own scope) owns it, instead of at the end of the pass. Only the handle
    /// goes: autograd keeps what backward needs, so this matters at inference, where it bounds the memory of the
    /// activations to a few stages, as in PyTorch. Tensors the pass does not own (its input, or a copy a hook put
    /// in place, as Grad-CAM does) are left alone.
    /// </summary>
    protected static Tensor Advance(Tensor input, Tensor output, DisposeScope scope)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(scope);
        if (!ReferenceEquals(input, output) && scope.Contains(input)) input.Dispose();
        return output;
    }

    /// <summary>Puts <paramref name="module"/> in place of the registered child <paramref name="name"/>, keeping its position in the state dict.</summary>
    protected void ReplaceChild(string name, nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        _internal_submodules[name] = module;
    }

    /// <summary>
    /// Disposes the classifier <paramref name="current"/> registered as <paramref name="name"/>, registers a fresh
    /// one from <see cref="NumFeatures"/> to <paramref name="numClasses"/> (an identity for 0) in its place, records
    /// the class count and returns the new classifier: the body of most families' <see cref="ResetClassifier"/>.
    /// </summary>
    protected nn.Module<Tensor, Tensor> ReplaceClassifier(string name, nn.Module<Tensor, Tensor> current, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentOutOfRangeException.ThrowIfNegative(numClasses);
        current.Dispose();
        var replacement = Classifier(NumFeatures, numClasses);
        ReplaceChild(name, replacement);
        NumClasses = numClasses;
        return replacement;
    }

    /// <summary>A classifier from <paramref name="inFeatures"/> to <paramref name="numClasses"/>, or an identity when there are no classes.</summary>
    protected static nn.Module<Tensor, Tensor> Classifier(long inFeatures, int numClasses)
        => numClasses > 0 ? nn.Linear(inFeatures, numClasses) : nn.Identity();

    /// <summary>Throws an <see cref="InputShapeException"/> unless <paramref name="x"/> is N×C×H×W with the model's channels and at least its minimum size.</summary>
    protected void CheckInput(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4)
            throw new InputShapeException($"{GetName()} takes a batch of images shaped N×C×H×W; got a tensor with {x.dim()} dimensions [{string.Join(", ", x.shape)}].");
        if (x.shape[1] != Config.InChannels)
            throw new InputShapeException($"{GetName()} was built for {Config.InChannels} input channels; got {x.shape[1]}. Convert the images or build the model with InChannels = {x.shape[1]}.");
        if (x.shape[2] < MinInputSize || x.shape[3] < MinInputSize)
            throw new InputShapeException($"{GetName()} needs inputs of at least {MinInputSize}×{MinInputSize} pixels; got {x.shape[2]}×{x.shape[3]}. Resize the images to {MinInputSize} pixels or more.");
    }
}
