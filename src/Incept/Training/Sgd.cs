using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Training;

/// <summary>
/// Stochastic gradient descent with momentum, computed exactly as <c>torch.optim.SGD</c> does (and so as
/// TorchSharp's <c>SGD</c>), per parameter with gradient g:
/// <code>
/// g   ← g + wd·p                        (weight decay as an L2 penalty)
/// buf ← g on the first step, else μ·buf + (1 − dampening)·g
/// g   ← g + μ·buf with Nesterov momentum, else buf
/// p   ← p − lr·g
/// </code>
/// </summary>
/// <remarks>
/// Incept trains with this class instead of TorchSharp's <c>SGD</c> because TorchSharp 0.107's step passes its
/// hyperparameters to libtorch as implicit <c>Scalar</c> temporaries, which the garbage collector may finalise while
/// the native call still reads them (the race <see cref="Layers.BatchNormForward"/> works around). Here every scalar
/// is created once per group and step and disposed after the last native call that reads it.
/// </remarks>
public sealed class Sgd : OptimizerHelper, optim.IMomentum
{
    /// <summary>Creates the optimizer for parameter groups; a setting a group leaves unset takes the value given here.</summary>
    /// <param name="groups">The parameter groups (for instance weights with decay, biases and norms without).</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="momentum">Momentum μ (0: plain gradient descent).</param>
    /// <param name="dampening">Dampening of the gradient added to the momentum buffer.</param>
    /// <param name="weightDecay">L2 penalty coefficient.</param>
    /// <param name="nesterov">Use Nesterov momentum (needs μ &gt; 0 and no dampening).</param>
    public Sgd(IEnumerable<SgdParamGroup> groups, double lr, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var defaults = new SgdOptions
        {
            LearningRate = lr, InitialLearningRate = lr, Momentum = momentum, Dampening = dampening, WeightDecay = weightDecay, Nesterov = nesterov,
        };
        defaults.Validate();
        _defaults = defaults;
        _parameter_groups = [];
        foreach (var g in groups) add_param_group(g);
    }

    /// <summary>Creates the optimizer for one group of parameters.</summary>
    public Sgd(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
        : this([new SgdParamGroup(parameters)], lr, momentum, dampening, weightDecay, nesterov)
    {
    }

    /// <summary>The default momentum μ (for schedulers that cycle momentum); groups keep their own.</summary>
    public double Momentum
    {
        get => Defaults.Momentum!.Value;
        set => Defaults.Momentum = value;
    }

    private SgdOptions Defaults => (SgdOptions)_defaults;

    /// <summary>The momentum buffer of <paramref name="parameter"/>, or null before its first step (or without momentum).</summary>
    public Tensor? MomentumBufferOf(Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        return _state.TryGetValue(parameter.Handle, out var s)
            ? ((SgdState)s).MomentumBuffer
            : throw new ArgumentException("The optimizer does not train this parameter.", nameof(parameter));
    }

    /// <summary>Performs one update of every parameter that has a gradient.</summary>
    /// <param name="closure">Re-evaluates the model and returns the loss; optional.</param>
    /// <returns>The closure's loss, or null.</returns>
    public override Tensor step(Func<Tensor>? closure = null)
    {
        return _step<SgdParamGroup>(group =>
        {
            var o = group.Options;
            double mu = o.Momentum!.Value, wd = o.WeightDecay!.Value;
            bool nesterov = o.Nesterov!.Value;
            using var weightDecay = wd.ToScalar();
            using var momentum = mu.ToScalar();
            using var keep = (1 - o.Dampening!.Value).ToScalar();
            using var step = (-o.LearningRate!.Value).ToScalar();
            foreach (var p in group.Parameters)
            {
                using var scope = NewDisposeScope();
                var g = p.grad;
                if (g is null) continue;
                var state = (SgdState)_state[p.Handle];
                if (wd != 0) g = g.add(p, weightDecay);
                if (mu != 0)
                {
                    if (state.MomentumBuffer is null) state.MomentumBuffer = g.clone().detach().DetachFromDisposeScope();
                    else state.MomentumBuffer.mul_(momentum).add_(g, keep);
                    g = nesterov ? g.add(state.MomentumBuffer, momentum) : state.MomentumBuffer;
                }

                p.add_(g, step);
            }
        }, closure);
    }

    /// <summary>Adds a parameter group; settings it leaves unset take the optimizer's defaults.</summary>
    /// <param name="param_group">An <see cref="SgdParamGroup"/>, or a plain group whose parameters take the defaults.</param>
    public override void add_param_group(ParamGroup param_group)
    {
        ArgumentNullException.ThrowIfNull(param_group);
        if (param_group is not SgdParamGroup group)
        {
            if (param_group.Options is not null and not SgdOptions)
                throw new ArgumentException($"Sgd takes {nameof(SgdOptions)}; got {param_group.Options.GetType().Name}.", nameof(param_group));
            group = new SgdParamGroup(param_group.Parameters, (SgdOptions?)param_group.Options);
        }

        var d = Defaults;
        var o = group.Options ??= new SgdOptions();
        o.LearningRate ??= d.LearningRate;
        o.Momentum ??= d.Momentum;
        o.Dampening ??= d.Dampening;
        o.WeightDecay ??= d.WeightDecay;
        o.Nesterov ??= d.Nesterov;
        o.Validate();
        o.InitialLearningRate = o.LearningRate!.Value;
        group.Parameters = group.Parameters.ToList();
        _parameter_groups.Add(group);
        foreach (var p in group.Parameters) _state[p.Handle] = new SgdState(p);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        foreach (var (_, state) in _state) ((SgdState)state).Dispose();
        _state.Clear();
    }
}

/// <summary>The hyperparameters of one <see cref="Sgd"/> parameter group; null takes the optimizer's default.</summary>
public sealed class SgdOptions : OptimizerOptions
{
    /// <summary>Momentum μ.</summary>
    public double? Momentum { get; set; }

    /// <summary>Dampening of the gradient added to the momentum buffer.</summary>
    public double? Dampening { get; set; }

    /// <summary>L2 penalty coefficient.</summary>
    public double? WeightDecay { get; set; }

    /// <summary>Nesterov momentum.</summary>
    public bool? Nesterov { get; set; }

    /// <inheritdoc/>
    public override void SaveStateDict(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        base.SaveStateDict(writer);
        writer.Write(Momentum!.Value);
        writer.Write(Dampening!.Value);
        writer.Write(WeightDecay!.Value);
        writer.Write(Nesterov!.Value);
    }

    /// <inheritdoc/>
    public override void LoadStateDict(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        base.LoadStateDict(reader);
        Momentum = reader.ReadDouble();
        Dampening = reader.ReadDouble();
        WeightDecay = reader.ReadDouble();
        Nesterov = reader.ReadBoolean();
    }

    /// <inheritdoc/>
    public override void LoadStateDict(OptimizerOptions source)
    {
        if (source is not SgdOptions o)
            throw new ArgumentException($"Sgd options can only be loaded from {nameof(SgdOptions)}.", nameof(source));
        base.LoadStateDict(source);
        (Momentum, Dampening, WeightDecay, Nesterov) = (o.Momentum, o.Dampening, o.WeightDecay, o.Nesterov);
    }

    internal void Validate()
    {
        TrainingSettingException.CheckRange("learning_rate", LearningRate ?? 0, 0);
        TrainingSettingException.CheckRange("momentum", Momentum ?? 0, 0, 1);
        TrainingSettingException.CheckRange("weight_decay", WeightDecay ?? 0, 0);
        if (Nesterov == true && (Momentum is not > 0 || Dampening is not (null or 0)))
            throw new TrainingSettingException("nesterov", "Nesterov momentum needs a momentum above 0 and no dampening.");
    }
}

/// <summary>A group of parameters that share <see cref="Sgd"/> hyperparameters.</summary>
public sealed class SgdParamGroup : ParamGroup<SgdOptions>, optim.IMomentum
{
    /// <summary>Creates a group whose settings all take the optimizer's defaults.</summary>
    public SgdParamGroup(IEnumerable<Parameter> parameters) : base(parameters, new SgdOptions()) { }

    /// <summary>Creates a group with its own settings (null fields take the optimizer's defaults).</summary>
    public SgdParamGroup(IEnumerable<Parameter> parameters, SgdOptions? options) : base(parameters, options ?? new SgdOptions()) { }

    /// <summary>The group's momentum μ.</summary>
    public double Momentum
    {
        get => Options.Momentum ?? 0;
        set => Options.Momentum = value;
    }
}

/// <summary>The state <see cref="Sgd"/> keeps for one parameter: its momentum buffer, made on the first step.</summary>
public sealed class SgdState : OptimizerState, IDisposable
{
    internal SgdState(Parameter parameter) : base(parameter) { }

    /// <summary>Nothing to set up: the buffer is made from the first gradient, as PyTorch does.</summary>
    public override void Initialize(OptimizerOptions options) { }

    /// <summary>The momentum buffer, of the parameter's shape; null before the first step.</summary>
    public Tensor? MomentumBuffer { get; internal set; }

    /// <inheritdoc/>
    public override void SaveStateDict(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        SaveConditionalStateTensor(writer, MomentumBuffer);
    }

    /// <inheritdoc/>
    public override void LoadStateDict(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var buffer = MomentumBuffer;
        LoadConditionalStateTensor(reader, ref buffer, _parameter.device);
        MomentumBuffer = buffer;
    }

    /// <inheritdoc/>
    public override void LoadStateDict(OptimizerState source)
    {
        if (source is not SgdState s)
            throw new ArgumentException($"Sgd state can only be loaded from {nameof(SgdState)}.", nameof(source));
        MomentumBuffer?.Dispose();
        MomentumBuffer = s.MomentumBuffer?.clone().DetachFromDisposeScope();
    }

    /// <inheritdoc/>
    public override bool ApproximatelyEquals(OptimizerState other) =>
        other is SgdState s && (MomentumBuffer is null ? s.MomentumBuffer is null : s.MomentumBuffer is not null && s.MomentumBuffer.allclose(MomentumBuffer));

    /// <inheritdoc/>
    public override void to(Device device)
    {
        if (MomentumBuffer is null) return;
        var moved = MomentumBuffer.to(device);
        if (ReferenceEquals(moved, MomentumBuffer)) return;
        MomentumBuffer.Dispose();
        MomentumBuffer = moved.DetachFromDisposeScope();
    }

    /// <summary>Frees the momentum buffer.</summary>
    public void Dispose() => MomentumBuffer?.Dispose();
}
