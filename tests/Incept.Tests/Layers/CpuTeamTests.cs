using System.Collections.Concurrent;
using Incept.Layers;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>
/// The teams Incept's kernels run on: every part exactly once, on no more threads than libtorch has, failures rethrown
/// on the caller; inside a pass, on Incept's own workers with libtorch on one thread, its thread count restored after.
/// </summary>
public class CpuTeamTests
{
    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 37)]
    [InlineData(true, 1)]
    [InlineData(true, 2)]
    [InlineData(true, 37)]
    public void Every_part_runs_once_on_at_most_the_team_s_threads(bool inPass, int parts)
    {
        int before = get_num_threads();
        try
        {
            set_num_threads(2);
            var runs = new int[parts];
            var threads = new ConcurrentDictionary<int, bool>();
            using (inPass ? CpuTeam.Pass() : null)
            {
                Assert.Equal(2, CpuTeam.Size);
                // Inside a pass libtorch itself runs on the caller's thread alone.
                Assert.Equal(inPass ? 1 : 2, get_num_threads());
                CpuTeam.Run(parts, i =>
                {
                    Interlocked.Increment(ref runs[i]);
                    threads[Environment.CurrentManagedThreadId] = true;
                    Thread.SpinWait(2000);
                });
            }

            Assert.All(runs, count => Assert.Equal(1, count));
            Assert.InRange(threads.Count, 1, Math.Min(2, parts));
            Assert.Equal(2, get_num_threads());
        }
        finally
        {
            set_num_threads(before);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_failing_part_is_rethrown_on_the_caller_after_the_others_ran(bool inPass)
    {
        int before = get_num_threads();
        try
        {
            set_num_threads(2);
            int ran = 0;
            using (inPass ? CpuTeam.Pass() : null)
            {
                var e = Assert.Throws<InvalidOperationException>(() => CpuTeam.Run(8, i =>
                {
                    Interlocked.Increment(ref ran);
                    if (i == 3) throw new InvalidOperationException("part 3");
                }));
                Assert.Equal("part 3", e.Message);
                // The team is usable again after a failure.
                int after = 0;
                CpuTeam.Run(4, _ => Interlocked.Increment(ref after));
                Assert.Equal(4, after);
            }

            Assert.Equal(8, ran);
        }
        finally
        {
            set_num_threads(before);
        }
    }

    [Fact]
    public void A_pass_inside_a_pass_or_on_one_thread_changes_nothing()
    {
        int before = get_num_threads();
        try
        {
            set_num_threads(1);
            Assert.Null(CpuTeam.Pass());
            set_num_threads(2);
            using (var outer = CpuTeam.Pass())
            {
                Assert.NotNull(outer);
                Assert.Null(CpuTeam.Pass());
                Assert.Equal(2, CpuTeam.Size);
            }

            Assert.Equal(2, get_num_threads());
        }
        finally
        {
            set_num_threads(before);
        }
    }
}
