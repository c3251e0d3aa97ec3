using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Training;

/// <summary>
/// RMSProp as TensorFlow defines it (<c>tf.compat.v1.train.RMSPropOptimizer</c>, <c>ApplyRMSProp</c>), the optimizer
/// of the Inception-v3 and Inception-v4 papers. Per parameter, with gradient g:
/// <code>
/// ms  ← ρ·ms + (1 − ρ)·g²          (ms starts at 1, TensorFlow's "rms" slot)
/// mom ← μ·mom + lr·g / √(ms + ε)   (mom starts at 0; ε is inside the square root)
/// p   ← p − mom
/// </code>
/// PyTorch's <c>RMSprop</c> differs: ε is added after the square root, ms starts at 0 and the learning rate multiplies
/// the momentum buffer instead of entering it, so the two disagree whenever the learning rate changes.
/// The papers' recipe is ρ = 0.9, μ = 0.9, ε = 1.0.
/// </summary>
/// <remarks>
/// Weight decay is by default an L2 penalty added to the gradient (g ← g + wd·p), which is what TF-slim's
/// <c>l2_regularizer(wd)</c> contributes; with <see cref="TfRmsPropOptions.DecoupledWeightDecay"/> the parameter is
/// instead shrunk by lr·wd before the update. Learning-rate schedulers from <c>torch.optim.lr_scheduler</c> work
/// through <see cref="torch.optim.Optimizer.ParamGroups"/>; <c>save_state_dict</c>/<c>load_state_dict</c> round-trip the
/// per-parameter state, which <see cref="States"/> also exposes as tensors.
/// </remarks>
public sealed class TfRmsProp : OptimizerHelper, optim.IMomentum
{
    /// <summary>Creates the optimizer for <paramref name="parameters"/> with the papers' defaults.</summary>
    /// <param name="parameters">The parameters to train.</param>
    /// <param name="lr">Learning rate (0.045 in the Inception-v3 paper).</param>
    /// <param name="rho">Decay of the mean square of the gradient (TensorFlow's <c>decay</c>).</param>
    /// <param name="momentum">Momentum μ.</param>
    /// <param name="eps">ε, added to the mean square inside the square root.</param>
    /// <param name="weightDecay">Weight decay coefficient.</param>
    /// <param name="decoupledWeightDecay">Shrink the weights directly instead of adding wd·p to the gradient.</param>
    public TfRmsProp(IEnumerable<Parameter> parameters, double lr, double rho = 0.9, double momentum = 0.9, double eps = 1.0,
        double weightDecay = 0, bool decoupledWeightDecay = false)
        : this([new TfRmsPropParamGroup(parameters)], lr, rho, momentum, eps, weightDecay, decoupledWeightDecay)
    {
    }

    /// <summary>
    /// Creates the optimizer for parameter groups; a setting a group leaves unset takes the value given here.
    /// </summary>
    /// <param name="groups">The parameter groups (for instance weights with decay, biases and norms without).</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="rho">Decay of the mean square of the gradient.</param>
    /// <param name="momentum">Momentum μ.</param>
    /// <param name="eps">ε, added to the mean square inside the square root.</param>
    /// <param name="weightDecay">Weight decay coefficient.</param>
    /// <param name="decoupledWeightDecay">Shrink the weights directly instead of adding wd·p to the gradient.</param>
    public TfRmsProp(IEnumerable<TfRmsPropParamGroup> groups, double lr, double rho = 0.9, double momentum = 0.9, double eps = 1.0,
        double weightDecay = 0, bool decoupledWeightDecay = false)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var defaults = new TfRmsPropOptions
        {
            LearningRate = lr,
            InitialLearningRate = lr,
            Rho = rho,
            Momentum = momentum,
            Eps = eps,
            WeightDecay = weightDecay,
            DecoupledWeightDecay = decoupledWeightDecay,
        };
        defaults.Validate();
        _defaults = defaults;
        _parameter_groups = [];
        foreach (var g in groups) add_param_group(g);
    }

    /// <summary>The default momentum μ (for schedulers that cycle momentum); groups keep their own.</summary>
    public double Momentum
    {
        get => Defaults.Momentum!.Value;
        set => Defaults.Momentum = value;
    }

    /// <summary>The per-parameter state (mean square, momentum, step), in the order of the groups' parameters.</summary>
    public IReadOnlyList<TfRmsPropState> States =>
        _parameter_groups.SelectMany(g => g.Parameters).Select(p => (TfRmsPropState)_state[p.Handle]).ToList();

    /// <summary>The state of one parameter.</summary>
    /// <exception cref="ArgumentException">The optimizer does not train <paramref name="parameter"/>.</exception>
    public TfRmsPropState StateOf(Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        return _state.TryGetValue(parameter.Handle, out var s)
            ? (TfRmsPropState)s
            : throw new ArgumentException("The optimizer does not train this parameter.", nameof(parameter));
    }

    private TfRmsPropOptions Defaults => (TfRmsPropOptions)_defaults;

    /// <summary>Performs one update of every parameter that has a gradient.</summary>
    /// <param name="closure">Re-evaluates the model and returns the loss; optional.</param>
    /// <returns>The closure's loss, or null.</returns>
    public override Tensor step(Func<Tensor>? closure = null)
    {
        return _step<TfRmsPropParamGroup>(group =>
        {
            var o = group.Options;
            var lr = o.LearningRate!.Value;
            var rho = o.Rho!.Value;
            var mu = o.Momentum!.Value;
            var eps = o.Eps!.Value;
            var wd = o.WeightDecay!.Value;
            var decoupled = o.DecoupledWeightDecay!.Value;
            // Explicit scalars, alive until the last native call that reads them (see Sgd's remarks).
            using var shrink = (1 - lr * wd).ToScalar();
            using var decay = wd.ToScalar();
            using var rhoS = rho.ToScalar();
            using var fresh = (1 - rho).ToScalar();
            using var epsS = eps.ToScalar();
            using var muS = mu.ToScalar();
            using var lrS = lr.ToScalar();
            foreach (var p in group.Parameters)
            {
                using var scope = NewDisposeScope();
                var g = p.grad;
                if (g is null) continue;
                var state = (TfRmsPropState)_state[p.Handle];
                state.Step++;
                if (wd != 0)
                {
                    if (decoupled) p.mul_(shrink);
                    else g = g.add(p, decay);
                }
                state.MeanSquare.mul_(rhoS).addcmul_(g, g, fresh);
                var rms = state.MeanSquare.add(epsS, Runtime.Scalars.One).sqrt_();
                state.Momentum.mul_(muS).addcdiv_(g, rms, lrS);
                p.sub_(state.Momentum);
            }
        }, closure);
    }

    /// <summary>Adds a parameter group; settings it leaves unset take the optimizer's defaults.</summary>
    /// <param name="param_group">A <see cref="TfRmsPropParamGroup"/>, or a plain group whose parameters take the defaults.</param>
    public override void add_param_group(ParamGroup param_group)
    {
        ArgumentNullException.ThrowIfNull(param_group);
        if (param_group is not TfRmsPropParamGroup group)
        {
            if (param_group.Options is not null and not TfRmsPropOptions)
                throw new ArgumentException($"TfRmsProp takes {nameof(TfRmsPropOptions)}; got {param_group.Options.GetType().Name}.", nameof(param_group));
            group = new TfRmsPropParamGroup(param_group.Parameters, (TfRmsPropOptions?)param_group.Options);
        }
        var d = Defaults;
        var o = group.Options ??= new TfRmsPropOptions();
        o.LearningRate ??= d.LearningRate;
        o.Rho ??= d.Rho;
        o.Momentum ??= d.Momentum;
        o.Eps ??= d.Eps;
        o.WeightDecay ??= d.WeightDecay;
        o.DecoupledWeightDecay ??= d.DecoupledWeightDecay;
        o.Validate();
        o.InitialLearningRate = o.LearningRate!.Value;
        group.Parameters = group.Parameters.ToList();
        _parameter_groups.Add(group);
        foreach (var p in group.Parameters)
        {
            var state = new TfRmsPropState(p);
            state.Initialize(o);
            _state[p.Handle] = state;
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        foreach (var (_, state) in _state) ((TfRmsPropState)state).Dispose();
        _state.Clear();
    }
}

/// <summary>The hyperparameters of one <see cref="TfRmsProp"/> parameter group; null takes the optimizer's default.</summary>
public sealed class TfRmsPropOptions : OptimizerOptions
{
    /// <summary>Decay ρ of the mean square of the gradient.</summary>
    public double? Rho { get; set; }

    /// <summary>Momentum μ.</summary>
    public double? Momentum { get; set; }

    /// <summary>ε, added to the mean square inside the square root.</summary>
    public double? Eps { get; set; }

    /// <summary>Weight decay coefficient.</summary>
    public double? WeightDecay { get; set; }

    /// <summary>Shrink the weights by lr·wd instead of adding wd·p to the gradient.</summary>
    public bool? DecoupledWeightDecay { get; set; }

    /// <inheritdoc/>
    public override void SaveStateDict(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        base.SaveStateDict(writer);
        writer.Write(Rho!.Value);
        writer.Write(Momentum!.Value);
        writer.Write(Eps!.Value);
        writer.Write(WeightDecay!.Value);
        writer.Write(DecoupledWeightDecay!.Value);
    }

    /// <inheritdoc/>
    public override void LoadStateDict(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        base.LoadStateDict(reader);
        Rho = reader.ReadDouble();
        Momentum = reader.ReadDouble();
        Eps = reader.ReadDouble();
        WeightDecay = reader.ReadDouble();
        DecoupledWeightDecay = reader.ReadBoolean();
    }

    /// <inheritdoc/>
    public override void LoadStateDict(OptimizerOptions source)
    {
        if (source is not TfRmsPropOptions o)
            throw new ArgumentException($"TfRmsProp options can only be loaded from {nameof(TfRmsPropOptions)}.", nameof(source));
        base.LoadStateDict(source);
        Rho = o.Rho;
        Momentum = o.Momentum;
        Eps = o.Eps;
        WeightDecay = o.WeightDecay;
        DecoupledWeightDecay = o.DecoupledWeightDecay;
    }

    internal void Validate()
    {
        TrainingSettingException.CheckRange("learning_rate", LearningRate ?? 0, 0);
        TrainingSettingException.CheckRange("square_decay", Rho ?? 0, 0, 1);
        TrainingSettingException.CheckRange("momentum", Momentum ?? 0, 0, 1);
        if (Eps is { } eps) TrainingSettingException.CheckPositive("epsilon", eps);
        TrainingSettingException.CheckRange("weight_decay", WeightDecay ?? 0, 0);
    }
}

/// <summary>A group of parameters that share <see cref="TfRmsProp"/> hyperparameters.</summary>
public sealed class TfRmsPropParamGroup : ParamGroup<TfRmsPropOptions>, optim.IMomentum
{
    /// <summary>Creates a group whose settings all take the optimizer's defaults.</summary>
    public TfRmsPropParamGroup(IEnumerable<Parameter> parameters) : base(parameters, new TfRmsPropOptions()) { }

    /// <summary>Creates a group with its own settings (null fields take the optimizer's defaults).</summary>
    public TfRmsPropParamGroup(IEnumerable<Parameter> parameters, TfRmsPropOptions? options) : base(parameters, options ?? new TfRmsPropOptions()) { }

    /// <summary>The group's momentum μ.</summary>
    public double Momentum
    {
        get => Options.Momentum ?? 0;
        set => Options.Momentum = value;
    }
}

/// <summary>
/// The state <see cref="TfRmsProp"/> keeps for one parameter: TensorFlow's "rms" slot (<see cref="MeanSquare"/>,
/// initialised to ones) and "momentum" slot (<see cref="Momentum"/>, initialised to zeros), plus the step count.
/// </summary>
public sealed class TfRmsPropState : OptimizerState, IDisposable
{
    internal TfRmsPropState(Parameter parameter) : base(parameter)
    {
        MeanSquare = empty(0);
        Momentum = empty(0);
    }

    /// <summary>Updates applied to the parameter.</summary>
    public long Step { get; internal set; }

    /// <summary>The running mean of the squared gradient, ms, of the parameter's shape.</summary>
    public Tensor MeanSquare { get; private set; }

    /// <summary>The momentum buffer, mom (the last update, learning rate included), of the parameter's shape.</summary>
    public Tensor Momentum { get; private set; }

    /// <summary>Sets ms to ones and mom to zeros, as TensorFlow creates its slots.</summary>
    public override void Initialize(OptimizerOptions options)
    {
        using var _ = no_grad();
        MeanSquare.Dispose();
        Momentum.Dispose();
        MeanSquare = ones_like(_parameter).DetachFromDisposeScope();
        Momentum = zeros_like(_parameter).DetachFromDisposeScope();
        Step = 0;
    }

    /// <inheritdoc/>
    public override void SaveStateDict(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.Write(Step);
        MeanSquare.Save(writer);
        Momentum.Save(writer);
    }

    /// <inheritdoc/>
    public override void LoadStateDict(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        using var _ = no_grad();
        Step = reader.ReadInt64();
        MeanSquare.Load(reader);
        Momentum.Load(reader);
    }

    /// <summary>Copies the values of another parameter's state (the tensors are not shared).</summary>
    public override void LoadStateDict(OptimizerState source)
    {
        if (source is not TfRmsPropState s)
            throw new ArgumentException($"TfRmsProp state can only be loaded from {nameof(TfRmsPropState)}.", nameof(source));
        using var _ = no_grad();
        Step = s.Step;
        MeanSquare.copy_(s.MeanSquare);
        Momentum.copy_(s.Momentum);
    }

    /// <inheritdoc/>
    public override bool ApproximatelyEquals(OptimizerState other) =>
        other is TfRmsPropState s && s.Step == Step && s.MeanSquare.allclose(MeanSquare) && s.Momentum.allclose(Momentum);

    /// <inheritdoc/>
    public override void to(Device device)
    {
        MeanSquare = Move(MeanSquare, device);
        Momentum = Move(Momentum, device);
    }

    private static Tensor Move(Tensor t, Device device)
    {
        var moved = t.to(device);
        if (ReferenceEquals(moved, t)) return t;
        t.Dispose();
        return moved.DetachFromDisposeScope();
    }

    /// <summary>Frees the state tensors.</summary>
    public void Dispose()
    {
        MeanSquare.Dispose();
        Momentum.Dispose();
    }
}
