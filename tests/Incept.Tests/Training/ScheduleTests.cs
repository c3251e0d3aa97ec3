using Incept.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

/// <summary>Schedules as pure functions of the position in training.</summary>
public class ScheduleTests
{
    [Fact]
    public void Step_decay_multiplies_by_gamma_at_each_period_boundary()
    {
        var s = new StepDecaySchedule(0.94, 2);
        const int spe = 10;
        Assert.Equal(0.045, s.LearningRate(0.045, 0, 0, spe), 15);
        Assert.Equal(0.045, s.LearningRate(0.045, 1, 9, spe), 15);
        Assert.Equal(0.045 * 0.94, s.LearningRate(0.045, 2, 0, spe), 15);
        Assert.Equal(0.045 * 0.94, s.LearningRate(0.045, 3, 9, spe), 15);
        Assert.Equal(0.045 * 0.94 * 0.94 * 0.94, s.LearningRate(0.045, 7, 3, spe), 15);
    }

    [Fact]
    public void A_fractional_period_is_rounded_to_whole_steps()
    {
        // 0.96 every 8 epochs of a 250-epoch run, scaled to a 10-epoch run: every 0.32 epochs = 3.2 → 3 steps at 10 steps per epoch.
        var period = LearningRateSchedule.ScaleDecayPeriod(8, 250, 10);
        Assert.Equal(0.32, period, 15);
        var s = new StepDecaySchedule(0.96, period);
        Assert.Equal(1.0, s.Factor(0, 2, 10));
        Assert.Equal(0.96, s.Factor(0, 3, 10), 15);
        Assert.Equal(Math.Pow(0.96, 33), s.Factor(9, 9, 10), 12); // step 99 → ⌊99/3⌋ = 33 decays
    }

    [Fact]
    public void Scaling_keeps_the_number_of_decays_and_the_final_rate()
    {
        // Inception-v3: 0.94 every 2 epochs over 100 epochs ends at 0.94^50; scaled to 10 epochs, so does the short run.
        var paper = new StepDecaySchedule(0.94, 2);
        var scaled = new StepDecaySchedule(0.94, LearningRateSchedule.ScaleDecayPeriod(2, 100, 10));
        const int spe = 50;
        Assert.Equal(paper.Factor(99, spe - 1, spe), scaled.Factor(9, spe - 1, spe), 15);
        Assert.Equal(Math.Pow(0.94, 49), scaled.Factor(9, spe - 1, spe), 15);
        Assert.Equal(paper.Factor(50, 0, spe), scaled.Factor(5, 0, spe), 15);
    }

    [Fact]
    public void Warm_up_ramps_linearly_then_cosine_decays_to_the_final_factor()
    {
        // 1 warm-up epoch and 5 in all at 4 steps per epoch: W = 4, T = 20.
        var s = new CosineSchedule(5, finalFactor: 0.1) { WarmupEpochs = 1 };
        Assert.Equal(0.25, s.Factor(0, 0, 4), 15);
        Assert.Equal(0.50, s.Factor(0, 1, 4), 15);
        Assert.Equal(1.00, s.Factor(0, 3, 4), 15);
        Assert.Equal(1.00, s.Factor(1, 0, 4), 15);              // p = 0
        Assert.Equal(0.1 + 0.9 * 0.5, s.Factor(3, 0, 4), 15);  // step 12: p = 8/16 = ½, cos(π/2) = 0
        Assert.Equal(0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * 15 / 16)), s.Factor(4, 3, 4), 15);
        Assert.Equal(0.1, s.Factor(7, 0, 4), 15);               // past the end: the final factor
    }

    [Fact]
    public void Warm_up_also_applies_to_step_decay_and_constant()
    {
        var step = new StepDecaySchedule(0.5, 1) { WarmupEpochs = 0.5 };
        Assert.Equal(0.5, step.Factor(0, 0, 4), 15);
        Assert.Equal(1.0, step.Factor(0, 1, 4), 15);
        Assert.Equal(0.5, step.Factor(1, 0, 4), 15);
        var constant = new ConstantSchedule { WarmupEpochs = 2 };
        Assert.Equal(1.0 / 6, constant.Factor(0, 0, 3), 15);
        Assert.Equal(1.0, constant.Factor(5, 2, 3), 15);
    }

    [Fact]
    public void Apply_sets_every_group_from_its_initial_rate()
    {
        using var a = nn.Parameter(ones(2));
        using var b = nn.Parameter(ones(2));
        using var opt = optim.SGD([new TorchSharp.Modules.SGD.ParamGroup([a], lr: 0.1), new TorchSharp.Modules.SGD.ParamGroup([b], lr: 0.01)], 0.1);
        var s = new StepDecaySchedule(0.5, 1);
        Assert.Equal(0.25, s.Apply(opt, 2, 0, 10));
        Assert.Equal([0.025, 0.0025], opt.ParamGroups.Select(g => g.LearningRate).Select(x => Math.Round(x, 12)));
    }

    [Fact]
    public void Positions_outside_the_epoch_are_rejected()
    {
        var s = new ConstantSchedule();
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Factor(0, 4, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Factor(0, 0, 0));
        Assert.Equal("decay_rate", Assert.Throws<TrainingSettingException>(() => new StepDecaySchedule(1.5, 2)).Setting);
        Assert.Equal("warmup_epochs", Assert.Throws<TrainingSettingException>(() => new ConstantSchedule { WarmupEpochs = -1 }).Setting);
    }
}
