using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// Runs a TorchSharp BatchNorm module the way its own <c>forward</c> does, but counts
/// <c>num_batches_tracked</c> with a process-lifetime scalar (<see cref="Runtime.Scalars.One"/>).
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>BatchNorm.forward</c> increments <c>num_batches_tracked</c> with
/// <c>add_(1)</c>, whose implicit <c>Scalar</c> temporaries can be finalised while the native call still reads
/// them. In a 900-step Fashion-MNIST epoch this surfaced as "For integral input tensors, argument alpha must not
/// be a floating point number" in the second epoch. The state-dict entries are the module's own, so
/// checkpoints are unaffected.
/// </remarks>
public static class BatchNormForward
{
    /// <summary>Applies <paramref name="bn"/> to <paramref name="input"/> in the module's current mode.</summary>
    public static Tensor Apply(BatchNorm bn, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(bn);
        ArgumentNullException.ThrowIfNull(input);
        double factor = bn.momentum ?? 0.0;
        bool training = bn.training;
        if (training && bn.track_running_stats && bn.num_batches_tracked is { } tracked)
        {
            tracked.add_(Runtime.Scalars.One, Runtime.Scalars.One);
            if (bn.momentum is null) factor = 1.0 / tracked.item<long>();
        }

        bool useStats = !training || bn.track_running_stats;
        return nn.functional.batch_norm(input, useStats ? bn.running_mean : null, useStats ? bn.running_var : null,
            bn.weight, bn.bias, training || bn.running_mean is null, factor, bn.eps);
    }
}
