using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Incept.Runtime;
using TorchSharp;

namespace Incept.Layers;

/// <summary>
/// Runs a job in parts side by side on libtorch's own OpenMP threads, so that each core works through its share from
/// start to end, libtorch and MKL calls included, without handing over between parallel regions inside a part.
/// </summary>
/// <remarks>
/// The parts run in one OpenMP parallel region opened through libgomp's <c>GOMP_parallel</c>, the entry point that
/// libtorch's own parallel loops compile to, so they use the team of threads that libtorch keeps warm (and that would
/// otherwise spin on the cores the parts need). Inside the region libtorch and MKL see that they are in a parallel region
/// and run each call on its own thread. Where libgomp's entry points cannot be found, the parts run one after the other
/// on the caller.
/// </remarks>
internal static unsafe class CpuTeam
{
    private static readonly Native? Omp = Native.Find();

    /// <summary>How many parts <see cref="Run"/> runs side by side on the calling thread: libtorch's thread count there.</summary>
    public static int Size => Omp is null ? 1 : Math.Max(1, torch.get_num_threads());

    /// <summary>
    /// Calls <paramref name="part"/> once for every index below <paramref name="parts"/>, side by side where the team has
    /// room; returns when all have, rethrowing the first exception one of them threw.
    /// </summary>
    public static void Run(int parts, Action<int> part)
    {
        ArgumentNullException.ThrowIfNull(part);
        if (parts <= 1 || Omp is null || Omp.InParallel())
        {
            for (int i = 0; i < parts; i++) part(i);
            return;
        }

        var job = new Job(part, parts, Omp);
        var handle = GCHandle.Alloc(job);
        try
        {
            Omp.Parallel(&Enter, (void*)GCHandle.ToIntPtr(handle), (uint)parts);
        }
        finally
        {
            handle.Free();
        }

        job.Failure?.Throw();
    }

    // Runs on every thread of the region: the thread numbered i takes parts i, i + threads, ...
    [UnmanagedCallersOnly]
    private static void Enter(void* data)
    {
        var job = (Job)GCHandle.FromIntPtr((IntPtr)data).Target!;
        try
        {
            int threads = Math.Max(1, job.Omp.Threads());
            for (int i = job.Omp.ThreadNumber(); i < job.Parts; i += threads) job.Part(i);
        }
        catch (Exception e)
        {
            // Nothing may leave an OpenMP region: the first failure is rethrown on the caller.
            Interlocked.CompareExchange(ref job.Failure, ExceptionDispatchInfo.Capture(e), null);
        }
    }

    private sealed class Job(Action<int> part, int parts, Native omp)
    {
        public readonly Action<int> Part = part;
        public readonly int Parts = parts;
        public readonly Native Omp = omp;
        public ExceptionDispatchInfo? Failure;
    }

    /// <summary>libgomp's entry points, found through libtorch's CPU library, which links them.</summary>
    private sealed class Native(IntPtr parallel, IntPtr threadNumber, IntPtr threads, IntPtr inParallel)
    {
        public void Parallel(delegate* unmanaged<void*, void> body, void* data, uint count)
            => ((delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void>)parallel)(body, data, count, 0);

        public int ThreadNumber() => ((delegate* unmanaged<int>)threadNumber)();

        public int Threads() => ((delegate* unmanaged<int>)threads)();

        public bool InParallel() => ((delegate* unmanaged<int>)inParallel)() != 0;

        public static Native? Find()
        {
            if (!LibTorchSwitches.TryGetLibrary(out var handle)) return null;
            return NativeLibrary.TryGetExport(handle, "GOMP_parallel", out var parallel)
                && NativeLibrary.TryGetExport(handle, "omp_get_thread_num", out var number)
                && NativeLibrary.TryGetExport(handle, "omp_get_num_threads", out var count)
                && NativeLibrary.TryGetExport(handle, "omp_in_parallel", out var inParallel)
                ? new Native(parallel, number, count, inParallel)
                : null;
        }
    }
}
