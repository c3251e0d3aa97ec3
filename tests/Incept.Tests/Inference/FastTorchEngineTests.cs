using Incept.Inference;
using Incept.Layers;
using Incept.Models;
using Incept.Registry;
using Incept.Tests.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Inference;

/// <summary>The fast engine computes the plain model's evaluation logits, for every family.</summary>
public class FastTorchEngineTests
{
    public static TheoryData<string> All() => RegistryModels.All();

    /// <summary>
    /// BatchNorm parameters and statistics from random inputs (<see cref="BatchNormCalibration.Calibrate"/>): folding
    /// matters, and unlike with the initial statistics the logits depend on the input.
    /// </summary>
    private static void RandomiseBatchNorms(InceptionModel model, int seed, int size = 32)
        => BatchNormCalibration.Calibrate(model, 3, size, seed);

    /// <summary>Gives one BatchNorm statistics and affine parameters far from the identity, so that folding matters.</summary>
    private static void RandomiseBatchNorm(BatchNorm2d bn, int seed)
    {
        using var _ = no_grad();
        var g = new Generator((ulong)seed);
        bn.running_mean!.copy_(randn(6, generator: g).Times(0.3));
        bn.running_var!.copy_(rand(6, generator: g).Times(1.5).Plus(0.3));
        bn.weight!.copy_(rand(6, generator: g).Plus(0.5));
        bn.bias!.copy_(randn(6, generator: g).Times(0.3));
    }

    private static double RelativeError(Tensor actual, Tensor expected)
        => (actual - expected).abs().max().item<float>() / Math.Max(1e-12, expected.abs().max().item<float>());

    [Theory]
    [MemberData(nameof(All))]
    public void Logits_equal_the_plain_models_evaluation_logits(string name)
    {
        var spec = ModelRegistry.Get(name);
        manual_seed(1);
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 10, SmallInput = true });
        RandomiseBatchNorms(model, 2);
        model.eval();
        using var input = randn(2, 3, 32, 32);
        using var expected = EvalLogits(model, input);

        using var engine = FastTorchEngine.Create(spec, model);
        using var actual = engine.Run(input);

        Assert.Equal(expected.shape, actual.shape);
        Assert.True(RelativeError(actual, expected) < 1e-4, $"relative error {RelativeError(actual, expected)}");
        // googlenet_paper has no BatchNorm to calibrate; its logits still move with the input, if less.
        double dependence = BatchNormCalibration.InputDependence(expected);
        Assert.True(dependence > (spec.Name == "googlenet_paper" ? 0.005 : 0.05), $"the logits hardly depend on the input ({dependence}), so the comparison cannot see the convolutions");
        Assert.Equal(model.modules().OfType<BatchNorm2d>().Count(), engine.FoldedUnits);
        Assert.True(engine.FoldedUnits > 0 || !model.modules().OfType<BatchNorm2d>().Any());
    }

    [Fact]
    public void Full_size_inception_v3_at_299_pixels_matches_too()
    {
        var spec = ModelRegistry.Get("inception_v3");
        manual_seed(3);
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 5 });
        RandomiseBatchNorms(model, 4, size: 299);
        model.eval();
        using var input = randn(1, 3, 299, 299);
        using var expected = EvalLogits(model, input);
        using var engine = FastTorchEngine.Create(spec, model);
        using var actual = engine.Run(input);
        Assert.True(RelativeError(actual, expected) < 1e-4, $"relative error {RelativeError(actual, expected)}");
    }

    [Fact]
    public void Releasing_a_cpu_model_prepares_it_in_place_and_keeps_the_logits()
    {
        var spec = ModelRegistry.Get("bn_inception");
        manual_seed(8);
        var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 4, SmallInput = true });
        RandomiseBatchNorms(model, 9);
        model.eval();
        using var input = randn(2, 3, 28, 28);
        using var expected = EvalLogits(model, input);
        using (var kept = FastTorchEngine.Create(spec, model))
            Assert.NotSame(model, kept.Model);

        var engine = FastTorchEngine.Create(spec, model, releaseModel: true);
        // No second set of weights: the handed-over model is the engine's copy.
        Assert.Same(model, engine.Model);
        using (var actual = engine.Run(input))
            Assert.True(RelativeError(actual, expected) < 1e-4);
        engine.Dispose();
        model.Dispose(); // disposing it after the engine does nothing
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Passes_of_a_few_images_and_sliced_convolutions_give_the_whole_batch_logits(string name)
    {
        var spec = ModelRegistry.Get(name);
        manual_seed(13);
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 7, SmallInput = true });
        RandomiseBatchNorms(model, 14);
        model.eval();
        using var input = randn(5, 3, 32, 32);
        using var expected = EvalLogits(model, input);
        using var whole = FastTorchEngine.Create(spec, model, new FastTorchOptions { ImagesPerPass = 0, ColumnBudgetBytes = 0 });
        // One byte: every convolution that unfolds its input does so one image at a time.
        using var sliced = FastTorchEngine.Create(spec, model, new FastTorchOptions { ImagesPerPass = 2, ColumnBudgetBytes = 1 });
        Assert.Equal((0, 0L), (whole.ImagesPerPass, whole.ColumnBudgetBytes));
        Assert.Equal((2, 1L), (sliced.ImagesPerPass, sliced.ColumnBudgetBytes));

        using var wholeLogits = whole.Run(input);
        using var slicedLogits = sliced.Run(input);

        Assert.Equal(wholeLogits.shape, slicedLogits.shape);
        Assert.True(RelativeError(slicedLogits, wholeLogits) < 1e-5, $"relative error {RelativeError(slicedLogits, wholeLogits)}");
        Assert.True(RelativeError(slicedLogits, expected) < 1e-4, $"relative error {RelativeError(slicedLogits, expected)}");
    }

    [Fact]
    public void Without_onednn_the_engine_slices_by_default_and_with_it_takes_whole_batches()
    {
        var spec = ModelRegistry.Get("googlenet");
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 3, SmallInput = true });
        using var engine = FastTorchEngine.Create(spec, model);
        bool unfolds = Incept.Runtime.TorchRuntime.OneDnnInUse != true;
        Assert.Equal(unfolds ? FastTorchOptions.DefaultImagesPerPass : 0, engine.ImagesPerPass);
        Assert.Equal(unfolds ? FastTorchOptions.DefaultColumnBudgetBytes : 0, engine.ColumnBudgetBytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => FastTorchEngine.Create(spec, model, new FastTorchOptions { ImagesPerPass = -1 }));
    }

    [Fact]
    public void A_model_with_aux_heads_gives_the_same_logits_without_copying_them()
    {
        var spec = ModelRegistry.Get("googlenet");
        manual_seed(5);
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 4, AuxLogits = true, SmallInput = true });
        RandomiseBatchNorms(model, 6);
        model.eval();
        using var input = randn(3, 3, 28, 28);
        using var expected = EvalLogits(model, input);
        using var engine = FastTorchEngine.Create(spec, model);
        using var actual = engine.Run(input);
        Assert.True(RelativeError(actual, expected) < 1e-4);
    }

    [Theory]
    [InlineData("googlenet")]
    [InlineData("inception_v3")]
    [InlineData("bn_inception")]
    [InlineData("inception_resnet_v2")]
    public void Winograd_convolutions_keep_the_logits_and_can_be_turned_off(string name)
    {
        var spec = ModelRegistry.Get(name);
        manual_seed(9);
        // Half width: most 3×3 layers have channel counts in blocks of 16, which Winograd's path takes.
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.5, NumClasses = 8, SmallInput = true });
        RandomiseBatchNorms(model, 10, size: 40);
        model.eval();
        using var input = randn(3, 3, 40, 40);
        using var expected = EvalLogits(model, input);
        foreach (bool winograd in new[] { true, false })
        {
            using var engine = FastTorchEngine.Create(spec, model, new FastTorchOptions { Winograd = winograd });
            using var actual = engine.Run(input);
            Assert.True(RelativeError(actual, expected) < 1e-4, $"Winograd {winograd}: relative error {RelativeError(actual, expected)}");
            var prepared = engine.Model.ConvBnUnits().Where(u => u.WinogradPrepared).ToList();
            Assert.Equal(engine.WinogradUnits, prepared.Count);
            if (winograd && Incept.Layers.WideVectors.Fast) Assert.True(prepared.Count > 0, "no layer ran by Winograd's method");
            else Assert.Empty(prepared);
            // Their own weights are freed: the transformed ones replace them.
            Assert.All(prepared, u => Assert.Equal(0, u.Conv.weight!.numel()));
        }

        // bfloat16 weights stay with libtorch.
        using var bfloat16 = FastTorchEngine.Create(spec, model, new FastTorchOptions { BFloat16 = true });
        Assert.Equal(0, bfloat16.WinogradUnits);
    }

    [Theory]
    [InlineData("googlenet")]
    [InlineData("inception_v3")]
    [InlineData("bn_inception")]
    [InlineData("inception_resnet_v1")]
    [InlineData("inception_resnet_v2")]
    public void Panel_products_keep_the_logits_and_can_be_turned_off(string name)
    {
        var spec = ModelRegistry.Get(name);
        manual_seed(11);
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 8, SmallInput = true });
        RandomiseBatchNorms(model, 12, size: 40);
        model.eval();
        using var input = randn(2, 3, 40, 40);
        using var expected = EvalLogits(model, input);
        foreach (bool panels in new[] { true, false })
        {
            using var engine = FastTorchEngine.Create(spec, model, new FastTorchOptions { Panels = panels });
            using var actual = engine.Run(input);
            Assert.True(RelativeError(actual, expected) < 1e-4, $"panels {panels}: relative error {RelativeError(actual, expected)}");
            var units = engine.Model.ConvBnUnits().Where(u => u.PanelsPrepared).ToList();
            var blocks = engine.Model.modules().OfType<IProjectedResidual>().Where(b => b.PanelsPrepared).ToList();
            Assert.Equal(engine.PanelLayers, units.Count + blocks.Count);
            if (panels && PanelProduct.Pays)
            {
                Assert.NotEmpty(units);
                Assert.Equal(name.StartsWith("inception_resnet", StringComparison.Ordinal), blocks.Count > 0);
                // Their own weights are freed: the panels replace them; Winograd's layers are not taken twice.
                Assert.All(units, u => Assert.Equal(0, u.Conv.weight!.numel()));
                Assert.All(units, u => Assert.False(u.WinogradPrepared));
            }
            else
            {
                Assert.Equal(0, engine.PanelLayers);
            }
        }
    }

    [Fact]
    public void Each_option_alone_keeps_the_logits_and_the_source_model_is_untouched()
    {
        var spec = ModelRegistry.Get("bn_inception");
        manual_seed(7);
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 6, SmallInput = true });
        RandomiseBatchNorms(model, 8);
        model.eval();
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var input = randn(2, 3, 24, 24);
        using var expected = EvalLogits(model, input);
        foreach (var options in new[] { new FastTorchOptions { ChannelsLast = false }, new FastTorchOptions { FoldBatchNorm = false } })
        {
            using var engine = FastTorchEngine.Create(spec, model, options);
            using var actual = engine.Run(input);
            Assert.True(RelativeError(actual, expected) < 1e-4);
            Assert.Equal(options.FoldBatchNorm ? model.modules().OfType<BatchNorm2d>().Count() : 0, engine.FoldedUnits);
        }

        var after = model.state_dict();
        Assert.Equal(before.Keys, after.Keys);
        foreach (var (key, value) in before)
        {
            Assert.True(value.equal(after[key]).all().item<bool>(), key);
            value.Dispose();
        }
    }

    [Fact]
    public void The_logits_are_an_ordinary_tensor_in_the_usual_layout()
    {
        var spec = ModelRegistry.Get("googlenet");
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 3, SmallInput = true });
        using var engine = FastTorchEngine.Create(spec, model);
        using var input = randn(2, 3, 28, 28);
        using var logits = engine.Run(input);
        Assert.True(logits.is_contiguous());
        logits.add_(Incept.Runtime.Scalars.One, Incept.Runtime.Scalars.One); // in-place use outside inference mode is allowed
        Assert.Equal("fast", engine.Name);
    }

    [Fact]
    public void Repeated_calls_leave_no_tensors_behind()
    {
        var spec = ModelRegistry.Get("inception_v3");
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 3, SmallInput = true });
        using var engine = FastTorchEngine.Create(spec, model);
        using var input = randn(2, 3, 32, 32);
        var stats = DisposeScopeManager.Statistics;
        engine.Run(input).Dispose();
        long after1 = stats.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++) engine.Run(input).Dispose();
        Assert.Equal(after1, stats.ThreadTotalLiveCount);
    }

    [Fact]
    public void A_float64_batch_is_refused_with_the_fix()
    {
        var spec = ModelRegistry.Get("googlenet");
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, SmallInput = true });
        using var engine = FastTorchEngine.Create(spec, model);
        using var input = randn(1, 3, 28, 28, ScalarType.Float64);
        var e = Assert.Throws<InceptException>(() => engine.Run(input));
        Assert.Contains("float32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Folding_a_batchnorm_into_a_convolution_with_or_without_bias_keeps_its_output()
    {
        foreach (bool bias in new[] { false, true })
        {
            manual_seed(11);
            using var conv = nn.Conv2d(4, 6, 3, padding: 1, bias: bias);
            using var bn = nn.BatchNorm2d(6, eps: 1e-3);
            RandomiseBatchNorm(bn, 12);
            bn.eval();
            using var x = randn(2, 4, 5, 5);
            using var _ = no_grad();
            using var expected = bn.call(conv.call(x));
            ConvBnFolding.Fold(conv, bn);
            Assert.NotNull(conv.bias);
            using var actual = conv.call(x);
            Assert.True(RelativeError(actual, expected) < 1e-5);
        }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void The_bfloat16_engine_rounds_but_keeps_the_logits_and_the_ranking(string name)
    {
        var spec = ModelRegistry.Get(name);
        manual_seed(11);
        using var model = ModelFactory.Create(spec, new ModelConfig { Width = 0.25, NumClasses = 10, SmallInput = true });
        RandomiseBatchNorms(model, 12);
        model.eval();
        using var input = randn(4, 3, 32, 32);
        using var expected = EvalLogits(model, input);

        using var engine = FastTorchEngine.Create(spec, model, new FastTorchOptions { BFloat16 = true });
        using var actual = engine.Run(input);

        Assert.Equal("fast-bf16", engine.Name);
        Assert.Equal(ScalarType.Float32, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        double error = RelativeError(actual, expected);
        // bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 ≈ 0.2 % a layer): the logits move, but by
        // percents of the largest one, not more; a float32 path would be within 1e-5.
        Assert.True(BatchNormCalibration.InputDependence(expected) > (spec.Name == "googlenet_paper" ? 0.005 : 0.05), "the logits hardly depend on the input");
        Assert.True(error > 1e-5, $"relative error {error}: the engine did not compute in bfloat16");
        Assert.True(error < 0.1, $"relative error {error}");
    }

    private static Tensor EvalLogits(InceptionModel model, Tensor input)
    {
        using var _ = no_grad();
        return model.call(input).Logits;
    }
}
