using Incept.Analysis;
using Incept.Registry;
using Incept.Tests.Models;

namespace Incept.Tests.Analysis;

public class SummaryTests
{
    /// <summary>The multiply-accumulate totals published with the foundation issue (three significant decimals).</summary>
    private static readonly Dictionary<(string, int), double> Published = new()
    {
        [("googlenet", 224)] = 1.498e9,
        [("googlenet_paper", 224)] = 1.583e9,
        [("bn_inception", 224)] = 2.033e9,
        [("inception_v3", 299)] = 5.713e9,
        [("inception_v4", 299)] = 12.254e9,
        [("inception_resnet_v1", 160)] = 1.418e9,
        [("inception_resnet_v1", 299)] = 6.31e9,
        [("inception_resnet_v2", 299)] = 13.156e9,
    };

    public static TheoryData<string> All() => RegistryModels.All();

    [Theory]
    [MemberData(nameof(All))]
    public void Totals_equal_the_registry_and_the_layers_add_up(string name)
    {
        var spec = ModelRegistry.Get(name);
        var summary = ModelSummary.Create(name);
        Assert.Equal(spec.InputSize, summary.InputSize);
        Assert.Equal(spec.Params, summary.Params);
        Assert.Equal(spec.Macs, summary.Macs);
        Assert.Equal(summary.Macs, summary.Layers.Sum(l => l.Macs));
        Assert.Equal(summary.Params, summary.Layers.Sum(l => l.Params));
        Assert.All(summary.Layers.Where(l => l.Macs > 0), l => Assert.NotEmpty(l.OutputShape));
    }

    [Fact]
    public void Totals_agree_with_the_published_figures_within_a_tenth_of_a_percent()
    {
        foreach (var ((name, size), published) in Published)
        {
            if (!ModelRegistry.Names.Contains(name)) continue;
            var macs = ModelSummary.Create(name, size).Macs;
            Assert.True(Math.Abs(macs - published) <= 1e-3 * published, $"{name} at {size}: {macs:N0} vs published {published:N0}");
        }
    }

    [Fact]
    public void Aux_heads_add_their_parameters_and_cost()
    {
        var plain = ModelSummary.Create("googlenet");
        var aux = ModelSummary.Create("googlenet", aux: true);
        Assert.Equal(13_004_888, aux.Params);
        Assert.Contains(aux.Layers, l => l.Name == "aux1" && l.Macs > 0);
        Assert.True(aux.Macs > plain.Macs);
    }

    [Fact]
    public void GoogLeNet_paper_rows_carry_the_papers_table_1_widths()
    {
        var summary = ModelSummary.Create("googlenet_paper");
        var row = summary.Layers.Single(l => l.Name == "inception4e");
        Assert.Equal([1L, 832, 14, 14], row.OutputShape);
        Assert.Equal(256, row.Columns["#1×1"]);
        Assert.Equal(160, row.Columns["#3×3 reduce"]);
        Assert.Equal(320, row.Columns["#3×3"]);
        Assert.Equal(32, row.Columns["#5×5 reduce"]);
        Assert.Equal(128, row.Columns["#5×5"]);
        Assert.Equal(128, row.Columns["pool proj"]);
        // Table 1 of the paper: inception (4e) has 840K parameters and 170M ops (conv weights only, no biases).
        Assert.Equal(170, Math.Round(row.Macs / 1e6));
    }

    [Fact]
    public void Smaller_inputs_cost_less_and_too_small_ones_are_refused()
    {
        var full = ModelSummary.Create("googlenet");
        var small = ModelSummary.Create("googlenet", 32);
        Assert.True(small.Macs < full.Macs / 10);
        Assert.Equal([1L, 1024, 1, 1], small.Layers.Single(l => l.Name == "inception5b").OutputShape);
        Assert.Throws<InputShapeException>(() => ModelSummary.Create("googlenet", 14));
    }

    [Fact]
    public void Width_and_the_small_stem_summarise_the_small_model_at_28_pixels_by_default()
    {
        var full = ModelSummary.Create("googlenet");
        var small = ModelSummary.Create("googlenet", width: 0.25, smallInput: true);
        Assert.Equal(ModelSummary.DefaultSmallInputSize, small.InputSize);
        Assert.Equal(28, small.InputSize);
        Assert.Equal(0.25, small.Width);
        Assert.True(small.SmallInput);
        Assert.Equal(1.0, full.Width);
        Assert.False(full.SmallInput);
        var inception3a = small.Layers.Single(l => l.Name == "inception3a");
        Assert.Equal([1L, 64, 14, 14], inception3a.OutputShape);
        Assert.Equal(16, inception3a.Columns["#1×1"]);
        Assert.Equal([1L, 256, 4, 4], small.Layers.Single(l => l.Name == "inception5b").OutputShape);
        Assert.Equal(small.Macs, small.Layers.Sum(l => l.Macs));
        Assert.Equal(small.Params, small.Layers.Sum(l => l.Params));
        Assert.True(small.Macs < full.Macs / 50, $"{small.Macs:N0} MACs");
    }
}
