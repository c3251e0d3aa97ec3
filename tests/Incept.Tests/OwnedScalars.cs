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
    public static Tensor Times(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.mul(s);
    }

    public static Tensor Plus(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.add(s, Scalars.One);
    }

    public static Tensor Plus(this Tensor t, Tensor other) => t.add(other, Scalars.One);

    public static Tensor Minus(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.sub(s);
    }

    public static Tensor Over(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.div(s);
    }

    public static Tensor Fill(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.fill_(s);
    }

    public static Tensor EqualTo(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.eq(s);
    }
}
