using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Incept.Runtime;

/// <summary>What <see cref="TorchRuntime.EnsureAvailable()"/> does about MKL's code path (<see cref="TorchRuntime.MklAvx512"/>).</summary>
public enum MklPolicy
{
    /// <summary>
    /// On x86 CPUs from other vendors than Intel that have AVX-512 (AMD Zen 4 and 5), let MKL use its AVX-512 code
    /// path, then check its matrix products and go back to MKL's own choice if they are wrong.
    /// </summary>
    Auto,

    /// <summary>Leave MKL's own choice of code path alone.</summary>
    Off,
}

/// <summary>What happened to MKL's code path at start-up.</summary>
public enum MklOutcome
{
    /// <summary>Not looked at (<see cref="MklPolicy.Off"/>, or libtorch not initialised yet).</summary>
    NotRun,

    /// <summary>An Intel CPU, or one without AVX-512: MKL's own choice is already its best.</summary>
    NotNeeded,

    /// <summary>MKL uses its AVX-512 code path, and its matrix products passed the check.</summary>
    Switched,

    /// <summary>MKL had already chosen its code path before Incept initialised libtorch; nothing changed.</summary>
    AlreadyChosen,

    /// <summary>This libtorch's MKL is not one Incept knows how to switch (not exported, or built differently); nothing changed.</summary>
    Unavailable,

    /// <summary>The AVX-512 code path computed wrong matrix products; MKL went back to its own choice.</summary>
    FailedCheck,
}

/// <summary>
/// Lets the MKL inside libtorch use its AVX-512 code path on x86 CPUs that have AVX-512 but are not Intel's.
/// </summary>
/// <remarks>
/// <para>libtorch 2.10 links MKL 2024.2, which picks its code path once per process from CPUID and gives CPUs whose
/// vendor string is not "GenuineIntel" a slower path, whatever instructions they have. On a Zen 5 machine that is
/// about half of what the AVX-512 path reaches (140 against 270 GFLOP/s for libtorch's own convolutions, which are a
/// matrix product after im2col); those are the convolutions Incept falls back to where oneDNN computes wrong values
/// (<see cref="ConvolutionSelfTest"/>), and every <c>Linear</c> layer uses MKL too.</para>
/// <para>MKL caches the vendor test in a private variable that its exported function
/// <c>mkl_serv_intel_cpu_true</c> reads first, and its chosen path in one that <c>mkl_serv_cpu_detect</c> reads
/// first. Before MKL has chosen, this class sets the cached vendor answer to "Intel" (the code paths themselves still
/// test CPUID for each instruction set). The two variables are found by decoding the first instruction of each
/// function; where the bytes are not the expected ones, nothing is written. After switching,
/// <see cref="MatrixProductSelfTest"/> decides whether to keep the switch.</para>
/// </remarks>
public static class MklDispatch
{
    private static readonly Lock Gate = new();
    private static Cache? cache;

    /// <summary>
    /// The code path MKL uses now (its own numbering: larger is newer; on x86-64 0 is its baseline), or null where
    /// MKL cannot be asked. Asking makes MKL choose, if it has not yet.
    /// </summary>
    public static int? CodePath
    {
        get
        {
            lock (Gate)
            {
                return Locate() is { } c ? Marshal.GetDelegateForFunctionPointer<Detect>(c.Detect)() : null;
            }
        }
    }

    /// <summary>Whether this CPU is an x86 CPU from another vendor than Intel with the AVX-512 subsets MKL's AVX-512 path needs.</summary>
    public static bool CpuWouldBenefit =>
        X86Base.IsSupported && !IsIntel() && Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported
        && Avx512CD.IsSupported && Avx512F.VL.IsSupported;

    /// <summary>
    /// Applies <paramref name="policy"/> once libtorch is loaded; <paramref name="check"/> decides whether to keep the
    /// switch (<see cref="MatrixProductSelfTest.Run()"/> in production).
    /// </summary>
    internal static MklOutcome Apply(MklPolicy policy, Func<MatrixProductCheckResult> check)
    {
        if (policy == MklPolicy.Off) return MklOutcome.NotRun;
        if (!CpuWouldBenefit) return MklOutcome.NotNeeded;
        lock (Gate)
        {
            if (Locate() is not { } c) return MklOutcome.Unavailable;
            if (Marshal.ReadInt32(c.CodePath) >= 0 || Marshal.ReadInt32(c.VendorIsIntel) >= 0) return MklOutcome.AlreadyChosen;
            Marshal.WriteInt32(c.VendorIsIntel, 1);
        }

        if (check().Passed) return MklOutcome.Switched;
        // MKL tests the vendor again and chooses its own path on the next call.
        Undecide();
        return MklOutcome.FailedCheck;
    }

    /// <summary>Sets both of MKL's cached answers back to "not decided yet".</summary>
    internal static void Undecide()
    {
        lock (Gate)
        {
            if (Locate() is not { } c) return;
            Marshal.WriteInt32(c.VendorIsIntel, -1);
            Marshal.WriteInt32(c.CodePath, -1);
        }
    }

    private static Cache? Locate()
    {
        if (cache is not null) return cache;
        if (!LibTorchSwitches.TryGetLibrary(out var handle)
            || !NativeLibrary.TryGetExport(handle, "mkl_serv_intel_cpu_true", out var vendorTest)
            || !NativeLibrary.TryGetExport(handle, "mkl_serv_cpu_detect", out var detect))
            return null;
        // mkl_serv_intel_cpu_true: mov eax, [rip+disp32]; test eax, eax; js <decide>; ret
        if (!Matches(vendorTest, [0x8B, 0x05, null, null, null, null, 0x85, 0xC0, 0x78])) return null;
        // mkl_serv_cpu_detect: cmp dword [rip+disp32], 0; js <decide>
        if (!Matches(detect, [0x83, 0x3D, null, null, null, null, 0x00, 0x78])) return null;
        var vendorIsIntel = vendorTest + 6 + Marshal.ReadInt32(vendorTest, 2);
        var codePath = detect + 7 + Marshal.ReadInt32(detect, 2);
        return cache = new Cache(vendorIsIntel, codePath, detect);
    }

    private static bool Matches(IntPtr code, byte?[] pattern)
    {
        for (int i = 0; i < pattern.Length; i++)
            if (pattern[i] is { } b && Marshal.ReadByte(code, i) != b)
                return false;
        return true;
    }

    private static bool IsIntel()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        // "GenuineIntel" is returned as EBX "Genu", EDX "ineI", ECX "ntel".
        return ebx == 0x756E6547 && edx == 0x49656E69 && ecx == 0x6C65746E;
    }

    private sealed record Cache(IntPtr VendorIsIntel, IntPtr CodePath, IntPtr Detect);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int Detect();
}
