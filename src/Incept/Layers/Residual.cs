using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>The residual sum of the Inception-ResNet blocks, with the scale held as an explicit scalar.</summary>
public static class Residual
{
    /// <summary>
    /// <paramref name="input"/> + <paramref name="scale"/> · <paramref name="branch"/>, computed as <c>branch * scale + input</c>.
    /// The scale goes to libtorch as a <see cref="Scalar"/> that stays alive until the call returns: an implicit
    /// conversion's temporary may be finalised during the native call (see <see cref="BatchNormForward"/>).
    /// </summary>
    public static Tensor ScaledSum(Tensor branch, double scale, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(branch);
        ArgumentNullException.ThrowIfNull(input);
        using var s = scale.ToScalar();
        return branch.mul(s).add(input, Runtime.Scalars.One);
    }
}
