using TorchSharp;

namespace Incept.Runtime;

/// <summary>Scalars that live as long as the process, for the <c>alpha</c> of additions.</summary>
/// <remarks>
/// TorchSharp 0.107's <c>Tensor.add(Tensor)</c>, <c>add_(Tensor)</c> and the <c>+</c> operator make a temporary
/// <c>Scalar</c> of 1 that the garbage collector may finalise while libtorch still reads it; calling the overload
/// that takes <c>alpha</c> with <see cref="One"/> avoids that. A static field is never collected, and libtorch only
/// reads it, so it may be shared between threads. tests/Incept.Tests/Build/ScalarLifetimeTests.cs keeps the rule.
/// </remarks>
internal static class Scalars
{
    /// <summary>The integer 1, a valid <c>alpha</c> for tensors of every type.</summary>
    public static readonly Scalar One = 1L.ToScalar();
}
