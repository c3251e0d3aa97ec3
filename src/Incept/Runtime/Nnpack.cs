using System.Runtime.InteropServices;

namespace Incept.Runtime;

/// <summary>
/// Turns libtorch's NNPACK convolution backend off for the process, through libtorch's own switch
/// (<c>at::Context::setUserEnabledNNPACK</c>, what PyTorch's <c>torch.backends.nnpack.set_flags(False)</c> calls).
/// </summary>
/// <remarks>
/// <para>Before choosing a convolution backend, libtorch 2.10 asks whether NNPACK is available; where NNPACK cannot
/// initialise (on CPUs its cpuinfo does not know, such as AMD's Zen 5), that question retries the initialisation and
/// logs "Could not initialize NNPACK! Reason: Unsupported hardware." each time, up to a dozen lines per forward pass at
/// batch 1. With the switch off the question is not asked. Nothing is lost: libtorch only picks NNPACK for float32
/// NCHW convolutions with a batch of at least 16 that oneDNN did not take first, and oneDNN takes every convolution
/// with a batch of 16 or more.</para>
/// <para>TorchSharp 0.107 has no binding for the switch, so the two exported C++ functions are called by their
/// mangled names on the libtorch library the process already loaded. Where they are not found (another libtorch
/// build), nothing changes.</para>
/// </remarks>
public static class Nnpack
{
    private static readonly string[] LibraryNames = ["libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll"];
    private const string GlobalContextSymbol = "_ZN2at13globalContextEv";
    private const string SetEnabledSymbol = "_ZN2at7Context20setUserEnabledNNPACKEb";
    private const string GetEnabledSymbol = "_ZNK2at7Context17userEnabledNNPACKEv";

    private static readonly Lock Gate = new();

    /// <summary>
    /// Sets libtorch's NNPACK switch; returns false, changing nothing, when this libtorch does not export it.
    /// libtorch must be loaded first (any TorchSharp call loads it).
    /// </summary>
    public static bool TrySetEnabled(bool enabled)
    {
        lock (Gate)
        {
            if (!TryResolve(out var context, out var set, out _)) return false;
            Marshal.GetDelegateForFunctionPointer<SetFlag>(set)(context, enabled ? (byte)1 : (byte)0);

            return true;
        }
    }

    /// <summary>libtorch's NNPACK switch, or null when this libtorch does not export it.</summary>
    public static bool? Enabled
    {
        get
        {
            lock (Gate)
            {
                if (!TryResolve(out var context, out _, out var get) || get == IntPtr.Zero) return null;
                return Marshal.GetDelegateForFunctionPointer<GetFlag>(get)(context) != 0;
            }
        }
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GetContext();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetFlag(IntPtr context, byte enabled);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate byte GetFlag(IntPtr context);

    private static bool TryResolve(out IntPtr context, out IntPtr set, out IntPtr get)
    {
        context = set = get = IntPtr.Zero;
        foreach (var name in LibraryNames)
        {
            if (!NativeLibrary.TryLoad(name, out var handle)) continue;
            if (!NativeLibrary.TryGetExport(handle, GlobalContextSymbol, out var globalContext)
                || !NativeLibrary.TryGetExport(handle, SetEnabledSymbol, out set))
                return false;
            NativeLibrary.TryGetExport(handle, GetEnabledSymbol, out get);
            context = Marshal.GetDelegateForFunctionPointer<GetContext>(globalContext)();

            return context != IntPtr.Zero;
        }

        return false;
    }
}
