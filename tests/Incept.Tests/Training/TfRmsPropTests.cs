using Incept.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

/// <summary>TensorFlow's RMSProp: hand-computed steps, the difference from PyTorch's, schedulers, state, leaks.</summary>
public class TfRmsPropTests
{
    private static Parameter Param(params double[] values) => nn.Parameter(tensor(values, ScalarType.Float64));

    /// <summary>Backward of ½·Σp², whose gradient is p itself.</summary>
    private static void HalfSquareBackward(Parameter p)
    {
        using var scope = NewDisposeScope();
        p.mul(p).sum().Times(0.5).backward();
    }

    private static double[] Values(Tensor t) => t.cpu().data<double>().ToArray();

    [Fact]
    public void Three_steps_match_the_hand_computation_with_eps_inside_the_root_and_ms_starting_at_one()
    {
        using var p = Param(1.0, -2.0);
        using var opt = new TfRmsProp([p], lr: 0.1);
        // ms ← 0.9·ms + 0.1·g²; mom ← 0.9·mom + 0.1·g/√(ms + 1); p ← p − mom; with g = p, ms₀ = 1, mom₀ = 0.
        // Step 1, first entry: ms = 0.9 + 0.1 = 1, mom = 0.1/√2 = 0.0707106781, p = 0.9292893219.
        double[][] expectedP =
        [
            [0.9292893218813453, -1.8681239053208425],
            [0.7997137719096945, -1.6317310550594502],
            [0.6258516834793704, -1.3184245564899322],
        ];
        double[][] expectedMs = [[1.0, 1.3], [0.986357864376269, 1.5189886925631197], [0.9516762896368451, 1.6333444469113505]];
        double[][] expectedMom =
        [
            [0.07071067811865475, -0.13187609467915742],
            [0.12957554997165074, -0.23639285026139245],
            [0.17386208843032408, -0.3133064985695179],
        ];
        for (var s = 0; s < 3; s++)
        {
            opt.zero_grad();
            HalfSquareBackward(p);
            opt.step();
            var state = opt.StateOf(p);
            Assert.Equal(s + 1, state.Step);
            AssertClose(expectedP[s], Values(p));
            AssertClose(expectedMs[s], Values(state.MeanSquare));
            AssertClose(expectedMom[s], Values(state.Momentum));
        }
    }

    [Fact]
    public void Differs_from_PyTorch_RMSprop_with_the_same_hyperparameters()
    {
        using var ours = Param(1.0);
        using var theirs = Param(1.0);
        using var tf = new TfRmsProp([ours], lr: 0.1, rho: 0.9, momentum: 0.9, eps: 1.0);
        using var pt = optim.RMSProp([theirs], lr: 0.1, alpha: 0.9, eps: 1.0, momentum: 0.9);
        HalfSquareBackward(ours);
        HalfSquareBackward(theirs);
        tf.step();
        pt.step();
        // PyTorch: sq = 0.1·1 (starts at 0), buf = g/(√0.1 + 1), p = 1 − 0.1·buf = 0.92402530733.
        Assert.Equal(0.9240253073352043, Values(theirs)[0], 12);
        Assert.Equal(0.9292893218813453, Values(ours)[0], 12);
    }

    [Fact]
    public void A_learning_rate_scheduler_changes_the_rate_that_enters_the_momentum()
    {
        using var p = Param(1.0);
        using var opt = new TfRmsProp([p], lr: 0.1);
        var scheduler = optim.lr_scheduler.StepLR(opt, step_size: 1, gamma: 0.5);
        HalfSquareBackward(p);
        opt.step();
        scheduler.step();
        Assert.Equal(0.05, opt.ParamGroups.Single().LearningRate, 12);
        var momBefore = Values(opt.StateOf(p).Momentum)[0];
        opt.zero_grad();
        HalfSquareBackward(p);
        var g = Values(p)[0];
        var ms = 0.9 * Values(opt.StateOf(p).MeanSquare)[0] + 0.1 * g * g;
        opt.step();
        Assert.Equal(0.9 * momBefore + 0.05 * g / Math.Sqrt(ms + 1), Values(opt.StateOf(p).Momentum)[0], 12);
    }

    [Fact]
    public void L2_weight_decay_equals_adding_half_wd_p_squared_to_the_loss()
    {
        const double wd = 0.01;
        using var withDecay = Param(1.0, -2.0);
        using var withPenalty = Param(1.0, -2.0);
        using var a = new TfRmsProp([withDecay], lr: 0.1, weightDecay: wd);
        using var b = new TfRmsProp([withPenalty], lr: 0.1);
        for (var s = 0; s < 3; s++)
        {
            a.zero_grad();
            b.zero_grad();
            HalfSquareBackward(withDecay);
            using (var scope = NewDisposeScope())
                withPenalty.mul(withPenalty).sum().Times(0.5 * (1 + wd)).backward();
            a.step();
            b.step();
        }
        AssertClose(Values(withPenalty), Values(withDecay));
    }

    [Fact]
    public void Decoupled_weight_decay_shrinks_the_weights_by_lr_times_wd_before_the_update()
    {
        using var p = Param(1.0);
        using var opt = new TfRmsProp([p], lr: 0.1, weightDecay: 0.5, decoupledWeightDecay: true);
        HalfSquareBackward(p);
        opt.step();
        // p = 1·(1 − 0.1·0.5) − 0.1·1/√2 (the gradient is taken before the shrink).
        Assert.Equal(0.95 - 0.1 / Math.Sqrt(2), Values(p)[0], 12);
    }

    [Fact]
    public void Saved_state_resumes_exactly()
    {
        using var p = Param(1.0, -2.0);
        using var opt = new TfRmsProp([p], lr: 0.1);
        for (var s = 0; s < 2; s++)
        {
            opt.zero_grad();
            HalfSquareBackward(p);
            opt.step();
        }
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) opt.save_state_dict(writer);

        using var q = nn.Parameter(p.detach().clone());
        using var resumed = new TfRmsProp([q], lr: 0.7);
        stream.Position = 0;
        using (var reader = new BinaryReader(stream)) resumed.load_state_dict(reader);
        Assert.Equal(0.1, resumed.ParamGroups.Single().LearningRate);
        Assert.Equal(2, resumed.StateOf(q).Step);

        foreach (var (param, o) in new[] { (p, opt), (q, resumed) })
        {
            o.zero_grad();
            HalfSquareBackward(param);
            o.step();
        }
        Assert.Equal(Values(p), Values(q));
        Assert.Equal(Values(opt.StateOf(p).MeanSquare), Values(resumed.StateOf(q).MeanSquare));
        Assert.Equal(Values(opt.StateOf(p).Momentum), Values(resumed.StateOf(q).Momentum));
    }

    [Fact]
    public void Parameters_without_gradients_are_left_alone_and_groups_keep_their_own_settings()
    {
        using var a = Param(1.0);
        using var b = Param(1.0);
        using var frozen = Param(3.0);
        using var opt = new TfRmsProp(
            [new TfRmsPropParamGroup([a]), new TfRmsPropParamGroup([b, frozen], new TfRmsPropOptions { LearningRate = 0.2 })],
            lr: 0.1);
        HalfSquareBackward(a);
        HalfSquareBackward(b);
        opt.step();
        Assert.Equal(1 - 0.1 / Math.Sqrt(2), Values(a)[0], 12);
        Assert.Equal(1 - 0.2 / Math.Sqrt(2), Values(b)[0], 12);
        Assert.Equal(3.0, Values(frozen)[0]);
        Assert.Equal(0, opt.StateOf(frozen).Step);
        Assert.Equal(3, opt.States.Count);
    }

    [Fact]
    public void Invalid_hyperparameters_name_the_setting()
    {
        using var p = Param(1.0);
        var e = Assert.Throws<TrainingSettingException>(() => new TfRmsProp([p], lr: 0.1, rho: 1.5));
        Assert.Equal("square_decay", e.Setting);
        e = Assert.Throws<TrainingSettingException>(() => new TfRmsProp([p], lr: 0.1, eps: 0));
        Assert.Equal("epsilon", e.Setting);
    }

    [Fact]
    public void Repeated_steps_leak_no_tensors()
    {
        using var model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3));
        using var opt = new TfRmsProp(model.parameters(), lr: 0.01, weightDecay: 1e-4);
        using var x = randn(5, 4);
        using var y = tensor(new long[] { 0, 1, 2, 1, 0 });
        void Step()
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            Losses.CrossEntropy(model.call(x), y, 0.1).backward();
            GradientClipping.ClipByGlobalNorm(model.parameters(), 2.0);
            opt.step();
        }
        Step();
        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 20; i++) Step();
        Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    private static void AssertClose(double[] expected, double[] actual, double tol = 1e-12)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"[{i}] expected {expected[i]:R}, got {actual[i]:R}");
    }
}
