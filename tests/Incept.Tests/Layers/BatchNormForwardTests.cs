using Incept.Layers;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

public class BatchNormForwardTests
{
    [Fact]
    public void Applying_a_batchnorm_matches_its_own_forward_in_training_and_evaluation()
    {
        manual_seed(4);
        using var ours = nn.BatchNorm2d(3, eps: 1e-3, momentum: 0.1);
        using var theirs = nn.BatchNorm2d(3, eps: 1e-3, momentum: 0.1);
        using (no_grad())
        {
            ours.weight!.uniform_(0.5, 1.5);
            theirs.weight!.copy_(ours.weight);
        }

        using var x = randn(4, 3, 5, 5).Times(2).Plus(1);
        foreach (bool training in new[] { true, true, false })
        {
            ours.train(training);
            theirs.train(training);
            using var a = BatchNormForward.Apply(ours, x);
            using var b = theirs.call(x);
            Assert.True(a.allclose(b, rtol: 0, atol: 1e-6), $"outputs differ (training {training})");
            Assert.True(ours.running_mean!.allclose(theirs.running_mean!, rtol: 0, atol: 1e-7));
            Assert.True(ours.running_var!.allclose(theirs.running_var!, rtol: 0, atol: 1e-7));
            Assert.Equal(theirs.num_batches_tracked!.item<long>(), ours.num_batches_tracked!.item<long>());
        }

        Assert.Equal(2L, ours.num_batches_tracked!.item<long>());
    }
}
