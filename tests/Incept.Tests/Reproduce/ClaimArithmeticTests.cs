using Incept.Analysis;
using Incept.Layers;
using Incept.Models;
using Incept.Models.GoogLeNet;
using Incept.Models.InceptionResNetV2;
using Incept.Registry;
using Incept.Reproduce.Claims;
using Incept.Reproduce.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Reproduce;

/// <summary>The arithmetic claims, exactly: counted multiply-accumulates equal the hand-computed ones.</summary>
public class ClaimArithmeticTests
{
    private const long C = FactorizationClaim.Channels;
    private const long G = FactorizationClaim.Grid;

    [Fact]
    public void The_mac_counter_counts_a_single_convolution_as_output_elements_times_inputs_times_kernel_area()
    {
        using var conv = ConvUnit.BatchNorm.Build(3, 8, (1, 7), (0, 3), stride: 1);
        Assert.Equal(8L * 10 * 12 * 3 * 7, ModelSummary.CountMacs(conv, 3, 10, 12));
        using var strided = ConvUnit.BatchNorm.Build(4, 6, 3, stride: 2);
        // 9×9 input, 3×3 stride 2 without padding: 4×4 outputs.
        Assert.Equal(6L * 4 * 4 * 4 * 9, ModelSummary.CountMacs(strided, 4, 9, 9));
    }

    [Fact]
    public void Factorised_blocks_cost_exactly_the_papers_fractions_of_the_full_ones()
    {
        var costs = FactorizationClaim.Costs().ToDictionary(c => c.Replacement.Name);
        long perTap = G * G * C * C; // one kernel position over the whole grid
        Assert.Equal(25 * perTap, costs["5×5 → 3×3 + 3×3"].FullMacs);
        Assert.Equal(18 * perTap, costs["5×5 → 3×3 + 3×3"].FactorizedMacs);
        Assert.Equal(9 * perTap, costs["3×3 → 3×1 + 1×3"].FullMacs);
        Assert.Equal(6 * perTap, costs["3×3 → 3×1 + 1×3"].FactorizedMacs);
        Assert.Equal(25 * perTap, costs["5×5 → 1×5 + 5×1"].FullMacs);
        Assert.Equal(10 * perTap, costs["5×5 → 1×5 + 5×1"].FactorizedMacs);
        Assert.Equal(49 * perTap, costs["7×7 → 1×7 + 7×1"].FullMacs);
        Assert.Equal(14 * perTap, costs["7×7 → 1×7 + 7×1"].FactorizedMacs);

        Assert.All(costs.Values, c => Assert.True(c.Exact, c.Replacement.Name));
        Assert.Equal(0.28, costs["5×5 → 3×3 + 3×3"].Saving, 12);
        Assert.Equal(1.0 / 3, costs["3×3 → 3×1 + 1×3"].Saving, 12);
        Assert.Equal(1 - 2.0 / 5, costs["5×5 → 1×5 + 5×1"].Saving, 12);
        Assert.Equal(1 - 2.0 / 7, costs["7×7 → 1×7 + 7×1"].Saving, 12);
    }

    [Fact]
    public void Googlenet_paper_without_reductions_costs_the_hand_computed_macs_and_with_them_the_registered_ones()
    {
        var c = SparseModulesClaim.Compare();
        Assert.Equal(ModelRegistry.Get("googlenet_paper").Macs, c.With.Macs);
        // inception (3a) on 192 channels at 28×28: 1×1 64; 1×1 96 → 3×3 128; 1×1 16 → 5×5 32; pool → 1×1 32.
        long with3a = 28 * 28 * (192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32);
        long without3a = 28 * 28 * (192 * 64 + 192 * 128 * 9 + 192 * 32 * 25 + 192 * 32);
        var m3a = c.Modules.Single(m => m.Module == "inception3a");
        Assert.Equal(with3a, m3a.WithReductions);
        Assert.Equal(without3a, m3a.WithoutReductions);
        // inception (5b) on 832 channels at 7×7: 384; 192 → 384; 48 → 128; 128.
        long without5b = 7 * 7 * (832 * 384 + 832 * 384 * 9 + 832 * 128 * 25 + 832 * 128);
        Assert.Equal(without5b, c.Modules.Single(m => m.Module == "inception5b").WithoutReductions);
        Assert.Equal(9, c.Modules.Count);
        // Everything outside the modules is unchanged, so the totals differ by the modules' differences.
        Assert.Equal(c.Without.Macs - c.With.Macs, c.Modules.Sum(m => m.WithoutReductions - m.WithReductions));
        Assert.Equal(128, Math.Round(m3a.WithReductions / 1e6));
    }

    [Fact]
    public void Dropping_the_reductions_keeps_every_modules_widths_and_changes_only_branch_2_and_3_keys()
    {
        var config = new ModelConfig { NumClasses = 10 };
        using var with = ModelFactory.Create("googlenet_paper", config);
        using var without = new GoogLeNet(config, GoogLeNetArch.Paper with { Reductions = false });
        Assert.Equal(with.NumFeatures, without.NumFeatures);
        var a = with.state_dict().Keys.ToHashSet();
        var b = without.state_dict().Keys.ToHashSet();
        Assert.All(a.Except(b), k => Assert.Matches(@"\.branch[23]\.", k));
        Assert.True(b.IsSubsetOf(a));
        Assert.NotEmpty(a.Except(b));
        using var x = zeros(1, 3, 64, 64);
        without.eval();
        using var logits = without.call(x).Logits;
        Assert.Equal([1L, 10], logits.shape);
    }

    [Fact]
    public void The_unscaled_inception_resnet_has_the_reference_keys_and_scale_one_everywhere()
    {
        var config = new ModelConfig { NumClasses = 10, InChannels = 1, Width = 0.25, SmallInput = true };
        using var reference = ModelFactory.Create("inception_resnet_v2", config);
        using var unscaled = ModelFactory.Create(ResidualScalingClaim.Scaled(1, 1, 1, "inception_resnet_v2_unscaled"), config);
        Assert.Equal(reference.state_dict().Keys, unscaled.state_dict().Keys);
        Assert.All(unscaled.modules().OfType<Block35>(), b => Assert.Equal(1.0, b.Scale));
        Assert.All(unscaled.modules().OfType<Block17>(), b => Assert.Equal(1.0, b.Scale));
        Assert.All(unscaled.modules().OfType<Block8>(), b => Assert.Equal(1.0, b.Scale));
        Assert.Contains(reference.modules().OfType<Block35>(), b => b.Scale == 0.17);
    }

    [Fact]
    public void The_factorisation_networks_differ_only_in_their_factorised_convolutions()
    {
        var config = new ModelConfig { NumClasses = 10, InChannels = 1, Width = 0.5, SmallInput = true };
        using var factorised = ModelFactory.Create(FactorizationNet.Spec(true), config);
        using var full = ModelFactory.Create(FactorizationNet.Spec(false), config);
        var f = ModelSummary.Create(factorised, "factorization_net", 28);
        var n = ModelSummary.Create(full, "factorization_net_full", 28);
        Assert.True(f.Macs < n.Macs);
        Assert.Equal(n.Layers.Single(l => l.Name == "stem").Macs, f.Layers.Single(l => l.Name == "stem").Macs);
        Assert.Equal(n.Layers.Single(l => l.Name == "stageC").OutputShape, f.Layers.Single(l => l.Name == "stageC").OutputShape);
        // stage B at 7×7 with 32 channels (64 × 0.5): two blocks, each replacing 7×7 (49 taps) by 1×7 + 7×1 (14 taps).
        long stageBDifference = n.Layers.Single(l => l.Name == "stageB").Macs - f.Layers.Single(l => l.Name == "stageB").Macs;
        Assert.Equal(2L * 7 * 7 * 32 * 32 * (49 - 14), stageBDifference);
        using var x = randn(2, 1, 28, 28);
        factorised.eval();
        using var logits = factorised.call(x).Logits;
        Assert.Equal([2L, 10], logits.shape);
    }
}
