using Incept.Models;
using Incept.Registry;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

/// <summary>A forward pass frees each stage's activations once the next stage has used them, as PyTorch does.</summary>
public class ForwardMemoryTests
{
    public static TheoryData<string> All() => RegistryModels.All();

    [Theory]
    [MemberData(nameof(All))]
    public void An_early_stages_output_is_freed_before_the_last_stage_runs(string name)
    {
        manual_seed(31);
        using var model = ModelFactory.Create(ModelRegistry.Get(name), new ModelConfig { Width = 0.25, NumClasses = 4, SmallInput = true });
        model.eval();
        var taps = model.FeatureInfo
            .Select(f => model.named_modules().FirstOrDefault(m => m.name == f.Module).module as nn.Module<Tensor, Tensor>)
            .Where(m => m is not null)
            .ToList();
        Assert.True(taps.Count >= 2, $"{name} names fewer than two feature modules");

        Tensor? early = null;
        bool? freedBeforeLast = null;
        var first = taps[0]!.register_forward_hook((_, _, y) => { early ??= y; return y; });
        var last = taps[^1]!.register_forward_hook((_, _, y) => { freedBeforeLast ??= early!.IsInvalid; return y; });
        using var input = randn(2, 3, 32, 32);
        try
        {
            using var _ = no_grad();
            using var logits = model.call(input).Logits;
            Assert.Equal([2L, 4L], logits.shape);
        }
        finally
        {
            first.remove();
            last.remove();
        }

        Assert.True(freedBeforeLast, $"{name}: the output of {model.FeatureInfo[0].Module} was still alive when {model.FeatureInfo[^1].Module} ran");
        Assert.False(input.IsInvalid);
    }
}
