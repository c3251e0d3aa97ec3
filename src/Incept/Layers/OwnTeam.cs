using System.Runtime.ExceptionServices;

namespace Incept.Layers;

/// <summary>
/// Incept's own worker threads, on which <see cref="CpuTeam"/> runs its jobs inside a pass of the fast engine (see
/// <see cref="CpuTeam.Pass"/>). The caller works on each job too and then waits only for the parts a worker has begun,
/// never for a worker that has not woken yet. An OpenMP region instead ends at a barrier that every thread of its team
/// must reach, so one core taken away for a few milliseconds (another process, a virtual machine's neighbour) holds up
/// every layer: on the 2-core machine of docs/benchmarks.md, in a busy spell, inception_resnet_v1's batch-1 pass took
/// 33 ms so against 49 ms on OpenMP's threads (ONNX Runtime, whose pool works this way as well: 24 ms).
/// </summary>
/// <remarks>
/// Workers are made as a pass first needs them and live as long as the process (background threads). Between jobs a
/// worker spins for about a millisecond, longer than the gaps between the layers of a pass, then sleeps until the next
/// job is posted. A job takes at most as many workers as its caller asked for, however many exist.
/// </remarks>
internal static class OwnTeam
{
    // Rounds of Thread.SpinWait(20) before a worker sleeps: about a millisecond.
    private const int SpinRounds = 2000;

    private static readonly Lock Gate = new();
    private static readonly SemaphoreSlim Wake = new(0);
    private static volatile Work? posted;
    private static int workers;
    private static int generation;
    private static int sleeping;

    /// <summary>
    /// Runs parts 0 … <paramref name="parts"/> − 1 on the caller and up to <paramref name="threads"/> − 1 workers,
    /// returning when all have run; rethrows the first exception a part threw. One job at a time: callers are the
    /// engine's passes, one per thread, and a second caller waits for the first job to end.
    /// </summary>
    public static void Run(int parts, int threads, Action<int> part)
    {
        ArgumentNullException.ThrowIfNull(part);
        if (parts <= 0) return;
        int helpers = Math.Min(threads, parts) - 1;
        if (helpers <= 0)
        {
            for (int i = 0; i < parts; i++) part(i);
            return;
        }

        lock (Gate)
        {
            while (workers < helpers)
            {
                var thread = new Thread(Loop) { IsBackground = true, Name = $"Incept worker {++workers}" };
                thread.Start();
            }

            var work = new Work(part, parts, helpers);
            posted = work;
            Interlocked.Increment(ref generation);
            int asleep = Volatile.Read(ref sleeping);
            if (asleep > 0) Wake.Release(Math.Min(asleep, helpers));
            work.Help();
            var wait = new SpinWait();
            while (Volatile.Read(ref work.Done) < parts) wait.SpinOnce(-1);
            posted = null;
            work.Failure?.Throw();
        }
    }

    private static void Loop()
    {
        int seen = Volatile.Read(ref generation);
        while (true)
        {
            int rounds = 0;
            while (Volatile.Read(ref generation) == seen)
            {
                if (++rounds < SpinRounds)
                {
                    Thread.SpinWait(20);
                    continue;
                }

                Interlocked.Increment(ref sleeping);
                if (Volatile.Read(ref generation) == seen) Wake.Wait();
                Interlocked.Decrement(ref sleeping);
                rounds = 0;
            }

            seen = Volatile.Read(ref generation);
            if (posted is { } work && work.Join()) work.Help();
        }
    }

    private sealed class Work(Action<int> part, int parts, int helpers)
    {
        private int claimed;
        private int seats = helpers;
        public int Done;
        public ExceptionDispatchInfo? Failure;

        // A worker may help while the job has seats left (the caller's thread count).
        public bool Join() => Interlocked.Decrement(ref seats) >= 0;

        // Claims and runs parts until none is left.
        public void Help()
        {
            for (int i = Interlocked.Increment(ref claimed) - 1; i < parts; i = Interlocked.Increment(ref claimed) - 1)
            {
                try
                {
                    part(i);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref Failure, ExceptionDispatchInfo.Capture(e), null);
                }
                finally
                {
                    Interlocked.Increment(ref Done);
                }
            }
        }
    }
}
