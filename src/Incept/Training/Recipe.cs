using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Incept.Models;
using TorchSharp;
using TorchSharp.Modules;

namespace Incept.Training;

/// <summary>The optimizer a recipe trains with.</summary>
public enum OptimizerKind
{
    /// <summary>SGD with (optionally Nesterov) momentum and L2 weight decay.</summary>
    [JsonStringEnumMemberName("sgd")] Sgd,

    /// <summary>RMSProp as TensorFlow defines it (<see cref="TfRmsProp"/>), the Inception-v3/v4 papers' optimizer.</summary>
    [JsonStringEnumMemberName("tf_rmsprop")] TfRmsProp,

    /// <summary>AdamW (Adam with decoupled weight decay).</summary>
    [JsonStringEnumMemberName("adamw")] AdamW,
}

/// <summary>The shape of a recipe's learning-rate schedule.</summary>
public enum ScheduleKind
{
    /// <summary>Multiply the rate by <see cref="Recipe.DecayRate"/> every <see cref="Recipe.DecayEpochs"/> (<see cref="StepDecaySchedule"/>).</summary>
    [JsonStringEnumMemberName("step")] Step,

    /// <summary>Cosine decay to <see cref="Recipe.FinalLrFactor"/> over the run (<see cref="CosineSchedule"/>).</summary>
    [JsonStringEnumMemberName("cosine")] Cosine,

    /// <summary>A constant rate (<see cref="ConstantSchedule"/>).</summary>
    [JsonStringEnumMemberName("constant")] Constant,
}

/// <summary>
/// A training recipe: the optimizer, schedule, regularisation and defaults that a paper (or a sensible small-data
/// setting) trains with. Presets are data (<see cref="Get"/>); any field can be overridden from JSON
/// (<see cref="Load"/>, <see cref="FromJson"/>) or one at a time (<see cref="WithOverride"/>). JSON field names are the
/// property names in snake_case (<c>learning_rate</c>, <c>grad_clip_norm</c>). Where each preset's values come from is
/// in docs/training.md.
/// </summary>
public sealed record Recipe
{
    /// <summary>The recipe's name (a preset's name, or the name a config file gives).</summary>
    public string Name { get; init; } = "custom";

    /// <summary>The optimizer.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;

    /// <summary>Initial (peak, after warm-up) learning rate at <see cref="BatchSize"/>.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>SGD momentum; RMSProp momentum μ; AdamW β₁.</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Nesterov momentum (SGD only).</summary>
    public bool Nesterov { get; init; }

    /// <summary>Decay of the running mean of squared gradients: RMSProp ρ; AdamW β₂.</summary>
    public double SquareDecay { get; init; } = 0.9;

    /// <summary>RMSProp ε (inside the square root, 1.0 in the papers); AdamW ε.</summary>
    public double Epsilon { get; init; } = 1.0;

    /// <summary>Weight decay: L2 added to the gradient for SGD and TF-RMSProp, decoupled for AdamW.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Whether weight decay also applies to biases and normalisation parameters (parameters of one dimension).</summary>
    public bool DecayNormAndBias { get; init; }

    /// <summary>The learning-rate schedule.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Step;

    /// <summary>Step schedule: the factor applied at each decay (0.94, 0.96).</summary>
    public double DecayRate { get; init; } = 1;

    /// <summary>Step schedule: the paper's period between decays, in epochs, before scaling to the run.</summary>
    public double DecayEpochs { get; init; } = 1;

    /// <summary>
    /// The length of the run the paper's <see cref="DecayEpochs"/> was set for. When set, a run of another length scales
    /// the period by epochs / paper_epochs (<see cref="LearningRateSchedule.ScaleDecayPeriod"/>); null uses the period as is.
    /// </summary>
    public double? PaperEpochs { get; init; }

    /// <summary>Epochs of linear warm-up.</summary>
    public double WarmupEpochs { get; init; }

    /// <summary>Cosine schedule: the fraction of the learning rate reached at the end of the run.</summary>
    public double FinalLrFactor { get; init; }

    /// <summary>Label smoothing ε (0.1 in Inception-v3).</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>Weight of each auxiliary head's loss (0.3 GoogLeNet, 0.4 Inception-v3); ignored by models without aux heads.</summary>
    public double AuxWeight { get; init; }

    /// <summary>Dropout before the classifier; null keeps the model's reference value.</summary>
    public double? DropRate { get; init; }

    /// <summary>Dropout in the auxiliary heads; null keeps the model's reference value.</summary>
    public double? AuxDropRate { get; init; }

    /// <summary>Threshold for clipping gradients by global norm; null: no clipping.</summary>
    public double? GradClipNorm { get; init; }

    /// <summary>Decay of the exponential moving average of the weights; null: no averaging.</summary>
    public double? EmaDecay { get; init; }

    /// <summary>Whether the moving average warms up as TensorFlow's (decay capped by (1 + n)/(10 + n)).</summary>
    public bool EmaWarmUp { get; init; } = true;

    /// <summary>Default batch size, the one <see cref="LearningRate"/> is given for.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Default number of epochs.</summary>
    public int Epochs { get; init; } = 30;

    /// <summary>The preset names, in the order <see cref="Presets"/> lists them.</summary>
    public static IReadOnlyList<string> Names => [.. Presets.Select(p => p.Name)];

    /// <summary>
    /// The presets: <c>googlenet</c>, <c>bn_inception</c>, <c>inception_v3</c>, <c>inception_v4</c>,
    /// <c>inception_resnet</c>, and <c>fast</c> (the default for small data sets).
    /// </summary>
    public static IReadOnlyList<Recipe> Presets { get; } = BuildPresets();

    /// <summary>The preset called <paramref name="name"/>; throws a <see cref="TrainingSettingException"/> listing the presets otherwise.</summary>
    public static Recipe Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return Presets.FirstOrDefault(p => string.Equals(p.Name, name.Trim().Replace('-', '_'), StringComparison.OrdinalIgnoreCase))
            ?? throw new TrainingSettingException("preset", $"Unknown recipe '{name}'. Known recipes: {string.Join(", ", Names)}.");
    }

    /// <summary>Throws a <see cref="TrainingSettingException"/> naming the first field whose value cannot work.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new TrainingSettingException("name", "The recipe needs a name.");
        if (!Enum.IsDefined(Optimizer)) throw new TrainingSettingException("optimizer", $"Unknown optimizer {Optimizer}; use sgd, tf_rmsprop or adamw.");
        if (!Enum.IsDefined(Schedule)) throw new TrainingSettingException("schedule", $"Unknown schedule {Schedule}; use step, cosine or constant.");
        TrainingSettingException.CheckPositive("learning_rate", LearningRate);
        TrainingSettingException.CheckRange("momentum", Momentum, 0, 1);
        TrainingSettingException.CheckRange("square_decay", SquareDecay, 0, 1);
        TrainingSettingException.CheckPositive("epsilon", Epsilon);
        TrainingSettingException.CheckRange("weight_decay", WeightDecay, 0);
        if (Nesterov && (Optimizer != OptimizerKind.Sgd || Momentum == 0))
            throw new TrainingSettingException("nesterov", "Nesterov momentum needs the sgd optimizer and a momentum above 0.");
        TrainingSettingException.CheckPositive("decay_rate", DecayRate);
        if (DecayRate > 1) throw new TrainingSettingException("decay_rate", $"The setting decay_rate must be in (0, 1]; got {DecayRate}.");
        TrainingSettingException.CheckPositive("decay_epochs", DecayEpochs);
        if (PaperEpochs is { } pe) TrainingSettingException.CheckPositive("paper_epochs", pe);
        TrainingSettingException.CheckRange("warmup_epochs", WarmupEpochs, 0);
        if (!(FinalLrFactor is >= 0 and <= 1))
            throw new TrainingSettingException("final_lr_factor", $"The setting final_lr_factor must be in [0, 1]; got {FinalLrFactor}.");
        TrainingSettingException.CheckRange("label_smoothing", LabelSmoothing, 0, 1);
        TrainingSettingException.CheckRange("aux_weight", AuxWeight, 0);
        if (DropRate is { } d) TrainingSettingException.CheckRange("drop_rate", d, 0, 1);
        if (AuxDropRate is { } ad) TrainingSettingException.CheckRange("aux_drop_rate", ad, 0, 1);
        if (GradClipNorm is { } c) TrainingSettingException.CheckPositive("grad_clip_norm", c);
        if (EmaDecay is { } e) TrainingSettingException.CheckRange("ema_decay", e, 0, 1);
        if (BatchSize < 1) throw new TrainingSettingException("batch_size", $"The setting batch_size must be at least 1; got {BatchSize}.");
        if (Epochs < 1) throw new TrainingSettingException("epochs", $"The setting epochs must be at least 1; got {Epochs}.");
        if (Schedule == ScheduleKind.Cosine && WarmupEpochs >= Epochs)
            throw new TrainingSettingException("warmup_epochs", $"The warm-up ({WarmupEpochs} epochs) must be shorter than the run ({Epochs} epochs).");
    }

    /// <summary>
    /// The step schedule's period for a run of <paramref name="epochs"/>: <see cref="DecayEpochs"/> scaled by
    /// epochs / <see cref="PaperEpochs"/> when the latter is set, otherwise <see cref="DecayEpochs"/> itself.
    /// </summary>
    public double DecayEpochsFor(int epochs) =>
        PaperEpochs is { } pe ? LearningRateSchedule.ScaleDecayPeriod(DecayEpochs, pe, epochs) : DecayEpochs;

    /// <summary>The learning-rate schedule for a run of <paramref name="epochs"/> (default <see cref="Epochs"/>).</summary>
    public LearningRateSchedule CreateSchedule(int? epochs = null)
    {
        var recipe = epochs is { } e ? this with { Epochs = e } : this;
        recipe.Validate();
        var run = recipe.Epochs;
        return Schedule switch
        {
            ScheduleKind.Step => new StepDecaySchedule(DecayRate, DecayEpochsFor(run)) { WarmupEpochs = WarmupEpochs },
            ScheduleKind.Cosine => new CosineSchedule(run, FinalLrFactor) { WarmupEpochs = WarmupEpochs },
            _ => new ConstantSchedule { WarmupEpochs = WarmupEpochs },
        };
    }

    /// <summary>
    /// The learning rate for another batch size by the linear scaling rule (Goyal et al., 2017):
    /// <see cref="LearningRate"/> × batchSize / <see cref="BatchSize"/>.
    /// </summary>
    public double LearningRateForBatch(int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        return LearningRate * batchSize / BatchSize;
    }

    /// <summary>
    /// The optimizer over the trainable parameters of <paramref name="model"/>, at <paramref name="learningRate"/>
    /// (default <see cref="LearningRate"/>). Unless <see cref="DecayNormAndBias"/>, weight decay applies only to parameters
    /// of two or more dimensions (convolution and linear weights), as TF-slim regularises only weights.
    /// </summary>
    public torch.optim.Optimizer CreateOptimizer(torch.nn.Module model, double? learningRate = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Validate();
        var lr = learningRate ?? LearningRate;
        TrainingSettingException.CheckPositive("learning_rate", lr);
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        if (trainable.Count == 0)
            throw new TrainingSettingException("model", "The model has no trainable parameters; unfreeze some layers before training.");
        var decayed = DecayNormAndBias ? trainable : trainable.Where(p => p.dim() > 1).ToList();
        var plain = DecayNormAndBias ? [] : trainable.Where(p => p.dim() <= 1).ToList();
        return Optimizer switch
        {
            OptimizerKind.Sgd => new Sgd(Groups(
                    ps => new SgdParamGroup(ps),
                    ps => new SgdParamGroup(ps, new SgdOptions { WeightDecay = 0 })),
                lr, Momentum, 0, WeightDecay, Nesterov),
            OptimizerKind.AdamW => torch.optim.AdamW(Groups(
                    ps => new AdamW.ParamGroup(ps, lr, Momentum, SquareDecay, Epsilon, WeightDecay),
                    ps => new AdamW.ParamGroup(ps, lr, Momentum, SquareDecay, Epsilon, 0)),
                lr, Momentum, SquareDecay, Epsilon, WeightDecay),
            _ => new TfRmsProp(Groups(
                    ps => new TfRmsPropParamGroup(ps),
                    ps => new TfRmsPropParamGroup(ps, new TfRmsPropOptions { WeightDecay = 0 })),
                lr, SquareDecay, Momentum, Epsilon, WeightDecay),
        };

        List<T> Groups<T>(Func<List<Parameter>, T> withDecay, Func<List<Parameter>, T> withoutDecay)
        {
            var groups = new List<T>(2);
            if (decayed.Count > 0) groups.Add(withDecay(decayed));
            if (plain.Count > 0) groups.Add(withoutDecay(plain));
            return groups;
        }
    }

    /// <summary>The moving average of <paramref name="model"/>'s weights the recipe asks for, or null when <see cref="EmaDecay"/> is null.</summary>
    public ExponentialMovingAverage? CreateEma(torch.nn.Module model) =>
        EmaDecay is { } decay ? new ExponentialMovingAverage(model, decay, EmaWarmUp) : null;

    /// <summary><paramref name="config"/> with the recipe's dropout override, if it has one.</summary>
    public ModelConfig ApplyTo(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return DropRate is { } d ? config with { DropRate = d } : config;
    }

    /// <summary>The recipe as indented JSON, every field included, in the form <see cref="FromJson"/> reads.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>
    /// Reads a recipe file: a JSON object whose fields override those of a starting recipe. The starting recipe is the
    /// preset named by the field <c>preset</c> if present, else <paramref name="baseRecipe"/>, else <c>fast</c>.
    /// </summary>
    /// <exception cref="TrainingSettingException">The file cannot be read, is not a JSON object, or has an unknown or mistyped field or an invalid value.</exception>
    public static Recipe Load(string path, Recipe? baseRecipe = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TrainingSettingException("recipe", $"Cannot read the recipe file '{path}': {e.Message}", e);
        }
        return Parse(text, baseRecipe, path);
    }

    /// <summary>Reads a recipe from JSON text, as <see cref="Load"/> reads a file.</summary>
    public static Recipe FromJson(string json, Recipe? baseRecipe = null) => Parse(json, baseRecipe, null);

    /// <summary>
    /// This recipe with one field replaced, as a command line's <c>--set field=value</c> would: <paramref name="field"/>
    /// in snake_case (dashes allowed), <paramref name="value"/> a JSON value or a bare word (<c>0.1</c>, <c>true</c>,
    /// <c>null</c>, <c>cosine</c>).
    /// </summary>
    public Recipe WithOverride(string field, string value)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(value);
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(value);
        }
        catch (JsonException)
        {
            node = JsonValue.Create(value);
        }
        return Merge(this, new JsonObject { [field] = node }, null);
    }

    private static Recipe Parse(string json, Recipe? baseRecipe, string? source)
    {
        ArgumentNullException.ThrowIfNull(json);
        var where = source is null ? "The recipe" : $"The recipe file '{source}'";
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new TrainingSettingException("recipe", $"{where} is not valid JSON: {e.Message}", e);
        }
        if (root is not JsonObject obj)
            throw new TrainingSettingException("recipe", $"{where} must be a JSON object of fields such as {{\"learning_rate\": 0.1}}.");
        var start = baseRecipe ?? Get("fast");
        var preset = obj.FirstOrDefault(kv => Normalise(kv.Key) == "preset");
        if (preset.Key is not null)
        {
            if (preset.Value is not JsonValue v || !v.TryGetValue<string>(out var name))
                throw new TrainingSettingException("preset", $"{where}: the field preset must be the name of a recipe ({string.Join(", ", Names)}).");
            start = Get(name);
            obj = (JsonObject)obj.DeepClone();
            obj.Remove(preset.Key);
        }
        return Merge(start, obj, where);
    }

    private static Recipe Merge(Recipe start, JsonObject overrides, string? where)
    {
        var prefix = where is null ? "" : where + ": ";
        var merged = JsonSerializer.SerializeToNode(start, JsonOptions)!.AsObject();
        var known = merged.Select(kv => kv.Key).ToList();
        foreach (var (key, value) in overrides)
        {
            var name = Normalise(key);
            if (!merged.ContainsKey(name))
                throw new TrainingSettingException(key, $"{prefix}unknown recipe field '{key}'. Known fields: preset, {string.Join(", ", known)}.");
            merged[name] = value?.DeepClone();
        }
        Recipe recipe;
        try
        {
            recipe = merged.Deserialize<Recipe>(JsonOptions)
                ?? throw new TrainingSettingException("recipe", $"{prefix}the recipe is empty.");
        }
        catch (JsonException e)
        {
            var field = e.Path?.TrimStart('$', '.') ?? "";
            var shown = merged.TryGetPropertyValue(field, out var bad) ? bad?.ToJsonString() ?? "null" : "?";
            throw new TrainingSettingException(field, $"{prefix}the field {field} cannot be {shown}; {Expected(field)}.", e);
        }
        recipe.Validate();
        return recipe;
    }

    private static string Normalise(string key) => key.Trim().Replace('-', '_').ToLowerInvariant();

    private static string Expected(string field)
    {
        var property = typeof(Recipe).GetProperties().FirstOrDefault(p => JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name) == field);
        var type = property?.PropertyType;
        if (type is null) return "check its type";
        var nullable = Nullable.GetUnderlyingType(type);
        var core = nullable ?? type;
        var what = core == typeof(OptimizerKind) ? "one of sgd, tf_rmsprop, adamw"
            : core == typeof(ScheduleKind) ? "one of step, cosine, constant"
            : core == typeof(bool) ? "true or false"
            : core == typeof(int) ? "a whole number"
            : core == typeof(double) ? "a number"
            : "a string";
        return nullable is null ? $"use {what}" : $"use {what}, or null";
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false) },
    };

    private static List<Recipe> BuildPresets()
    {
        // GoogLeNet (Szegedy et al., 2014): asynchronous SGD, momentum 0.9, lr × 0.96 every 8 epochs, aux losses × 0.3,
        // dropout 0.4 (0.7 in the aux heads), Polyak averaging. The paper gives neither the base rate, the weight
        // decay nor the run length: the base rate is the BN paper's Inception baseline (0.0015 at batch 32), the weight
        // decay Caffe's bvlc_googlenet (2e-4), the run length an assumption (250 epochs).
        var googlenet = new Recipe
        {
            Name = "googlenet",
            Optimizer = OptimizerKind.Sgd,
            LearningRate = 0.0015,
            Momentum = 0.9,
            WeightDecay = 2e-4,
            Schedule = ScheduleKind.Step,
            DecayRate = 0.96,
            DecayEpochs = 8,
            PaperEpochs = 250,
            AuxWeight = 0.3,
            DropRate = 0.4,
            AuxDropRate = 0.7,
            EmaDecay = 0.9999,
            EmaWarmUp = true,
            BatchSize = 32,
            Epochs = 250,
        };
        // BN-Inception, the BN paper's BN-x5 (Ioffe & Szegedy, 2015, §4.2.1): rate × 5, no dropout, L2 ÷ 5, decay 6×
        // faster. The run shrinks with the decay period so that it makes as many decays.
        var bnInception = googlenet with
        {
            Name = "bn_inception",
            LearningRate = googlenet.LearningRate * 5,
            WeightDecay = googlenet.WeightDecay / 5,
            DecayEpochs = googlenet.DecayEpochs / 6,
            PaperEpochs = googlenet.PaperEpochs / 6,
            Epochs = (int)Math.Round(googlenet.Epochs / 6.0),
            DropRate = 0,
            AuxDropRate = 0,
        };
        // Inception-v3 (Szegedy et al., 2015, §8 and §7): TF-RMSProp ρ 0.9, μ 0.9, ε 1.0; lr 0.045 × 0.94 every 2 epochs;
        // gradient clipping at 2.0; label smoothing 0.1; batch 32 for 100 epochs. Not in the paper: the aux weight 0.4
        // (TF-slim's train_image_classifier), weight decay 4e-5 (TF-slim's Inception arg scope) and the 0.9999 moving
        // average (TensorFlow's inception_train.py).
        var inceptionV3 = new Recipe
        {
            Name = "inception_v3",
            Optimizer = OptimizerKind.TfRmsProp,
            LearningRate = 0.045,
            Momentum = 0.9,
            SquareDecay = 0.9,
            Epsilon = 1.0,
            WeightDecay = 4e-5,
            Schedule = ScheduleKind.Step,
            DecayRate = 0.94,
            DecayEpochs = 2,
            PaperEpochs = 100,
            LabelSmoothing = 0.1,
            AuxWeight = 0.4,
            GradClipNorm = 2.0,
            EmaDecay = 0.9999,
            EmaWarmUp = true,
            BatchSize = 32,
            Epochs = 100,
        };
        // Inception-v4 and Inception-ResNet (Szegedy et al., 2016, §4): the same RMSProp recipe; the paper gives no run
        // length, so v3's 100 epochs are assumed. These models have no aux heads.
        var inceptionV4 = inceptionV3 with { Name = "inception_v4", AuxWeight = 0 };
        var inceptionResNet = inceptionV3 with { Name = "inception_resnet", AuxWeight = 0 };
        // A default for small data sets: SGD with Nesterov momentum, warm-up then cosine decay, label smoothing.
        var fast = new Recipe
        {
            Name = "fast",
            Optimizer = OptimizerKind.Sgd,
            LearningRate = 0.05,
            Momentum = 0.9,
            Nesterov = true,
            WeightDecay = 5e-4,
            Schedule = ScheduleKind.Cosine,
            WarmupEpochs = 0.2,
            FinalLrFactor = 0,
            LabelSmoothing = 0.1,
            AuxWeight = 0,
            EmaDecay = null,
            BatchSize = 64,
            Epochs = 2,
        };
        var all = new List<Recipe> { googlenet, bnInception, inceptionV3, inceptionV4, inceptionResNet, fast };
        foreach (var r in all) r.Validate();
        return all;
    }
}
