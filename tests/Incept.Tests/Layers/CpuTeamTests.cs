using System.Collections.Concurrent;
using Incept.Layers;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>
/// The team Incept's kernels run on: every part exactly once, claimed by the threads as they come free, on no more
/// threads than libtorch has; failures rethrown on the caller.
/// </summary>
public class CpuTeamTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(37)]
    public void Every_part_runs_once_on_at_most_libtorch_s_threads(int parts)
    {
        TwoThreads.Run(() =>
        {
            var runs = new int[parts];
            var threads = new ConcurrentDictionary<int, bool>();
            CpuTeam.Run(parts, i =>
            {
                Interlocked.Increment(ref runs[i]);
                threads[Environment.CurrentManagedThreadId] = true;
                Thread.SpinWait(2000);
        });
        Assert.All(runs, count => Assert.Equal(1, count));
        Assert.InRange(threads.Count, 1, Math.Min(2, parts));
        });
    }

    [Theory]
    [InlineData(0, 0, 1)]
    [InlineData(1, 0, 1)]
    [InlineData(3, 0, 2)]      // not 3 on 2 threads: one would idle for a third of the job
    [InlineData(5, 0, 4)]
    [InlineData(100, 0, 8)]    // 4 per thread
    [InlineData(2091, 29, 28)] // at least the chunks, rounded down to a multiple of the threads
    [InlineData(6, 29, 6)]
    public void Parts_are_a_multiple_of_the_threads_where_the_work_allows(long units, long minimum, int expected)
    {
        TwoThreads.Run(() =>
        {
            if (CpuTeam.Size != 2) return;
            Assert.Equal(expected, CpuTeam.PartsFor(units, minimum));
        });
    }

    [Fact]
    public void A_thread_held_up_in_one_part_leaves_the_other_parts_to_the_rest()
    {
        TwoThreads.Run(() =>
        {
            if (CpuTeam.Size < 2) return;
            // Part 0 waits until the other thread has run every other part: with fixed shares (parts i, i + 2, ...) it
            // would wait for parts 2, 4, 6 that only its own thread would run, and time out.
            var done = new int[8];
            int others = 0, seenBeforeTimeout = -1;
            CpuTeam.Run(8, i =>
            {
                if (i == 0)
                {
                    var waited = System.Diagnostics.Stopwatch.StartNew();
                    while (Volatile.Read(ref others) < 7 && waited.ElapsedMilliseconds < 5000) Thread.SpinWait(100);
                    seenBeforeTimeout = Volatile.Read(ref others);
                }
                else
                {
                    Interlocked.Increment(ref others);
                }

                done[i] = 1;
        });
        Assert.All(done, d => Assert.Equal(1, d));
        Assert.Equal(7, seenBeforeTimeout);
        });
    }

    [Fact]
    public void A_failing_part_is_rethrown_on_the_caller_after_the_others_ran()
    {
        TwoThreads.Run(() =>
        {
            int ran = 0;
            var e = Assert.Throws<InvalidOperationException>(() => CpuTeam.Run(8, i =>
            {
                Interlocked.Increment(ref ran);
                if (i == 3) throw new InvalidOperationException("part 3");
            }));
            Assert.Equal("part 3", e.Message);
            Assert.Equal(8, ran);
        });
    }
}
