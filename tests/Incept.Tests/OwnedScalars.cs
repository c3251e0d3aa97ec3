using Incept.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests;

/// <summary>
/// Tensor arithmetic with numbers for the tests, each number made an owned <c>Scalar</c> that lives through the native
/// call (TorchSharp's implicit conversions and <c>add(Tensor)</c> make temporaries the GC may finalise mid-call; see
/// Build/ScalarLifetimeTests).
/// </summary>
internal static class OwnedScalars
{
    public static Tensor Times(this Tensor t, double value) => With(value, t.mul);

    public static Tensor Plus(this Tensor t, double value) => With(value, s => t.add(s, Scalars.One));

    public static Tensor Plus(this Tensor t, Tensor other) => t.add(other, Scalars.One);

    public static Tensor Minus(this Tensor t, double value) => With(value, t.sub);

    public static Tensor Over(this Tensor t, double value) => With(value, s => t.div(s));

    public static Tensor Fill(this Tensor t, double value) => With(value, t.fill_);

    public static Tensor EqualTo(this Tensor t, double value) => With(value, t.eq);

    private static Tensor With(double value, Func<Scalar, Tensor> op)
    {
        using var s = value.ToScalar();
        return op(s);
    }
}
