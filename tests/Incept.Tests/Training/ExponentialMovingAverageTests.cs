using Incept.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

/// <summary>Polyak averaging: TensorFlow's update and warm-up, buffers, swap, copy, restore.</summary>
public class ExponentialMovingAverageTests
{
    /// <summary>A BatchNorm over one feature: weight, bias, running_mean, running_var and the integer num_batches_tracked.</summary>
    private static TorchSharp.Modules.BatchNorm1d Model() => nn.BatchNorm1d(1, dtype: ScalarType.Float64);

    private static void Set(Tensor t, double value)
    {
        using var _ = no_grad();
        t.Fill(value);
    }

    private static double Value(Tensor t) => t.to(ScalarType.Float64).item<double>();

    [Fact]
    public void Update_moves_the_shadow_by_one_minus_decay_towards_the_weights()
    {
        using var model = Model();
        using var ema = new ExponentialMovingAverage(model, decay: 0.5, warmUp: false);
        Set(model.weight!, 3);
        Set(model.running_mean!, 4);
        ema.Update(model);
        // shadow ← shadow − (1 − d)·(shadow − value): 1 − 0.5·(1 − 3) = 2; 0 − 0.5·(0 − 4) = 2.
        Assert.Equal(2, Value(ema.Shadow["weight"]));
        Assert.Equal(2, Value(ema.Shadow["running_mean"]));
        Set(model.weight!, 5);
        ema.Update(model);
        Assert.Equal(3.5, Value(ema.Shadow["weight"]));
        Assert.Equal(2, ema.NumUpdates);
    }

    [Fact]
    public void Warm_up_caps_the_decay_at_one_plus_n_over_ten_plus_n()
    {
        using var model = Model();
        using var ema = new ExponentialMovingAverage(model, decay: 0.9999, warmUp: true);
        Assert.Equal(0.1, ema.NextDecay, 15);
        Set(model.weight!, 3);
        ema.Update(model);
        var expected = 1 - (1 - 0.1) * (1 - 3);           // n = 0: d = 1/10 → 2.8
        Assert.Equal(expected, Value(ema.Shadow["weight"]), 12);
        Assert.Equal(2.0 / 11, ema.NextDecay, 15);
        ema.Update(model);
        expected -= (1 - 2.0 / 11) * (expected - 3);       // n = 1: d = 2/11
        Assert.Equal(expected, Value(ema.Shadow["weight"]), 12);

        using var low = new ExponentialMovingAverage(model, decay: 0.5, warmUp: true);
        for (var i = 0; i < 3; i++) low.Update(model);
        Assert.Equal(4.0 / 13, low.NextDecay, 15);          // n = 3: (1 + 3)/(10 + 3) is below 0.5
        for (var i = 0; i < 5; i++) low.Update(model);
        Assert.Equal(0.5, low.NextDecay, 15);               // n = 8: 9/18 reaches the decay, which caps it from now on
    }

    [Fact]
    public void Integer_buffers_are_copied_not_averaged()
    {
        using var model = nn.BatchNorm1d(1);
        using var ema = new ExponentialMovingAverage(model, decay: 0.9, warmUp: false);
        model.train();
        using (var scope = NewDisposeScope())
        {
            model.call(tensor(new float[] { 1, 2, 3 }).reshape(3, 1));
            model.call(tensor(new float[] { 1, 2 }).reshape(2, 1));
        }
        ema.Update(model);
        Assert.Equal(ScalarType.Int64, ema.Shadow["num_batches_tracked"].dtype);
        Assert.Equal(2, ema.Shadow["num_batches_tracked"].item<long>());
    }

    [Fact]
    public void Swap_twice_restores_both_and_copy_to_writes_the_average()
    {
        using var model = Model();
        using var ema = new ExponentialMovingAverage(model, decay: 0.5, warmUp: false);
        Set(model.weight!, 3);
        Set(model.running_mean!, 1);
        ema.Update(model); // shadow weight 2, running_mean 0.5; model 3 and 1
        ema.Swap(model);
        Assert.Equal(2, Value(model.weight!));
        Assert.Equal(3, Value(ema.Shadow["weight"]));
        ema.Swap(model);
        Assert.Equal(3, Value(model.weight!));
        Assert.Equal(2, Value(ema.Shadow["weight"]));

        using var other = Model();
        ema.CopyTo(other);
        Assert.Equal(2, Value(other.weight!));
        Assert.Equal(0.5, Value(other.running_mean!));
    }

    [Fact]
    public void Restore_resumes_the_average_exactly_and_rejects_another_model()
    {
        using var model = Model();
        using var ema = new ExponentialMovingAverage(model, decay: 0.9);
        Set(model.weight!, 3);
        ema.Update(model);
        ema.Update(model);

        using var resumed = new ExponentialMovingAverage(model, decay: 0.9);
        resumed.Restore(ema.Shadow, ema.NumUpdates);
        Set(model.weight!, 7);
        ema.Update(model);
        resumed.Update(model);
        Assert.Equal(Value(ema.Shadow["weight"]), Value(resumed.Shadow["weight"]));
        Assert.Equal(3, resumed.NumUpdates);

        using var linear = nn.Linear(1, 1);
        var e = Assert.Throws<TrainingSettingException>(() => resumed.Restore(linear.state_dict(), 1));
        Assert.Contains("missing", e.Message, StringComparison.Ordinal);
        Assert.Throws<TrainingSettingException>(() => resumed.Update(linear));
    }

    [Fact]
    public void Repeated_updates_leak_no_tensors()
    {
        using var model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 2));
        using var ema = new ExponentialMovingAverage(model);
        ema.Update(model);
        ema.Swap(model);
        ema.Swap(model);
        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 10; i++)
        {
            ema.Update(model);
            ema.Swap(model);
            ema.Swap(model);
        }
        Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
