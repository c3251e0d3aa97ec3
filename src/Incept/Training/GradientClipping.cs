using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Training;

/// <summary>Gradient clipping as TensorFlow's <c>clip_by_global_norm</c> (threshold 2.0 in the Inception-v3 recipe).</summary>
public static class GradientClipping
{
    /// <summary>
    /// Scales all gradients together so that their global L2 norm (the norm of all gradient entries as one vector) is at
    /// most <paramref name="maxNorm"/>: each gradient is multiplied by maxNorm / max(norm, maxNorm). Parameters without a
    /// gradient are skipped.
    /// </summary>
    /// <param name="parameters">The parameters whose gradients to clip.</param>
    /// <param name="maxNorm">The threshold, above 0.</param>
    /// <returns>The global norm before clipping (0 when no parameter has a gradient; NaN or ∞ when a gradient is not finite, in which case the gradients are left as they are).</returns>
    public static double ClipByGlobalNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        TrainingSettingException.CheckPositive("grad_clip_norm", maxNorm);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var grads = parameters.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0) return 0;
        var norms = stack(grads.Select(g => g.detach().to(ScalarType.Float64).norm()).ToArray());
        var total = norms.norm().item<double>();
        if (!double.IsFinite(total) || total <= maxNorm) return total;
        using var scale = (maxNorm / total).ToScalar();
        foreach (var g in grads) g.mul_(scale);
        return total;
    }
}
