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

/// <summary>Checks that TorchSharp's native libraries load, and explains why when they do not.</summary>
public static class TorchRuntime
{
    private static readonly string[] NativeNames = ["libLibTorchSharp.so", "LibTorchSharp.dll", "libLibTorchSharp.dylib"];
    private static bool initialised;

    /// <summary>
    /// Initialises libtorch on the CPU, with its NNPACK backend off (<see cref="Nnpack"/>). TorchSharp's own error on failure blames a missing package even when
    /// the library is present but cannot be linked; this method loads the library directly to find the loader's
    /// real message and throws a <see cref="NativeLibraryException"/> that names it.
    /// </summary>
    public static void EnsureAvailable()
    {
        if (initialised) return;
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
            // Where NNPACK cannot initialise, libtorch would log that on every batch-1 convolution (see Nnpack).
            Nnpack.TrySetEnabled(false);
            initialised = true;
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
