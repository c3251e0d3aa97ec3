using System.Runtime.CompilerServices;
using Incept.Runtime;

namespace Incept.Tests;

internal static class TorchInitialisation
{
    /// <summary>
    /// Initialises libtorch as the CLI does, before any test runs: MKL's code path and the oneDNN check are settled
    /// before the first matrix product, whatever order the tests run in.
    /// </summary>
#pragma warning disable CA2255 // A test assembly, not a library: its tests share one process-wide libtorch set-up.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialise() => TorchRuntime.EnsureAvailable();
}
