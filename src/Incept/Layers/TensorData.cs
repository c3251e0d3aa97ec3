using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>Raw access to a float32 CPU tensor's values, for the kernels that run on libtorch's OpenMP threads.</summary>
internal static unsafe class TensorData
{
    /// <summary>
    /// The address of <paramref name="t"/>'s first value. The caller keeps <paramref name="t"/> alive (and its storage
    /// contiguous in the order it reads) for as long as it uses the pointer.
    /// </summary>
    public static float* Floats(Tensor t)
    {
        fixed (byte* p = t.bytes) return (float*)p;
    }
}
