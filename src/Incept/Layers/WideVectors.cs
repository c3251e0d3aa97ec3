using System.Runtime.Intrinsics;

namespace Incept.Layers;

/// <summary>
/// Whether Incept's own kernels, written with <see cref="Vector512{T}"/> over 16 float32 channels, run here at vector
/// speed. They do where the CPU has 512-bit vectors, and also where it has only 256-bit ones (AVX2): .NET then
/// carries out every <see cref="Vector512{T}"/> operation as two <see cref="Vector256{T}"/> operations on the halves,
/// which for these kernels' loads, stores, sums and maxima costs no more than code written for 256 bits (measured on an
/// AVX2 Zen 3 core: 41–53 ms against 39–49 ms for the same streaming kernel). Below that (128-bit vectors or none)
/// the kernels would run element by element, and libtorch's own operators are used instead.
/// </summary>
/// <remarks>
/// The kernels' methods are compiled fully optimised from their first call (<c>MethodImplOptions.AggressiveOptimization</c>):
/// .NET's first, quick compilation leaves each of those halved operations a call, and on the AVX2 VM a batch-1
/// googlenet, bn_inception or inception_resnet_v1 then ran at half speed for its first few dozen forward passes.
/// </remarks>
internal static class WideVectors
{
    /// <summary>True where 512-bit or 256-bit vectors are in hardware.</summary>
    public static bool Fast { get; } = Vector512.IsHardwareAccelerated || Vector256.IsHardwareAccelerated;
}
