using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Incept.Runtime;

/// <summary>libtorch could not be loaded; the message names the real cause and the fix.</summary>
public sealed class NativeLibraryException : InceptException
{
    /// <summary>Creates the exception with a user-facing message and the original failure.</summary>
    public NativeLibraryException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception with a user-facing message.</summary>
    public NativeLibraryException(string message) : base(message) { }

    /// <summary>Creates the exception with a generic message.</summary>
    public NativeLibraryException() { }
}

/// <summary>Whether libtorch may use oneDNN for convolutions (<see cref="TorchRuntime.OneDnn"/>).</summary>
public enum OneDnnPolicy
{
    /// <summary>Use oneDNN unless <see cref="ConvolutionSelfTest"/> finds it computing wrong values on this machine.</summary>
    Auto,

    /// <summary>Use oneDNN without checking it (for measuring it, or where the check is known to pass).</summary>
    On,

    /// <summary>Never use oneDNN: libtorch's own convolution kernels only.</summary>
    Off,
}

/// <summary>Checks that TorchSharp's native libraries load, and explains why when they do not.</summary>
public static class TorchRuntime
{
    private static readonly string[] NativeNames = ["libLibTorchSharp.so", "LibTorchSharp.dll", "libLibTorchSharp.dylib"];
    private static readonly Lock Gate = new();
    private static bool initialised;

    /// <summary>
    /// What <see cref="EnsureAvailable()"/> does about oneDNN; read by its first call, so set it before that.
    /// </summary>
    public static OneDnnPolicy OneDnn { get; set; } = OneDnnPolicy.Auto;

    /// <summary>
    /// What <see cref="EnsureAvailable()"/> does about MKL's code path on CPUs MKL does not give its AVX-512 path
    /// (<see cref="MklDispatch"/>); read by its first call, so set it before that.
    /// </summary>
    public static MklPolicy MklAvx512 { get; set; } = MklPolicy.Auto;

    /// <summary>What happened to MKL's code path at initialisation.</summary>
    public static MklOutcome Mkl { get; private set; } = MklOutcome.NotRun;

    /// <summary>
    /// Receives one sentence when initialisation changes how libtorch computes (oneDNN turned off after a failed
    /// check); the library itself never prints.
    /// </summary>
    public static Action<string>? Warning { get; set; }

    /// <summary>The result of the convolution check, when <see cref="OneDnnPolicy.Auto"/> ran it; otherwise null.</summary>
    public static ConvolutionCheckResult? ConvolutionCheck { get; private set; }

    /// <summary>Whether libtorch's convolutions may use oneDNN now (null where the switch is not exported).</summary>
    public static bool? OneDnnInUse => LibTorchSwitches.OneDnnEnabled;

    /// <summary>
    /// Initialises libtorch on the CPU, once per process: NNPACK off (see <see cref="LibTorchSwitches"/>), MKL's
    /// AVX-512 code path where MKL would not choose it (<see cref="MklAvx512"/>, <see cref="MklDispatch"/>), and oneDNN
    /// as <see cref="OneDnn"/> says; with <see cref="OneDnnPolicy.Auto"/>, <see cref="ConvolutionSelfTest"/> runs and
    /// oneDNN is turned off if it fails, since wrong convolutions would give wrong predictions silently.
    /// TorchSharp's own error on failure blames a missing package even when
    /// the library is present but cannot be linked; this method loads the library directly to find the loader's
    /// real message and throws a <see cref="NativeLibraryException"/> that names it.
    /// </summary>
    public static void EnsureAvailable()
    {
        lock (Gate)
        {
            if (initialised) return;
            Initialise();
            // Where NNPACK cannot initialise, libtorch would log that on every batch-1 convolution.
            LibTorchSwitches.TrySetNnpack(false);
            initialised = true;
            // Before the convolution check: libtorch's own convolutions, the fallback, are MKL matrix products.
            Mkl = MklDispatch.Apply(MklAvx512, MatrixProductSelfTest.Run);
            if (Mkl == MklOutcome.FailedCheck)
                Warning?.Invoke("MKL's AVX-512 code path computed wrong matrix products on this CPU, so Incept left MKL on the path it chooses itself.");
            ApplyOneDnnPolicy();
        }
    }

    private static void Initialise()
    {
        // Probe the library next to the program first: when the loader refuses it, its message is the real
        // cause, and TorchSharp's own fallback (which copies the whole package cache next to the program and
        // prints a trace) is avoided.
        var probe = ProbeLoaderError(AppContext.BaseDirectory);
        if (probe is { Loads: false }) throw new NativeLibraryException(Explain(probe.Value.Error));
        var stdout = Console.Out;
        try
        {
            Console.SetOut(TextWriter.Null);
            InitializeDeviceType(TorchSharp.DeviceType.CPU);
        }
        catch (Exception e) when (e is NotSupportedException or DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            throw new NativeLibraryException(Explain(probe?.Error), e);
        }
        finally
        {
            Console.SetOut(stdout);
        }
    }

    private static void ApplyOneDnnPolicy()
    {
        switch (OneDnn)
        {
            case OneDnnPolicy.Off:
                LibTorchSwitches.TrySetOneDnn(false);
                break;
            case OneDnnPolicy.Auto:
                ConvolutionCheck = ConvolutionSelfTest.Run();
                if (ConvolutionCheck.Passed) break;
                const string Wrong = "libtorch's oneDNN convolutions compute wrong values on this CPU";
                if (!LibTorchSwitches.TrySetOneDnn(false))
                {
                    Warning?.Invoke($"{Wrong} ({ConvolutionCheck.Failure}), and this libtorch cannot turn oneDNN off: the TorchSharp engines' results may be wrong. ONNX Runtime (--engine onnx) is not affected.");
                    break;
                }

                var without = ConvolutionSelfTest.Run();
                Warning?.Invoke(without.Passed
                    ? $"{Wrong} ({ConvolutionCheck.Failure}), so Incept runs convolutions without oneDNN: correct, but slower, and bfloat16 (--precision bfloat16) 5–20× slower than float32. ONNX Runtime (--engine onnx) is not affected."
                    : $"libtorch's convolutions compute wrong values on this CPU with oneDNN ({ConvolutionCheck.Failure}) and without it ({without.Failure}): the TorchSharp engines' results may be wrong. ONNX Runtime (--engine onnx) is not affected.");
                break;
        }
    }

    /// <summary>Turns the dynamic loader's message into one sentence with the fix.</summary>
    public static string Explain(string? loaderError)
    {
        if (loaderError is null)
            return "libtorch could not be loaded: TorchSharp's native library libLibTorchSharp is not next to the program. Reference the libtorch-cpu-linux-x64 package (2.10.0) in the executable project and rebuild.";
        var cause = loaderError.ReplaceLineEndings(" ").Trim();
        // .NET wraps the loader's message in advice about strace and LD_DEBUG; keep the loader's own words.
        const string Marker = "LD_DEBUG environment variable:";
        int at = cause.IndexOf(Marker, StringComparison.Ordinal);
        if (at >= 0) cause = cause[(at + Marker.Length)..].Trim();
        if (cause.Contains("GLIBCXX_", StringComparison.Ordinal))
            return $"libtorch could not be loaded because this system's libstdc++ is older than TorchSharp expects ({cause}). Rebuild with 'dotnet build' (the Incept build marks that version requirement weak on Debian 12) or install a libstdc++ from GCC 13 or newer.";
        return $"libtorch could not be loaded: {cause}. Check that the libtorch-cpu-linux-x64 package is restored and that its files were copied next to the program.";
    }

    private static (bool Loads, string? Error)? ProbeLoaderError(string baseDirectory)
    {
        string[] folders = [Path.Combine("runtimes", RuntimeInformation.RuntimeIdentifier, "native"), Path.Combine("runtimes", "linux-x64", "native"), "", "cpu"];
        foreach (var folder in folders)
        {
            foreach (var name in NativeNames)
            {
                var path = Path.Combine(baseDirectory, folder, name);
                if (!File.Exists(path)) continue;
                try
                {
                    NativeLibrary.Load(path);
                    return (true, null);
                }
                catch (DllNotFoundException e)
                {
                    return (false, e.Message);
                }
                catch (BadImageFormatException e)
                {
                    return (false, e.Message);
                }
            }
        }

        return null;
    }
}
