using Incept.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

/// <summary>
/// Gives a freshly initialised network BatchNorm parameters and statistics that make evaluation mode behave like a
/// trained network's. With the initial statistics (mean 0, variance 1) evaluation mode does not rescale, the small
/// initial weights shrink the activations layer by layer to nothing, and the logits are the biases whatever the input.
/// </summary>
internal static class BatchNormCalibration
{
    /// <summary>
    /// Draws every BatchNorm's scale from U(0.5, 1.5) and shift from N(0, 0.1), then sets its running statistics from
    /// one batch of <paramref name="batch"/> random <paramref name="size"/>-pixel inputs: the batch mean, and as
    /// variance the mean square (variance plus squared mean). Dividing by the root mean square rather than the
    /// deviation keeps a channel with a large mean and a small spread from amplifying float32 round-off (x − mean
    /// cancels), which would swamp comparisons between engines. The activations keep about unit scale, the logits
    /// depend on the input, and folding the statistics into the convolutions is far from the identity.
    /// </summary>
    public static void Calibrate(InceptionModel model, int inChannels, int size, int seed, int batch = 4)
    {
        var norms = model.modules().OfType<BatchNorm>().ToList();
        var momenta = norms.Select(bn => bn.momentum).ToList();
        using var generator = new Generator((ulong)seed);
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            foreach (var bn in norms)
            {
                bn.weight?.uniform_(0.5, 1.5, generator);
                bn.bias?.normal_(0, 0.1, generator);
                bn.momentum = 1.0; // the running statistics become this batch's
            }

            model.train();
            model.call(randn([batch, inChannels, size, size], generator: generator));
            using var one = 1L.ToScalar(); // owned, not the temporaries of add_(Tensor) and square() (see ScalarLifetimeTests)
            foreach (var bn in norms) bn.running_var!.add_(bn.running_mean!.mul(bn.running_mean!), one);
        }
        finally
        {
            for (int i = 0; i < norms.Count; i++) norms[i].momentum = momenta[i];
            model.eval();
        }
    }

    /// <summary>How far apart the logits of the first two images are, relative to the first's: near 0 when the network ignores its input.</summary>
    public static double InputDependence(Tensor logits)
    {
        using var scope = NewDisposeScope();
        return (logits[0] - logits[1]).norm().item<float>() / logits[0].norm().item<float>();
    }
}
