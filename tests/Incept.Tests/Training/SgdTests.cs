using Incept.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

public sealed class SgdTests
{
    /// <summary>Five steps of a small convolution network under <paramref name="make"/>; the final parameters.</summary>
    private static List<Tensor> Train(Func<IEnumerable<Parameter>, OptimizerHelper> make, Action<OptimizerHelper, int>? beforeStep = null)
    {
        manual_seed(11);
        using var model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3));
        using var optimizer = make(model.parameters());
        var x = randn(6, 3, 6, 6);
        var y = tensor(new long[] { 0, 1, 2, 0, 1, 2 });
        for (int i = 0; i < 5; i++)
        {
            using var scope = NewDisposeScope();
            beforeStep?.Invoke(optimizer, i);
            optimizer.zero_grad();
            nn.functional.cross_entropy(model.call(x), y).backward();
            optimizer.step();
        }

        return [.. model.parameters().Select(p => p.detach().clone())];
    }

    private static bool Same(Tensor a, Tensor b) => a.eq(b).all().item<bool>();

    [Theory]
    [InlineData(0.9, 0.0, 5e-4, true)]
    [InlineData(0.9, 0.1, 0.0, false)]
    [InlineData(0.0, 0.0, 1e-3, false)]
    public void Steps_are_bit_identical_to_torch_optim_SGD(double momentum, double dampening, double weightDecay, bool nesterov)
    {
        var ours = Train(ps => new Sgd(ps, 0.1, momentum, dampening, weightDecay, nesterov));
        var theirs = Train(ps => optim.SGD(ps, 0.1, momentum, dampening, weightDecay, nesterov));
        Assert.Equal(theirs.Count, ours.Count);
        for (int i = 0; i < ours.Count; i++)
            Assert.True(Same(ours[i], theirs[i]), $"parameter {i} differs from torch.optim.SGD after 5 steps");
        // And the run did move the weights.
        var start = Train(ps => new Sgd(ps, 0.0));
        Assert.False(Same(ours[0], start[0]));
    }

    [Fact]
    public void Learning_rate_changes_through_the_param_groups_take_effect_as_in_torch()
    {
        static void Halve(OptimizerHelper o, int step)
        {
            if (step == 2) foreach (var g in o.ParamGroups) g.LearningRate /= 2;
        }

        var ours = Train(ps => new Sgd(ps, 0.2, momentum: 0.9), Halve);
        var theirs = Train(ps => optim.SGD(ps, 0.2, momentum: 0.9), Halve);
        for (int i = 0; i < ours.Count; i++) Assert.True(Same(ours[i], theirs[i]));
    }

    [Fact]
    public void Nesterov_without_momentum_is_refused_with_the_setting_named()
    {
        var e = Assert.Throws<TrainingSettingException>(() => new Sgd([nn.Parameter(zeros(2))], 0.1, momentum: 0, nesterov: true));
        Assert.Contains("Nesterov", e.Message, StringComparison.Ordinal);
    }
}
