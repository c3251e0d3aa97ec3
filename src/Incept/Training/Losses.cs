using Incept.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Training;

/// <summary>The loss of one auxiliary head, named after the head (<c>aux1</c>, <c>AuxLogits</c>), before weighting.</summary>
public sealed record AuxLoss(string Name, Tensor Loss);

/// <summary>The parts of a training loss: the weighted total to minimise, the main head's loss, and each aux head's loss.</summary>
/// <param name="Total">Main loss plus the weighted aux losses (a scalar).</param>
/// <param name="Main">Cross-entropy of the main logits (a scalar).</param>
/// <param name="Aux">Unweighted cross-entropy of each auxiliary head, in the model's order; empty in evaluation.</param>
public sealed record LossTerms(Tensor Total, Tensor Main, IReadOnlyList<AuxLoss> Aux);

/// <summary>Classification losses of the Inception papers: label-smoothed cross-entropy and auxiliary-head weighting.</summary>
public static class Losses
{
    /// <summary>
    /// Mean cross-entropy of <paramref name="logits"/> (N×K) against class indices <paramref name="targets"/> (N), with
    /// label smoothing ε as in the Inception-v3 paper: the target distribution is q′ = (1 − ε)·onehot + ε/K, ε spread
    /// uniformly over all K classes, the true one included (the same definition as PyTorch's <c>label_smoothing</c>).
    /// </summary>
    /// <param name="logits">Unnormalised scores, N×K.</param>
    /// <param name="targets">Class indices in [0, K), N, of an integer type.</param>
    /// <param name="labelSmoothing">ε in [0, 1); 0 gives plain cross-entropy.</param>
    /// <returns>A scalar tensor.</returns>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets, double labelSmoothing = 0)
    {
        CheckShapes(logits, targets);
        TrainingSettingException.CheckRange("label_smoothing", labelSmoothing, 0, 1);
        using var scope = NewDisposeScope();
        var logp = logits.log_softmax(1);
        var nll = logp.gather(1, targets.unsqueeze(1).to(ScalarType.Int64)).squeeze(1).neg();
        var loss = nll;
        if (labelSmoothing > 0)
        {
            // Σ_k q′_k·(−log p_k) = (1 − ε)·(−log p_y) + ε·mean_k(−log p_k)
            var uniform = logp.mean([1L]).neg();
            // Explicit scalars, alive until the native calls return (see Sgd's remarks on TorchSharp's implicit ones).
            using var keep = (1 - labelSmoothing).ToScalar();
            using var spread = labelSmoothing.ToScalar();
            loss = nll.mul(keep).add(uniform, spread);
        }
        return loss.mean().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The training loss of a model output: main cross-entropy plus <paramref name="auxWeight"/> times the cross-entropy of
    /// each auxiliary head (0.3 in GoogLeNet, 0.4 in Inception-v3), all with the same label smoothing, as TF-slim trains
    /// Inception-v3. Without aux logits (evaluation, or a model without aux heads) the total is the main loss.
    /// </summary>
    /// <param name="output">The model's forward output.</param>
    /// <param name="targets">Class indices, N.</param>
    /// <param name="auxWeight">Weight of each auxiliary loss, 0 or more.</param>
    /// <param name="labelSmoothing">ε in [0, 1).</param>
    public static LossTerms Compute(ModelOutput output, Tensor targets, double auxWeight, double labelSmoothing = 0)
    {
        ArgumentNullException.ThrowIfNull(output);
        TrainingSettingException.CheckRange("aux_weight", auxWeight, 0);
        using var scope = NewDisposeScope();
        var main = CrossEntropy(output.Logits, targets, labelSmoothing);
        var total = main;
        var aux = new List<AuxLoss>(output.Aux.Count);
        using var weight = auxWeight.ToScalar();
        foreach (var a in output.Aux)
        {
            var loss = CrossEntropy(a.Logits, targets, labelSmoothing);
            aux.Add(new AuxLoss(a.Name, loss.MoveToOuterDisposeScope()));
            if (auxWeight > 0) total = total.add(loss, weight);
        }
        total.MoveToOuterDisposeScope();
        if (!ReferenceEquals(total, main)) main.MoveToOuterDisposeScope();
        return new LossTerms(total, main, aux);
    }

    /// <summary>The total of <see cref="Compute"/>: main loss plus the weighted auxiliary losses.</summary>
    public static Tensor Total(ModelOutput output, Tensor targets, double auxWeight, double labelSmoothing = 0)
    {
        using var scope = NewDisposeScope();
        return Compute(output, targets, auxWeight, labelSmoothing).Total.MoveToOuterDisposeScope();
    }

    private static void CheckShapes(Tensor logits, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        if (logits.dim() != 2)
            throw new InputShapeException($"The loss takes logits shaped N×K; got a tensor with {logits.dim()} dimensions [{string.Join(", ", logits.shape)}].");
        if (targets.dim() != 1 || targets.shape[0] != logits.shape[0])
            throw new InputShapeException($"The loss takes one class index per row of logits ({logits.shape[0]}); got targets shaped [{string.Join(", ", targets.shape)}].");
        if (targets.is_floating_point() || targets.dtype == ScalarType.Bool)
            throw new InputShapeException($"The loss takes integer class indices as targets; got {targets.dtype}.");
    }
}
