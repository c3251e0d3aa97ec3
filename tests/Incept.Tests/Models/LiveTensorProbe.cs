using Incept.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

/// <summary>One training step inside its own dispose scope, for tests that count the tensors it leaves alive.</summary>
internal static class LiveTensorProbe
{
    /// <summary>
    /// Runs a step (cross-entropy on the logits, plus <paramref name="auxWeight"/> times each aux head's) and returns how
    /// many tensors the thread's dispose scopes still count afterwards.
    /// </summary>
    public static long StepAndCount(InceptionModel model, Incept.Training.Sgd optimizer, Tensor x, Tensor y, double auxWeight = 0.3)
    {
        using (var scope = NewDisposeScope())
        {
            optimizer.zero_grad();
            var output = model.call(x);
            var loss = nn.functional.cross_entropy(output.Logits, y);
            foreach (var aux in output.Aux) loss = loss.Plus(nn.functional.cross_entropy(aux.Logits, y).Times(auxWeight));
            loss.backward();
            optimizer.step();
        }

        return DisposeScopeManager.Statistics.ThreadTotalLiveCount;
    }
}
