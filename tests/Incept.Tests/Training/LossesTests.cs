using Incept.Models;
using Incept.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

/// <summary>Label-smoothed cross-entropy and the auxiliary-head total.</summary>
public class LossesTests
{
    [Fact]
    public void Label_smoothing_spreads_epsilon_over_all_classes_as_the_hand_computation()
    {
        using var logits = tensor(new double[] { 1, 2, 3, 0, 0, 0 }, [2, 3]);
        using var targets = tensor(new long[] { 2, 0 });
        using var loss = Losses.CrossEntropy(logits, targets, 0.1);

        // Row 1: log-sum-exp(1, 2, 3) = 3 + ln(1 + e⁻¹ + e⁻²); −log p = lse − z. q′ = (0.1/3, 0.1/3, 0.9 + 0.1/3).
        var lse = 3 + Math.Log(1 + Math.Exp(-1) + Math.Exp(-2));
        double[] nll1 = [lse - 1, lse - 2, lse - 3];
        var row1 = 0.1 / 3 * (nll1[0] + nll1[1]) + (0.9 + 0.1 / 3) * nll1[2];
        // Row 2: uniform logits, −log p = ln 3 for every class, whatever the smoothing.
        var row2 = Math.Log(3);
        Assert.Equal((row1 + row2) / 2, loss.item<double>(), 12);
    }

    [Fact]
    public void Matches_the_builtin_label_smoothing_and_plain_cross_entropy()
    {
        using var gen = new Generator(7);
        using var logits = randn([8, 5], dtype: ScalarType.Float64, generator: gen);
        using var targets = randint(0, 5, [8], generator: gen);
        foreach (var eps in new[] { 0.0, 0.1, 0.3 })
        {
            using var ours = Losses.CrossEntropy(logits, targets, eps);
            using var builtin = nn.functional.cross_entropy(logits, targets, label_smoothing: eps);
            Assert.Equal(builtin.item<double>(), ours.item<double>(), 12);
        }
    }

    [Fact]
    public void Total_adds_each_aux_loss_times_its_weight()
    {
        using var gen = new Generator(3);
        using var main = randn([4, 6], dtype: ScalarType.Float64, generator: gen);
        using var aux1 = randn([4, 6], dtype: ScalarType.Float64, generator: gen);
        using var aux2 = randn([4, 6], dtype: ScalarType.Float64, generator: gen);
        using var y = tensor(new long[] { 0, 5, 2, 3 });
        var output = new ModelOutput(main, [new AuxOutput("aux1", aux1), new AuxOutput("aux2", aux2)]);

        var terms = Losses.Compute(output, y, auxWeight: 0.3, labelSmoothing: 0.1);
        var expectedMain = Losses.CrossEntropy(main, y, 0.1).item<double>();
        var a1 = Losses.CrossEntropy(aux1, y, 0.1).item<double>();
        var a2 = Losses.CrossEntropy(aux2, y, 0.1).item<double>();
        Assert.Equal(expectedMain, terms.Main.item<double>(), 12);
        Assert.Equal(["aux1", "aux2"], terms.Aux.Select(a => a.Name));
        Assert.Equal(a1, terms.Aux[0].Loss.item<double>(), 12);
        Assert.Equal(expectedMain + 0.3 * (a1 + a2), terms.Total.item<double>(), 12);
        Assert.Equal(expectedMain + 0.3 * (a1 + a2), Losses.Total(output, y, 0.3, 0.1).item<double>(), 12);

        var eval = new ModelOutput(main);
        Assert.Equal(expectedMain, Losses.Total(eval, y, 0.4, 0.1).item<double>(), 12);
    }

    [Fact]
    public void Total_loss_trains_a_googlenet_with_aux_heads_end_to_end()
    {
        // A fixed seed: TorchSharp's trunc_normal_ with bounds 200σ out (GoogLeNet's init) yields a NaN about once in 10⁷ draws.
        manual_seed(1);
        using var model = Incept.Registry.ModelFactory.Create("googlenet", new ModelConfig { NumClasses = 4, AuxLogits = true });
        model.train();
        using var x = randn(2, 3, 64, 64);
        using var y = tensor(new long[] { 1, 3 });
        using var scope = NewDisposeScope();
        var output = model.call(x);
        Assert.Equal(2, output.Aux.Count);
        var loss = Losses.Total(output, y, auxWeight: 0.3, labelSmoothing: 0.1);
        loss.backward();
        Assert.True(double.IsFinite(loss.item<float>()));
        Assert.NotNull(model.parameters().First().grad);
    }

    [Fact]
    public void Bad_shapes_and_settings_are_explained()
    {
        using var logits = zeros(3, 4);
        using var wrong = zeros(new long[] { 2 }, ScalarType.Int64);
        using var floats = zeros(3);
        using var good = zeros(new long[] { 3 }, ScalarType.Int64);
        Assert.Contains("one class index per row", Assert.Throws<InputShapeException>(() => Losses.CrossEntropy(logits, wrong)).Message, StringComparison.Ordinal);
        Assert.Contains("integer class indices", Assert.Throws<InputShapeException>(() => Losses.CrossEntropy(logits, floats)).Message, StringComparison.Ordinal);
        Assert.Equal("label_smoothing", Assert.Throws<TrainingSettingException>(() => Losses.CrossEntropy(logits, good, 1.0)).Setting);
    }
}
