using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Incept.Runtime;
using TorchSharp;

namespace Incept.Layers;

/// <summary>
/// Runs a job in parts side by side on libtorch's own OpenMP threads, each thread claiming the next part left as it
/// finishes one, so that each core works through its parts from start to end, libtorch and MKL calls included, without
/// handing over between parallel regions inside a part.
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
    /// How many parts a job is cut into per thread where its work allows: the threads claim parts as they finish their
    /// last, so a core that the system takes away for a while (another process, a virtual machine's neighbour) leaves
    /// its remaining parts to the others instead of holding up the whole job with a fixed share.
    /// </summary>
    public const int PartsPerThread = 4;

    /// <summary>
    /// How many parts to cut <paramref name="units"/> equal units of work into: <see cref="PartsPerThread"/> per thread,
    /// or <paramref name="minimum"/> where that is more, never more than the units, and a multiple of the thread count
    /// where there are enough units, so that equal parts end together (3 parts on 2 threads leave one thread idle for a
    /// third of the job).
    /// </summary>
    public static int PartsFor(long units, long minimum = 0)
    {
        int size = Size;
        long parts = Math.Min(units, Math.Max(minimum, (long)size * PartsPerThread));
        if (parts > size) parts -= parts % size;
        return (int)Math.Clamp(parts, 1, int.MaxValue);
    }

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
            Omp.Parallel(&Enter, (void*)GCHandle.ToIntPtr(handle), (uint)Math.Min(parts, Size));
        }
        finally
        {
            handle.Free();
        }

        job.Failure?.Throw();
    }

    // Runs on every thread of the region: each thread claims the next part not yet taken until none is left.
    [UnmanagedCallersOnly]
    private static void Enter(void* data)
    {
        var job = (Job)GCHandle.FromIntPtr((IntPtr)data).Target!;
        try
        {
            for (int i = Interlocked.Increment(ref job.Claimed) - 1; i < job.Parts; i = Interlocked.Increment(ref job.Claimed) - 1)
                job.Part(i);
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
        public int Claimed;
        public ExceptionDispatchInfo? Failure;
    }

    /// <summary>libgomp's entry points, found through libtorch's CPU library, which links them.</summary>
    private sealed class Native(IntPtr parallel, IntPtr inParallel)
    {
        public void Parallel(delegate* unmanaged<void*, void> body, void* data, uint count)
            => ((delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void>)parallel)(body, data, count, 0);

        public bool InParallel() => ((delegate* unmanaged<int>)inParallel)() != 0;

        public static Native? Find()
        {
            if (!LibTorchSwitches.TryGetLibrary(out var handle)) return null;
            return NativeLibrary.TryGetExport(handle, "GOMP_parallel", out var parallel)
                && NativeLibrary.TryGetExport(handle, "omp_in_parallel", out var inParallel)
                ? new Native(parallel, inParallel)
                : null;
        }
    }
}
