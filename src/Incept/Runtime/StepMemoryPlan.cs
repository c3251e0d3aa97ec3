namespace Incept.Runtime;

/// <summary>
/// One large allocation seen in a recorded training step: its size in bytes and the positions, in the step's sequence
/// of large allocations and frees, at which it was made and released (<see cref="Freed"/> past every other event for a
/// block the step did not release).
/// </summary>
internal readonly record struct RecordedBlock(long Size, int Allocated, int Freed);

/// <summary>
/// Where each block of a recorded step goes in one buffer, so that blocks live at the same time never share bytes:
/// the offline counterpart of a caching allocator, which has to place each block when it is asked for, not knowing
/// when the blocks around it will be freed. Largest blocks first, each at the lowest offset that clears the blocks
/// already placed whose lifetimes overlap its own (the usual greedy order of static memory planners).
/// </summary>
internal sealed class StepMemoryPlan
{
    /// <summary>Every block starts on a boundary of this many bytes (a page).</summary>
    public const long Alignment = 4096;

    private StepMemoryPlan(long[] offsets, long size, long liveBound)
    {
        Offsets = offsets;
        Size = size;
        LiveBound = liveBound;
    }

    /// <summary>Each block's offset in the buffer, in the recorded order.</summary>
    public long[] Offsets { get; }

    /// <summary>Bytes the buffer needs.</summary>
    public long Size { get; }

    /// <summary>The most bytes (each block rounded up to <see cref="Alignment"/>) live at one time: no plan needs less.</summary>
    public long LiveBound { get; }

    /// <summary>A block's size rounded up to <see cref="Alignment"/>.</summary>
    public static long Rounded(long size) => (size + Alignment - 1) / Alignment * Alignment;

    /// <summary>Plans <paramref name="blocks"/>.</summary>
    public static StepMemoryPlan Create(IReadOnlyList<RecordedBlock> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        int n = blocks.Count;
        var offsets = new long[n];
        // Largest first; among equal sizes the earlier allocation first, so that the plan does not depend on the sort.
        var order = Enumerable.Range(0, n).OrderByDescending(i => Rounded(blocks[i].Size)).ThenBy(i => blocks[i].Allocated).ToArray();
        var placed = new List<int>(n);
        var conflicts = new List<int>();
        long top = 0;
        foreach (int i in order)
        {
            var block = blocks[i];
            long size = Rounded(block.Size);
            conflicts.Clear();
            foreach (int j in placed)
            {
                var other = blocks[j];
                if (other.Allocated < block.Freed && block.Allocated < other.Freed) conflicts.Add(j);
            }

            conflicts.Sort((a, b) => offsets[a].CompareTo(offsets[b]));
            long offset = 0;
            foreach (int j in conflicts)
            {
                if (offsets[j] >= offset + size) break;
                offset = Math.Max(offset, offsets[j] + Rounded(blocks[j].Size));
            }

            offsets[i] = offset;
            placed.Add(i);
            top = Math.Max(top, offset + size);
        }

        return new StepMemoryPlan(offsets, top, LiveBytesBound(blocks));
    }

    private static long LiveBytesBound(IReadOnlyList<RecordedBlock> blocks)
    {
        var changes = new SortedDictionary<int, long>();
        foreach (var b in blocks)
        {
            long size = Rounded(b.Size);
            changes[b.Allocated] = changes.GetValueOrDefault(b.Allocated) + size;
            changes[b.Freed] = changes.GetValueOrDefault(b.Freed) - size;
        }

        long live = 0, most = 0;
        foreach (long change in changes.Values)
        {
            live += change;
            most = Math.Max(most, live);
        }

        return most;
    }
}
