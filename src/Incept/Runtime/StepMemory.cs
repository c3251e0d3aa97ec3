using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Incept.Runtime;

/// <summary>What a <see cref="StepMemory"/> session has done so far (for tests and the benchmark's notes).</summary>
/// <param name="Plans">Steps recorded and planned.</param>
/// <param name="ArenaBytes">Bytes of the current plan's buffer (0 before the first plan).</param>
/// <param name="LiveBoundBytes">The most bytes of planned blocks live at once in the recorded step.</param>
/// <param name="PlannedBlocks">Blocks in the current plan.</param>
/// <param name="LastStepServed">Allocations the last replayed step took from the buffer.</param>
public readonly record struct StepMemoryStatistics(int Plans, long ArenaBytes, long LiveBoundBytes, int PlannedBlocks, int LastStepServed);

/// <summary>
/// Plans where a training step's large tensors live. A training step asks for the same tensors in the same order every
/// time, and a caching allocator such as tcmalloc, placing each one as it is asked for, keeps free memory between them
/// that the step's peak then includes (docs/benchmarks.md, twenty-sixth to twenty-eighth sessions). A session records
/// one step's allocations of <see cref="Threshold"/> bytes or more on the thread that runs it (sizes, and when each is
/// freed), lays them out in one buffer (<see cref="StepMemoryPlan"/>) and serves the next steps' allocations from
/// there, in order, as long as they come as recorded: any allocation of another size, or whose place is still taken,
/// goes to the allocator as before, so a step that differs is still computed right, only not from the buffer.
/// <para>
/// libtorch allocates tensor memory through <c>posix_memalign</c> and <c>free</c> in <c>libc10.so</c>; a session points
/// that library's import slots for the two (<see cref="ElfImportSlots"/>) at this class, on Linux x86-64 only, and
/// puts them back when it ends and nothing it served is still allocated. Elsewhere, or when the slots cannot be found
/// or do not hold what they should, <see cref="Start"/> returns null and training goes on as before.
/// </para>
/// </summary>
public static unsafe class StepMemory
{
    /// <summary>Allocations smaller than this stay with the allocator.</summary>
    public const long Threshold = 256 << 10;

    // How far ahead of the expected allocation a replayed step may find its size (allocations the recorded step made
    // and this one does not, such as the first step's gradients and momentum buffers, are skipped).
    private const int LookAhead = 64;
    private const int MaxPlans = 4;
    private const int HugePageAdvice = 14; // MADV_HUGEPAGE
    private const int DontNeedAdvice = 4; // MADV_DONTNEED
    private const int ProtRead = 1, ProtWrite = 2, ProtExec = 4;

    private static readonly Lock Gate = new();
    private static Session? current;

    [ThreadStatic] private static bool onStepThread;

    // The functions libc10's slots held, called for everything this class does not serve.
    private static delegate* unmanaged<void**, nuint, nuint, int> allocate;
    private static delegate* unmanaged<void*, void> release;
    private static List<(nint Slot, nint Original)>? patched;
    private static bool exitHandled;

    // The buffer the current plan serves from; read without the lock on every free.
    private static byte* arena;
    private static long arenaSize;

    /// <summary>
    /// Starts planning the training steps that follow (each inside <see cref="Step"/>); null where this cannot run here
    /// (not Linux x86-64, libc10 not loaded or not as expected, or another session still running).
    /// </summary>
    public static IDisposable? Start()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return null;
        lock (Gate)
        {
            if (current is not null || arena is not null) return null;
            if (patched is null && !Install()) return null;
            current = new Session();
            return current;
        }
    }

    /// <summary>Marks one training step on this thread; dispose it when the step (and its dispose scope) has ended.</summary>
    public static StepScope Step() => new(current);

    /// <summary>
    /// Gives the buffer's pages back to the system while no step runs and nothing served is allocated (before an
    /// evaluation pass, which allocates outside the plan); the next step faults them in again.
    /// </summary>
    public static void Trim()
    {
        lock (Gate)
        {
            if (arena is null || current is not { CanTrim: true }) return;
            if (NativeLibrary.TryGetExport(NativeLibrary.GetMainProgramHandle(), "madvise", out var madvise))
                ((delegate* unmanaged<void*, nuint, int, int>)madvise)(arena, (nuint)Mapped(arenaSize), DontNeedAdvice);
        }
    }

    /// <summary>The running session's statistics, or null.</summary>
    public static StepMemoryStatistics? Statistics
    {
        get
        {
            lock (Gate) return current?.Statistics;
        }
    }

    /// <summary>Whether libc10's slots point here now.</summary>
    internal static bool Installed
    {
        get
        {
            lock (Gate) return patched is not null;
        }
    }

    /// <summary>One training step of the current session.</summary>
    public readonly struct StepScope : IDisposable
    {
        private readonly Session? session;

        internal StepScope(Session? session)
        {
            this.session = session;
            session?.Begin();
        }

        /// <summary>Ends the step.</summary>
        public void Dispose() => session?.End();
    }

    /// <summary>A run of planned steps.</summary>
    internal sealed class Session : IDisposable
    {
        private readonly List<RecordedBlock> recorded = [];
        private readonly Dictionary<nint, int> open = [];
        private readonly List<(long Start, long End)> live = [];
        private long[] sizes = [];
        private long[] offsets = [];
        private int events, next, served, lowSteps, plans;
        private bool recording, replaying, replan, ended;
        private long liveBound;

        public StepMemoryStatistics Statistics => new(plans, arenaSize, liveBound, sizes.Length, served);

        public void Begin()
        {
            lock (Gate)
            {
                if (ended) return;
                onStepThread = true;
                if (replan && live.Count == 0) Unmap();
                if (arena is null)
                {
                    if (plans >= MaxPlans) return;
                    recorded.Clear();
                    open.Clear();
                    events = 0;
                    recording = true;
                }
                else
                {
                    next = 0;
                    served = 0;
                    replaying = true;
                }
            }
        }

        public void End()
        {
            bool plannedNow = false;
            lock (Gate)
            {
                onStepThread = false;
                if (recording)
                {
                    recording = false;
                    plannedNow = PlanRecorded();
                }
                else if (replaying)
                {
                    replaying = false;
                    // Two steps in a row served mostly by the allocator: the steps have changed; plan again.
                    lowSteps = served * 2 < sizes.Length ? lowSteps + 1 : 0;
                    replan = lowSteps >= 2;
                }
            }

            // What the recorded step left free in the allocator goes back to the system, so that the buffer comes on top
            // of what is live rather than of the allocator's cache.
            if (plannedNow) ReleaseAllocatorCache();
        }

        public void Dispose()
        {
            lock (Gate)
            {
                ended = true;
                recording = replaying = false;
                if (live.Count == 0) Close();
            }
        }

        private bool PlanRecorded()
        {
            if (recorded.Count == 0) return false;
            int end = events + 1;
            var blocks = recorded.Select(b => b.Freed < 0 ? b with { Freed = end } : b).ToList();
            open.Clear();
            var plan = StepMemoryPlan.Create(blocks);
            void* buffer = Map(plan.Size);
            if (buffer is null) return false;
            plans++;
            arena = (byte*)buffer;
            arenaSize = plan.Size;
            sizes = blocks.Select(b => b.Size).ToArray();
            offsets = plan.Offsets;
            liveBound = plan.LiveBound;
            lowSteps = 0;
            replan = false;
            return true;
        }

        // Called with the lock held.
        public void* Allocate(nuint alignment, nuint size)
        {
            if (recording)
            {
                void* p;
                if (allocate(&p, alignment, size) != 0) return null;
                open[(nint)p] = recorded.Count;
                recorded.Add(new RecordedBlock((long)size, events++, -1));
                return p;
            }

            if (!replaying) return null;
            int found = -1;
            for (int i = next; i < sizes.Length && i < next + LookAhead; i++)
            {
                if (sizes[i] == (long)size)
                {
                    found = i;
                    break;
                }
            }

            if (found < 0) return null;
            next = found + 1;
            long start = offsets[found], end = start + StepMemoryPlan.Rounded((long)size);
            foreach (var (s, e) in live)
                if (s < end && start < e) return null;
            live.Add((start, end));
            served++;
            return arena + start;
        }

        // Called with the lock held, for a pointer into the buffer.
        public void FreeServed(long offset)
        {
            for (int i = 0; i < live.Count; i++)
            {
                if (live[i].Start != offset) continue;
                live[i] = live[^1];
                live.RemoveAt(live.Count - 1);
                break;
            }

            if (live.Count == 0 && ended) Close();
        }

        // Called with the lock held, for any pointer while a step is recorded.
        public void NoteFree(nint p)
        {
            if (recording && open.Remove(p, out int index)) recorded[index] = recorded[index] with { Freed = events++ };
        }

        public bool Recording => recording;

        public bool CanTrim => !recording && !replaying && live.Count == 0;

        private void Close()
        {
            Unmap();
            if (ReferenceEquals(current, this)) current = null;
            Uninstall();
        }

        private static void Unmap()
        {
            if (arena is null) return;
            byte* buffer = arena;
            long size = arenaSize;
            arena = null;
            arenaSize = 0;
            Munmap(buffer, size);
        }
    }

    [UnmanagedCallersOnly]
    private static int PosixMemalignHook(void** result, nuint alignment, nuint size)
    {
        if ((long)size >= Threshold && onStepThread && alignment <= StepMemoryPlan.Alignment)
        {
            lock (Gate)
            {
                if (current is { } session)
                {
                    void* p = session.Allocate(alignment, size);
                    if (p is not null)
                    {
                        *result = p;
                        return 0;
                    }

                    if (session.Recording) return 12; // ENOMEM: the allocator itself refused
                }
            }
        }

        return allocate(result, alignment, size);
    }

    [UnmanagedCallersOnly]
    private static void FreeHook(void* p)
    {
        if (p is null) return;
        // The buffer is read once: it is only replaced while nothing served from it is allocated, so a pointer into it
        // is never freed across the change.
        byte* buffer = arena;
        long offset = (byte*)p - buffer;
        if (buffer is not null && offset >= 0 && offset < arenaSize)
        {
            lock (Gate) current?.FreeServed(offset);
            return;
        }

        var session = current;
        if (session is not null && session.Recording)
        {
            lock (Gate) current?.NoteFree((nint)p);
        }

        release(p);
    }

    // Points libc10's slots for posix_memalign and free at the hooks; false, changing nothing, when anything is not as expected.
    private static bool Install()
    {
        try
        {
            var main = NativeLibrary.GetMainProgramHandle();
            if (!NativeLibrary.TryGetExport(main, "posix_memalign", out var realAllocate) || !NativeLibrary.TryGetExport(main, "free", out var realFree)
                || !NativeLibrary.TryGetExport(main, "mprotect", out var mprotect))
                return false;
            var mappings = ElfImportSlots.Mappings();
            var library = mappings.FirstOrDefault(m => m.Offset == 0 && Path.GetFileName(m.Path) == "libc10.so");
            if (library.Path is null or "") return false;
            var own = mappings.Where(m => m.Path == library.Path).ToList();
            long bias = (long)library.Start - ElfImportSlots.FirstLoadAddress(library.Path);
            var slots = ElfImportSlots.Find(library.Path, new HashSet<string> { "posix_memalign", "free" });
            if (!slots.Any(s => s.Symbol == "posix_memalign") || !slots.Any(s => s.Symbol == "free")) return false;

            var writes = new List<(nint Slot, nint Original, nint Hook)>();
            foreach (var (symbol, offset) in slots)
            {
                ulong address = (ulong)(bias + offset);
                if (address % 8 != 0 || !own.Any(m => address >= m.Start && address + 8 <= m.End)) return false;
                nint value = *(nint*)address;
                nint real = symbol == "free" ? realFree : realAllocate;
                // A slot holds the function itself once bound, or, before the first call, an address in the library's
                // own code (its PLT stub). Anything else means a slot that is not what this class expects.
                bool inOwnCode = own.Any(m => m.Permissions.Contains('x', StringComparison.Ordinal) && (ulong)value >= m.Start && (ulong)value < m.End);
                if (value != real && !inOwnCode) return false;
                delegate* unmanaged<void**, nuint, nuint, int> allocateHook = &PosixMemalignHook;
                delegate* unmanaged<void*, void> freeHook = &FreeHook;
                writes.Add(((nint)address, value, symbol == "free" ? (nint)freeHook : (nint)allocateHook));
            }

            allocate = (delegate* unmanaged<void**, nuint, nuint, int>)realAllocate;
            release = (delegate* unmanaged<void*, void>)realFree;
            var protect = (delegate* unmanaged<void*, nuint, int, int>)mprotect;
            var undo = new List<(nint Slot, nint Original)>();
            foreach (var (slot, original, hook) in writes)
            {
                var mapping = own.First(m => (ulong)slot >= m.Start && (ulong)slot < m.End);
                int flags = (mapping.Permissions[0] == 'r' ? ProtRead : 0) | (mapping.Permissions[1] == 'w' ? ProtWrite : 0) | (mapping.Permissions[2] == 'x' ? ProtExec : 0);
                void* page = (void*)((ulong)slot & ~0xFFFUL);
                if (mapping.Permissions[1] != 'w' && protect(page, 4096, flags | ProtWrite) != 0) break;
                Volatile.Write(ref *(nint*)slot, hook);
                if (mapping.Permissions[1] != 'w') protect(page, 4096, flags);
                undo.Add((slot, original));
            }

            patched = undo;
            if (undo.Count != writes.Count)
            {
                Uninstall();
                return false;
            }

            if (!exitHandled)
            {
                exitHandled = true;
                AppDomain.CurrentDomain.ProcessExit += (_, _) => current?.Dispose();
            }

            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    // Called with the lock held.
    private static void Uninstall()
    {
        if (patched is null) return;
        NativeLibrary.TryGetExport(NativeLibrary.GetMainProgramHandle(), "mprotect", out var mprotect);
        var protect = (delegate* unmanaged<void*, nuint, int, int>)mprotect;
        var mappings = ElfImportSlots.Mappings();
        foreach (var (slot, original) in patched)
        {
            var mapping = mappings.First(m => (ulong)slot >= m.Start && (ulong)slot < m.End);
            void* page = (void*)((ulong)slot & ~0xFFFUL);
            int flags = (mapping.Permissions[0] == 'r' ? ProtRead : 0) | (mapping.Permissions[2] == 'x' ? ProtExec : 0);
            bool writable = mapping.Permissions[1] == 'w';
            if (!writable) protect(page, 4096, flags | ProtWrite);
            Volatile.Write(ref *(nint*)slot, original);
            if (!writable) protect(page, 4096, flags);
        }

        patched = null;
    }

    private static void* Map(long size)
    {
        var main = NativeLibrary.GetMainProgramHandle();
        if (!NativeLibrary.TryGetExport(main, "mmap", out var mmap)) return null;
        const int ReadWrite = ProtRead | ProtWrite, PrivateAnonymousNoReserve = 0x02 | 0x20 | 0x4000;
        long length = Mapped(size);
        void* p = ((delegate* unmanaged<void*, nuint, int, int, int, nint, void*>)mmap)(null, (nuint)length, ReadWrite, PrivateAnonymousNoReserve, -1, 0);
        if (p == (void*)-1) return null;
        // Huge pages where the kernel gives them on request: the step streams the whole buffer, and 2 MiB pages spare
        // the TLB (inception_v3's fastest steps 0–13 % quicker in three alternated runs, medians level within the
        // noise; docs/benchmarks.md, twenty-eighth session).
        if (NativeLibrary.TryGetExport(main, "madvise", out var madvise))
            ((delegate* unmanaged<void*, nuint, int, int>)madvise)(p, (nuint)length, HugePageAdvice);
        return p;
    }

    private static void Munmap(byte* p, long size)
    {
        if (!NativeLibrary.TryGetExport(NativeLibrary.GetMainProgramHandle(), "munmap", out var munmap)) return;
        ((delegate* unmanaged<void*, nuint, int>)munmap)(p, (nuint)Mapped(size));
    }

    // The buffer's length as mapped: whole 2 MiB pages.
    private static long Mapped(long size) => (size + (2L << 20) - 1) & ~((2L << 20) - 1);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ReleaseAllocatorCache()
    {
        var main = NativeLibrary.GetMainProgramHandle();
        if (NativeLibrary.TryGetExport(main, "MallocExtension_ReleaseFreeMemory", out var tcmalloc))
            ((delegate* unmanaged<void>)tcmalloc)();
        else if (NativeLibrary.TryGetExport(main, "malloc_trim", out var trim))
            ((delegate* unmanaged<nuint, int>)trim)(0);
    }
}
