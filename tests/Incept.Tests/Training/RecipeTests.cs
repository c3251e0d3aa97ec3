using Incept.Models;
using Incept.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

/// <summary>Recipe presets, JSON overrides, and the optimizer and schedule they build.</summary>
public class RecipeTests
{
    [Fact]
    public void Inception_v3_preset_is_the_papers_recipe()
    {
        var r = Recipe.Get("inception_v3");
        Assert.Equal(OptimizerKind.TfRmsProp, r.Optimizer);
        Assert.Equal((0.045, 0.9, 0.9, 1.0), (r.LearningRate, r.Momentum, r.SquareDecay, r.Epsilon));
        Assert.Equal((ScheduleKind.Step, 0.94, 2.0), (r.Schedule, r.DecayRate, r.DecayEpochs));
        Assert.Equal(2.0, r.GradClipNorm);
        Assert.Equal(0.1, r.LabelSmoothing);
        Assert.Equal(0.4, r.AuxWeight);
        Assert.Equal(4e-5, r.WeightDecay);
        Assert.Equal(0.9999, r.EmaDecay);
        Assert.Equal(r with { Name = "inception_v4", AuxWeight = 0 }, Recipe.Get("inception_v4"));
        Assert.Equal(r with { Name = "inception_resnet", AuxWeight = 0 }, Recipe.Get("inception-resnet"));
    }

    [Fact]
    public void Bn_inception_is_googlenet_with_the_bn_paper_accelerations()
    {
        var g = Recipe.Get("googlenet");
        var bn = Recipe.Get("bn_inception");
        Assert.Equal((OptimizerKind.Sgd, 0.9, 0.96, 8.0, 0.3, 0.4, 0.7), (g.Optimizer, g.Momentum, g.DecayRate, g.DecayEpochs, g.AuxWeight, g.DropRate!.Value, g.AuxDropRate!.Value));
        Assert.NotNull(g.EmaDecay);
        Assert.Equal(g.LearningRate * 5, bn.LearningRate, 15);
        Assert.Equal(g.WeightDecay / 5, bn.WeightDecay, 15);
        Assert.Equal(g.DecayEpochs / 6, bn.DecayEpochs, 15);
        Assert.Equal(0, bn.DropRate);
    }

    [Fact]
    public void Every_preset_is_valid_and_round_trips_through_json()
    {
        Assert.Equal(["googlenet", "bn_inception", "inception_v3", "inception_v4", "inception_resnet", "fast"], Recipe.Names);
        foreach (var r in Recipe.Presets)
        {
            r.Validate();
            Assert.Equal(r, Recipe.FromJson(r.ToJson()));
        }
        Assert.Contains("\"optimizer\": \"tf_rmsprop\"", Recipe.Get("inception_v3").ToJson(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_config_file_overrides_fields_of_its_preset()
    {
        var path = Path.Combine(Path.GetTempPath(), $"incept-recipe-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """
            {
              // comments and trailing commas are accepted
              "preset": "inception_v3",
              "learning_rate": 0.01,
              "schedule": "cosine",
              "ema_decay": null,
              "epochs": 12,
            }
            """);
        try
        {
            var r = Recipe.Load(path);
            Assert.Equal(Recipe.Get("inception_v3") with { LearningRate = 0.01, Schedule = ScheduleKind.Cosine, EmaDecay = null, Epochs = 12 }, r);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Equal("fast", Recipe.FromJson("{}").Name);
        Assert.Equal(0.2, Recipe.FromJson("""{"learning_rate": 0.2}""", Recipe.Get("googlenet")) is { Name: "googlenet" } g ? g.LearningRate : 0);
    }

    [Fact]
    public void An_unknown_field_is_named_with_the_known_ones()
    {
        var e = Assert.Throws<TrainingSettingException>(() => Recipe.FromJson("""{"learning_rat": 0.1}"""));
        Assert.Equal("learning_rat", e.Setting);
        Assert.Contains("unknown recipe field 'learning_rat'", e.Message, StringComparison.Ordinal);
        Assert.Contains("learning_rate", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_mistyped_or_invalid_value_names_its_field()
    {
        var e = Assert.Throws<TrainingSettingException>(() => Recipe.FromJson("""{"epochs": "ten"}"""));
        Assert.Equal("epochs", e.Setting);
        Assert.Contains("a whole number", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<TrainingSettingException>(() => Recipe.FromJson("""{"optimizer": "adam"}"""));
        Assert.Equal("optimizer", e.Setting);
        Assert.Contains("sgd, tf_rmsprop, adamw", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<TrainingSettingException>(() => Recipe.FromJson("""{"label_smoothing": 1.5}"""));
        Assert.Equal("label_smoothing", e.Setting);
        e = Assert.Throws<TrainingSettingException>(() => Recipe.FromJson("""{"preset": "resnet"}"""));
        Assert.Contains("Known recipes: googlenet", e.Message, StringComparison.Ordinal);
        Assert.Equal("recipe", Assert.Throws<TrainingSettingException>(() => Recipe.FromJson("[1]")).Setting);
        Assert.Equal("recipe", Assert.Throws<TrainingSettingException>(() => Recipe.Load("/nonexistent/recipe.json")).Setting);
    }

    [Fact]
    public void Single_overrides_take_json_values_or_bare_words()
    {
        var r = Recipe.Get("fast")
            .WithOverride("learning-rate", "0.2")
            .WithOverride("schedule", "step")
            .WithOverride("grad_clip_norm", "1.5")
            .WithOverride("nesterov", "false");
        Assert.Equal((0.2, ScheduleKind.Step, 1.5, false), (r.LearningRate, r.Schedule, r.GradClipNorm!.Value, r.Nesterov));
        Assert.Equal("batchsize", Assert.Throws<TrainingSettingException>(() => r.WithOverride("batchsize", "8")).Setting);
    }

    [Fact]
    public void Schedules_scale_the_papers_decay_period_to_the_run()
    {
        var v3 = Recipe.Get("inception_v3");
        var paper = Assert.IsType<StepDecaySchedule>(v3.CreateSchedule());
        Assert.Equal(2, paper.EveryEpochs, 15);
        var short10 = Assert.IsType<StepDecaySchedule>(v3.CreateSchedule(10));
        Assert.Equal(0.2, short10.EveryEpochs, 15);
        var unscaled = Assert.IsType<StepDecaySchedule>((v3 with { PaperEpochs = null }).CreateSchedule(10));
        Assert.Equal(2, unscaled.EveryEpochs);

        var fast = Assert.IsType<CosineSchedule>(Recipe.Get("fast").CreateSchedule(20));
        Assert.Equal((20.0, 0.2), (fast.TotalEpochs, fast.WarmupEpochs));
        Assert.Equal(0.1, Recipe.Get("fast").LearningRateForBatch(128), 15);
    }

    [Fact]
    public void Optimizers_are_built_with_weight_decay_on_weights_only()
    {
        using var model = nn.Sequential(nn.Conv2d(3, 4, 3, bias: false), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2));
        var matrices = model.parameters().Count(p => p.dim() > 1);
        var vectors = model.parameters().Count(p => p.dim() <= 1);

        using var rms = Recipe.Get("inception_v3").CreateOptimizer(model);
        var tf = Assert.IsType<TfRmsProp>(rms);
        var groups = tf.ParamGroups.Cast<TfRmsPropParamGroup>().ToList();
        Assert.Equal(2, groups.Count);
        Assert.Equal((matrices, 4e-5), (groups[0].Parameters.Count(), groups[0].Options.WeightDecay!.Value));
        Assert.Equal((vectors, 0.0), (groups[1].Parameters.Count(), groups[1].Options.WeightDecay!.Value));
        Assert.Equal(1.0, groups[0].Options.Eps);
        Assert.Equal(0.045, groups[1].LearningRate);

        using var sgd = Recipe.Get("fast").CreateOptimizer(model, learningRate: 0.3);
        var sgdGroups = Assert.IsType<Sgd>(sgd).ParamGroups.Cast<SgdParamGroup>().ToList();
        Assert.True(sgdGroups[0].Options.Nesterov);
        Assert.Equal((5e-4, 0.0), (sgdGroups[0].Options.WeightDecay!.Value, sgdGroups[1].Options.WeightDecay!.Value));
        Assert.All(sgdGroups, g => Assert.Equal(0.3, g.LearningRate));

        using var adamw = (Recipe.Get("fast") with { Optimizer = OptimizerKind.AdamW, Nesterov = false, DecayNormAndBias = true, SquareDecay = 0.999, Epsilon = 1e-8 }).CreateOptimizer(model);
        Assert.Single(Assert.IsType<AdamW>(adamw).ParamGroups);

        using var ema = Recipe.Get("inception_v3").CreateEma(model);
        Assert.Equal(0.9999, ema!.Decay);
        Assert.Null(Recipe.Get("fast").CreateEma(model));
        Assert.Equal(0.4, Recipe.Get("googlenet").ApplyTo(new ModelConfig()).DropRate);
        Assert.Null(Recipe.Get("inception_v3").ApplyTo(new ModelConfig()).DropRate);
    }
}
