using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Incept.Layers;

/// <summary>
/// The panel product's kernels in 512-bit registers, for CPUs with AVX-512: a panel's 16 output channels fill one
/// register, so a block of rows is multiplied by two neighbouring panels at once (six rows × two panels, twelve
/// accumulators: enough independent sums to keep both FMA units busy through their latency), reading 32 weights and
/// broadcasting one input value per row each step. The panels' layout is the same as the 256-bit kernels'.
/// </summary>
internal sealed unsafe partial class PanelProduct
{
    /// <summary>Whether the CPU runs the 512-bit kernels (AVX-512 Foundation).</summary>
    /// <remarks>
    /// Read from the CPU on every call, not kept in a static field: the other part of this class reads it in its own
    /// static initialisers, and C# leaves the order of initialisers in different files of a partial class open (kept in
    /// a field, it read as false there).
    /// </remarks>
    public static bool WideSupported => Avx512F.IsSupported;

    // A block of `count` rows (1 to 6, `ldx` apart) times the two panels at `panel` and `panel + inputs·16`; the sums go to
    // `first` and `second` ([count][16] each). Four to six rows take the six-row kernel, one to three the three-row one,
    // each repeating its block's last row where the rows fall short (a 3×3 grid's nine rows: 6 + 3).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockPair(float* source, long ldx, int count, float* panel, long inputs, long ahead, float* first, float* second)
    {
        if (ahead > 0) BlockPair<Prefetch>(source, ldx, count, panel, inputs, ahead, first, second);
        else BlockPair<NoPrefetch>(source, ldx, count, panel, inputs, 0, first, second);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockPair<TFetch>(float* source, long ldx, int count, float* panel, long inputs, long ahead, float* first, float* second)
        where TFetch : struct, IWeightFetch
    {
        long last = count - 1;
        if (count > 3)
            WidePair6<TFetch>(source, source + ldx, source + 2 * ldx, source + 3 * ldx, source + Math.Min(4, last) * ldx, source + Math.Min(5, last) * ldx,
                panel, inputs, ahead, first, second);
        else
            WidePair3<TFetch>(source, source + Math.Min(1, last) * ldx, source + Math.Min(2, last) * ldx, panel, inputs, ahead, first, second);
    }

    // A block of `count` rows (1 to 6) times one panel (the last of an odd number), in six 512-bit accumulators.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockWide(float* source, long ldx, int count, float* panel, long inputs, long ahead, float* sums)
    {
        long last = count - 1;
        float* x1 = source + Math.Min(1, last) * ldx, x2 = source + Math.Min(2, last) * ldx, x3 = source + Math.Min(3, last) * ldx;
        float* x4 = source + Math.Min(4, last) * ldx, x5 = source + Math.Min(5, last) * ldx;
        if (ahead > 0) Wide6<Prefetch>(source, x1, x2, x3, x4, x5, panel, inputs, ahead, sums);
        else Wide6<NoPrefetch>(source, x1, x2, x3, x4, x5, panel, inputs, 0, sums);
    }

    // Six rows times two panels in twelve accumulators; the sums of the first panel go to `first`, of the second to
    // `second` ([6][16] each). Written out for six rows, as the 256-bit kernel is, so that the accumulators stay in registers.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WidePair6<TFetch>(float* x0, float* x1, float* x2, float* x3, float* x4, float* x5, float* panel, long inputs, long ahead,
        float* first, float* second)
        where TFetch : struct, IWeightFetch
    {
        var a0 = Vector512<float>.Zero;
        Vector512<float> b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0, a4 = a0, b4 = a0, a5 = a0, b5 = a0;
        Vector512<float> wa, wb, v;
        float* w = panel, u = panel + inputs * Width;
        long k = 0;
        for (long whole = inputs & ~1L; k < whole; k += 2, w += 2 * Width, u += 2 * Width)
        {
            TFetch.Ahead(w + ahead);
            TFetch.Ahead(u + ahead);
            wa = Avx512F.LoadVector512(w);
            wb = Avx512F.LoadVector512(u);
            v = Vector512.Create(x0[k]); a0 = Avx512F.FusedMultiplyAdd(v, wa, a0); b0 = Avx512F.FusedMultiplyAdd(v, wb, b0);
            v = Vector512.Create(x1[k]); a1 = Avx512F.FusedMultiplyAdd(v, wa, a1); b1 = Avx512F.FusedMultiplyAdd(v, wb, b1);
            v = Vector512.Create(x2[k]); a2 = Avx512F.FusedMultiplyAdd(v, wa, a2); b2 = Avx512F.FusedMultiplyAdd(v, wb, b2);
            v = Vector512.Create(x3[k]); a3 = Avx512F.FusedMultiplyAdd(v, wa, a3); b3 = Avx512F.FusedMultiplyAdd(v, wb, b3);
            v = Vector512.Create(x4[k]); a4 = Avx512F.FusedMultiplyAdd(v, wa, a4); b4 = Avx512F.FusedMultiplyAdd(v, wb, b4);
            v = Vector512.Create(x5[k]); a5 = Avx512F.FusedMultiplyAdd(v, wa, a5); b5 = Avx512F.FusedMultiplyAdd(v, wb, b5);
            TFetch.Ahead(w + Width + ahead);
            TFetch.Ahead(u + Width + ahead);
            wa = Avx512F.LoadVector512(w + Width);
            wb = Avx512F.LoadVector512(u + Width);
            v = Vector512.Create(x0[k + 1]); a0 = Avx512F.FusedMultiplyAdd(v, wa, a0); b0 = Avx512F.FusedMultiplyAdd(v, wb, b0);
            v = Vector512.Create(x1[k + 1]); a1 = Avx512F.FusedMultiplyAdd(v, wa, a1); b1 = Avx512F.FusedMultiplyAdd(v, wb, b1);
            v = Vector512.Create(x2[k + 1]); a2 = Avx512F.FusedMultiplyAdd(v, wa, a2); b2 = Avx512F.FusedMultiplyAdd(v, wb, b2);
            v = Vector512.Create(x3[k + 1]); a3 = Avx512F.FusedMultiplyAdd(v, wa, a3); b3 = Avx512F.FusedMultiplyAdd(v, wb, b3);
            v = Vector512.Create(x4[k + 1]); a4 = Avx512F.FusedMultiplyAdd(v, wa, a4); b4 = Avx512F.FusedMultiplyAdd(v, wb, b4);
            v = Vector512.Create(x5[k + 1]); a5 = Avx512F.FusedMultiplyAdd(v, wa, a5); b5 = Avx512F.FusedMultiplyAdd(v, wb, b5);
        }

        if (k < inputs)
        {
            wa = Avx512F.LoadVector512(w);
            wb = Avx512F.LoadVector512(u);
            v = Vector512.Create(x0[k]); a0 = Avx512F.FusedMultiplyAdd(v, wa, a0); b0 = Avx512F.FusedMultiplyAdd(v, wb, b0);
            v = Vector512.Create(x1[k]); a1 = Avx512F.FusedMultiplyAdd(v, wa, a1); b1 = Avx512F.FusedMultiplyAdd(v, wb, b1);
            v = Vector512.Create(x2[k]); a2 = Avx512F.FusedMultiplyAdd(v, wa, a2); b2 = Avx512F.FusedMultiplyAdd(v, wb, b2);
            v = Vector512.Create(x3[k]); a3 = Avx512F.FusedMultiplyAdd(v, wa, a3); b3 = Avx512F.FusedMultiplyAdd(v, wb, b3);
            v = Vector512.Create(x4[k]); a4 = Avx512F.FusedMultiplyAdd(v, wa, a4); b4 = Avx512F.FusedMultiplyAdd(v, wb, b4);
            v = Vector512.Create(x5[k]); a5 = Avx512F.FusedMultiplyAdd(v, wa, a5); b5 = Avx512F.FusedMultiplyAdd(v, wb, b5);
        }

        Avx512F.Store(first, a0);
        Avx512F.Store(first + Width, a1);
        Avx512F.Store(first + 2 * Width, a2);
        Avx512F.Store(first + 3 * Width, a3);
        Avx512F.Store(first + 4 * Width, a4);
        Avx512F.Store(first + 5 * Width, a5);
        Avx512F.Store(second, b0);
        Avx512F.Store(second + Width, b1);
        Avx512F.Store(second + 2 * Width, b2);
        Avx512F.Store(second + 3 * Width, b3);
        Avx512F.Store(second + 4 * Width, b4);
        Avx512F.Store(second + 5 * Width, b5);
    }

    // Three rows times two panels in six accumulators, four inputs a turn; as WidePair6 otherwise.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WidePair3<TFetch>(float* x0, float* x1, float* x2, float* panel, long inputs, long ahead, float* first, float* second)
        where TFetch : struct, IWeightFetch
    {
        var a0 = Vector512<float>.Zero;
        Vector512<float> b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0;
        Vector512<float> wa, wb, v;
        float* w = panel, u = panel + inputs * Width;
        for (long k = 0; k < inputs; k++, w += Width, u += Width)
        {
            TFetch.Ahead(w + ahead);
            TFetch.Ahead(u + ahead);
            wa = Avx512F.LoadVector512(w);
            wb = Avx512F.LoadVector512(u);
            v = Vector512.Create(x0[k]); a0 = Avx512F.FusedMultiplyAdd(v, wa, a0); b0 = Avx512F.FusedMultiplyAdd(v, wb, b0);
            v = Vector512.Create(x1[k]); a1 = Avx512F.FusedMultiplyAdd(v, wa, a1); b1 = Avx512F.FusedMultiplyAdd(v, wb, b1);
            v = Vector512.Create(x2[k]); a2 = Avx512F.FusedMultiplyAdd(v, wa, a2); b2 = Avx512F.FusedMultiplyAdd(v, wb, b2);
        }

        Avx512F.Store(first, a0);
        Avx512F.Store(first + Width, a1);
        Avx512F.Store(first + 2 * Width, a2);
        Avx512F.Store(second, b0);
        Avx512F.Store(second + Width, b1);
        Avx512F.Store(second + 2 * Width, b2);
    }

    // Six rows times one panel in six accumulators, two inputs a turn.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Wide6<TFetch>(float* x0, float* x1, float* x2, float* x3, float* x4, float* x5, float* panel, long inputs, long ahead, float* sums)
        where TFetch : struct, IWeightFetch
    {
        var a0 = Vector512<float>.Zero;
        Vector512<float> a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
        Vector512<float> w, v;
        float* p = panel;
        for (long k = 0; k < inputs; k++, p += Width)
        {
            TFetch.Ahead(p + ahead);
            w = Avx512F.LoadVector512(p);
            v = Vector512.Create(x0[k]); a0 = Avx512F.FusedMultiplyAdd(v, w, a0);
            v = Vector512.Create(x1[k]); a1 = Avx512F.FusedMultiplyAdd(v, w, a1);
            v = Vector512.Create(x2[k]); a2 = Avx512F.FusedMultiplyAdd(v, w, a2);
            v = Vector512.Create(x3[k]); a3 = Avx512F.FusedMultiplyAdd(v, w, a3);
            v = Vector512.Create(x4[k]); a4 = Avx512F.FusedMultiplyAdd(v, w, a4);
            v = Vector512.Create(x5[k]); a5 = Avx512F.FusedMultiplyAdd(v, w, a5);
        }

        Avx512F.Store(sums, a0);
        Avx512F.Store(sums + Width, a1);
        Avx512F.Store(sums + 2 * Width, a2);
        Avx512F.Store(sums + 3 * Width, a3);
        Avx512F.Store(sums + 4 * Width, a4);
        Avx512F.Store(sums + 5 * Width, a5);
    }
}
