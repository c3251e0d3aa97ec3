using System.Runtime.InteropServices;
using Incept.Layers;
using Incept.Models;
using Incept.Registry;
using Incept.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Runtime;

public class StepMemoryTests
{
    [Fact]
    public void A_plan_never_gives_blocks_live_at_the_same_time_the_same_bytes()
    {
        var random = new Random(7);
        for (int trial = 0; trial < 20; trial++)
        {
            // A random interleaving of allocations and frees, some blocks never freed.
            var blocks = new List<RecordedBlock>();
            var open = new List<int>();
            int events = 0;
            for (int i = 0; i < 300; i++)
            {
                if (open.Count > 0 && random.Next(3) == 0)
                {
                    int k = random.Next(open.Count);
                    blocks[open[k]] = blocks[open[k]] with { Freed = events++ };
                    open.RemoveAt(k);
                }

                open.Add(blocks.Count);
                blocks.Add(new RecordedBlock(random.Next(1, 5_000_000), events++, int.MaxValue));
            }

            var plan = StepMemoryPlan.Create(blocks);
            for (int a = 0; a < blocks.Count; a++)
            {
                long aEnd = plan.Offsets[a] + StepMemoryPlan.Rounded(blocks[a].Size);
                Assert.True(aEnd <= plan.Size);
                Assert.Equal(0, plan.Offsets[a] % StepMemoryPlan.Alignment);
                for (int b = a + 1; b < blocks.Count; b++)
                {
                    bool together = blocks[a].Allocated < blocks[b].Freed && blocks[b].Allocated < blocks[a].Freed;
                    bool shared = plan.Offsets[a] < plan.Offsets[b] + StepMemoryPlan.Rounded(blocks[b].Size) && plan.Offsets[b] < aEnd;
                    Assert.False(together && shared, $"blocks {a} and {b} are live together and overlap");
                }
            }

            Assert.True(plan.Size >= plan.LiveBound);
        }
    }

    [Fact]
    public void Blocks_that_follow_each_other_share_their_memory()
    {
        // A chain, as a network's forward pass makes: each block freed after the next one is made.
        var blocks = new[]
        {
            new RecordedBlock(1 << 20, 0, 2), new RecordedBlock(2 << 20, 1, 4), new RecordedBlock(1 << 20, 3, 6),
            new RecordedBlock(2 << 20, 5, 7),
        };
        var plan = StepMemoryPlan.Create(blocks);
        Assert.Equal(3L << 20, plan.LiveBound);
        Assert.Equal(plan.LiveBound, plan.Size);
        Assert.Equal(plan.Offsets[0], plan.Offsets[2]);
        Assert.Equal(plan.Offsets[1], plan.Offsets[3]);
    }

    [Fact]
    public void The_import_slots_of_libtorch_allocator_are_found()
    {
        Assert.Empty(ElfImportSlots.Find(typeof(StepMemoryTests).Assembly.Location, new HashSet<string> { "free" }));
        if (!OperatingSystem.IsLinux()) return;
        Incept.Runtime.TorchRuntime.EnsureAvailable();
        var library = ElfImportSlots.Mappings().First(m => m.Offset == 0 && Path.GetFileName(m.Path) == "libc10.so");
        var slots = ElfImportSlots.Find(library.Path, new HashSet<string> { "posix_memalign", "free", "no_such_function" });
        Assert.Contains(slots, s => s.Symbol == "posix_memalign");
        Assert.Contains(slots, s => s.Symbol == "free");
        Assert.DoesNotContain(slots, s => s.Symbol == "no_such_function");
        Assert.All(slots, s => Assert.Equal(0, s.Offset % 8));
    }

    [Fact]
    public void Planned_steps_compute_what_unplanned_steps_compute_and_take_their_tensors_from_the_buffer()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        var (plainLosses, plainWeights) = Train(plan: false, out _);
        var (plannedLosses, plannedWeights) = Train(plan: true, out var statistics);
        Assert.Equal(plainLosses, plannedLosses);
        Assert.Equal(plainWeights, plannedWeights);
        Assert.NotNull(statistics);
        Assert.Equal(1, statistics.Value.Plans);
        Assert.True(statistics.Value.PlannedBlocks > 10, $"{statistics.Value.PlannedBlocks} blocks planned");
        Assert.True(statistics.Value.LastStepServed * 2 > statistics.Value.PlannedBlocks, $"served {statistics.Value.LastStepServed} of {statistics.Value.PlannedBlocks}");
        Assert.True(statistics.Value.ArenaBytes >= statistics.Value.LiveBoundBytes);
        // The session put libc10's slots back when it ended.
        Assert.False(StepMemory.Installed);
        Assert.Null(StepMemory.Statistics);
    }

    [Fact]
    public void A_tensor_kept_past_its_free_keeps_its_values_while_the_next_steps_run()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        Incept.Runtime.TorchRuntime.EnsureAvailable();
        const long n = 1 << 18; // 1 MiB of float32
        Tensor? kept = null;
        using var one = 1f.ToScalar();
        using var two = 2f.ToScalar();
        using var three = 3f.ToScalar();
        using (var session = StepMemory.Start())
        {
            Assert.NotNull(session);
            for (int step = 0; step < 4; step++)
            {
                bool keep = step == 2;
                using (StepMemory.Step())
                {
                    // a and b live together; c comes after a is freed, so the plan gives c a's bytes.
                    var a = full(n, one);
                    var b = a.mul(two);
                    if (keep) kept = a;
                    else a.Dispose();
                    var c = b.mul(three);
                    b.Dispose();
                    Assert.Equal(6f * n, c.sum().item<float>());
                    c.Dispose();
                }

                if (step == 1) Assert.Equal(3, StepMemory.Statistics!.Value.LastStepServed);
                if (kept is not null) Assert.Equal((float)n, kept.sum().item<float>()); // c did not take a's bytes
            }
        }

        Assert.True(StepMemory.Installed); // a served tensor is still allocated
        Assert.Equal((float)n, kept!.sum().item<float>());
        kept.Dispose();
        Assert.False(StepMemory.Installed);
    }

    [Fact]
    public void Only_one_session_runs_at_a_time()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        Incept.Runtime.TorchRuntime.EnsureAvailable();
        using (var first = StepMemory.Start())
        {
            Assert.NotNull(first);
            Assert.True(StepMemory.Installed);
            Assert.Null(StepMemory.Start());
        }

        Assert.False(StepMemory.Installed);
        using var again = StepMemory.Start();
        Assert.NotNull(again);
    }

    // Five SGD steps of a small googlenet (channels-last, Winograd on, as `incept train` runs them); the losses and the
    // final weights.
    private static (float[] Losses, float[] Weights) Train(bool plan, out StepMemoryStatistics? statistics)
    {
        Incept.Runtime.TorchRuntime.EnsureAvailable();
        manual_seed(3);
        using var model = ModelFactory.Create(ModelRegistry.Get("googlenet"), new ModelConfig { NumClasses = 5, AuxLogits = true });
        MemoryFormat.ToChannelsLast(model);
        WinogradTraining.Use(model, true);
        model.train();
        using var optimizer = new Incept.Training.Sgd(model.parameters(), 0.01, momentum: 0.9, weightDecay: 1e-4);
        using var raw = randn(4, 3, 96, 96);
        using var x = MemoryFormat.ToChannelsLast(raw);
        using var y = tensor(new long[] { 0, 1, 2, 4 });
        var losses = new List<float>();
        statistics = null;
        using (var session = plan ? StepMemory.Start() : null)
        {
            Assert.Equal(plan, session is not null);
            for (int step = 0; step < 5; step++)
            {
                using (StepMemory.Step())
                using (var scope = NewDisposeScope())
                {
                    optimizer.zero_grad();
                    var output = model.call(x);
                    var loss = Incept.Training.Losses.Total(output, y, 0.3);
                    loss.backward();
                    optimizer.step();
                    losses.Add(loss.item<float>());
                }
            }

            statistics = StepMemory.Statistics;
        }

        using var weights = torch.cat(model.parameters().Select(p => p.detach().flatten()).ToList());
        return (losses.ToArray(), weights.data<float>().ToArray());
    }
}
