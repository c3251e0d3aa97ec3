using System.Runtime.InteropServices;

namespace Incept.Runtime;

/// <summary>
/// libtorch's process-wide backend switches that TorchSharp 0.107 does not bind: whether convolutions may use NNPACK
/// and oneDNN (<c>at::Context::setUserEnabledNNPACK</c> and <c>setUserEnabledMkldnn</c>, what PyTorch's
/// <c>torch.backends.nnpack.set_flags</c> and <c>torch.backends.mkldnn.enabled</c> set).
/// </summary>
/// <remarks>
/// <para>The switches are exported C++ member functions of libtorch's global context, called here by their mangled
/// names on the libtorch library the process has already loaded (any TorchSharp call loads it). Where this libtorch
/// does not export them, the setters return false and change nothing, and the getters return null.</para>
/// <para>Why Incept turns them: <see cref="TorchRuntime.EnsureAvailable()"/> turns NNPACK off, because on CPUs
/// NNPACK cannot initialise on, libtorch 2.10 retries the initialisation and logs "Could not initialize NNPACK!"
/// before every batch-1 convolution; and it turns oneDNN off where <see cref="ConvolutionSelfTest"/> finds that
/// oneDNN's convolutions compute wrong values on this machine.</para>
/// </remarks>
public static class LibTorchSwitches
{
    private static readonly string[] LibraryNames = ["libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll"];
    private static readonly Lock Gate = new();

    private static readonly Switch NnpackSwitch = new("_ZN2at7Context20setUserEnabledNNPACKEb", "_ZNK2at7Context17userEnabledNNPACKEv");
    private static readonly Switch OneDnnSwitch = new("_ZN2at7Context20setUserEnabledMkldnnEb", "_ZNK2at7Context17userEnabledMkldnnEv");

    /// <summary>Whether libtorch may run convolutions with NNPACK, or null where the switch is not exported.</summary>
    public static bool? NnpackEnabled => Get(NnpackSwitch);

    /// <summary>Whether libtorch may run convolutions, pooling and the like with oneDNN (MKLDNN), or null where the switch is not exported.</summary>
    public static bool? OneDnnEnabled => Get(OneDnnSwitch);

    /// <summary>Sets libtorch's NNPACK switch; false, changing nothing, where it is not exported.</summary>
    public static bool TrySetNnpack(bool enabled) => Set(NnpackSwitch, enabled);

    /// <summary>
    /// Sets libtorch's oneDNN switch; false, changing nothing, where it is not exported. Without oneDNN, libtorch
    /// convolves with its own kernels (im2col and an MKL matrix product): correct, and slower than oneDNN where MKL
    /// runs its AVX-512 path (<see cref="MklDispatch"/>), about half as fast where it does not.
    /// </summary>
    public static bool TrySetOneDnn(bool enabled) => Set(OneDnnSwitch, enabled);

    private static bool Set(Switch which, bool enabled)
    {
        lock (Gate)
        {
            if (Resolve(which) is not { } bound) return false;
            bound.Set(bound.Context, enabled ? (byte)1 : (byte)0);
            return true;
        }
    }

    private static bool? Get(Switch which)
    {
        lock (Gate)
        {
            if (Resolve(which) is not { Get: { } get } bound) return null;
            return get(bound.Context) != 0;
        }
    }

    /// <summary>The handle of libtorch's CPU library, which the process has already loaded; false where it is not found.</summary>
    internal static bool TryGetLibrary(out IntPtr handle)
    {
        foreach (var name in LibraryNames)
            if (NativeLibrary.TryLoad(name, out handle))
                return true;
        handle = IntPtr.Zero;
        return false;
    }

    // The switch's functions and libtorch's global context, looked up once (under Gate) and kept: the getter is read in
    // training steps (TrainingConvolution.OwnKernelsPay), where a library lookup per convolution would be waste. Only a
    // successful lookup is kept, so a read before libtorch is loaded looks again next time.
    private static Bound? Resolve(Switch which)
    {
        if (which.Bound is { } known) return known;
        if (!TryGetLibrary(out var handle)
            || !NativeLibrary.TryGetExport(handle, "_ZN2at13globalContextEv", out var globalContext)
            || !NativeLibrary.TryGetExport(handle, which.Setter, out var set))
            return null;
        var context = Marshal.GetDelegateForFunctionPointer<GetContext>(globalContext)();
        if (context == IntPtr.Zero) return null;
        var get = NativeLibrary.TryGetExport(handle, which.Getter, out var getter) ? Marshal.GetDelegateForFunctionPointer<GetFlag>(getter) : null;
        return which.Bound = new Bound(context, Marshal.GetDelegateForFunctionPointer<SetFlag>(set), get);
    }

    private sealed class Switch(string setter, string getter)
    {
        public string Setter { get; } = setter;

        public string Getter { get; } = getter;

        public Bound? Bound { get; set; }
    }

    private sealed record Bound(IntPtr Context, SetFlag Set, GetFlag? Get);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GetContext();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetFlag(IntPtr context, byte enabled);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate byte GetFlag(IntPtr context);
}
