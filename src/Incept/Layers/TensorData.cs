using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>Raw access to a float32 CPU tensor's values, for the kernels that run on libtorch's OpenMP threads.</summary>
internal static unsafe partial class TensorData
{
    /// <summary>
    /// The address of <paramref name="t"/>'s first value. The caller keeps <paramref name="t"/> alive (and its storage
    /// contiguous in the order it reads) for as long as it uses the pointer.
    /// </summary>
    public static float* Floats(Tensor t)
    {
        fixed (byte* p = t.bytes) return (float*)p;
    }

    /// <summary>The address of a contiguous CPU tensor's first byte, whatever its type (as <see cref="Floats"/>).</summary>
    public static byte* Bytes(Tensor t)
    {
        fixed (byte* p = t.bytes) return p;
    }

    /// <summary>
    /// The address of the first value of a channels-last float32 CPU tensor (see <see cref="MemoryFormat.IsChannelsLast"/>):
    /// its values are then N×H×W×C in memory. TorchSharp hands out the memory of contiguous tensors only, so this asks
    /// TorchSharp's native library directly, without making a permuted view for it (a view costs a tensor object and a
    /// native call or two on every layer of a batch-1 pass). The caller keeps <paramref name="t"/> alive while it uses
    /// the pointer.
    /// </summary>
    public static float* ChannelsLastFloats(Tensor t)
    {
        if (!MemoryFormat.IsChannelsLast(t) || t.dtype != ScalarType.Float32 || t.device_type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException("Expected a channels-last float32 CPU tensor.", nameof(t));
        if (t.numel() == 0) return null;
        var data = THSTensor_data(t.Handle);
        return data == IntPtr.Zero ? throw new InvalidOperationException("libtorch gave no address for the tensor's values.") : (float*)data;
    }

    // TorchSharp's own entry point behind Tensor.bytes (the tensor's data_ptr), called without the contiguity check.
    [LibraryImport("LibTorchSharp")]
    private static partial IntPtr THSTensor_data(IntPtr handle);
}
