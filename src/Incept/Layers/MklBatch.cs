using System.Runtime.InteropServices;
using Incept.Runtime;

namespace Incept.Layers;

/// <summary>
/// MKL's batch of float32 matrix products, <c>cblas_sgemm_batch</c>, as the MKL linked into libtorch's CPU library
/// exports it: the products that libtorch's <c>bmm</c> runs, written into memory the caller already has (TorchSharp has
/// no <c>bmm</c> with an output argument, and a fresh output per call costs page faults).
/// </summary>
internal static unsafe class MklBatch
{
    private const int RowMajor = 101;
    private const int NoTrans = 111;
    private const int Trans = 112;

    private static readonly IntPtr Entry = Find();

    /// <summary>Whether the entry point was found.</summary>
    public static bool Available => Entry != IntPtr.Zero;

    /// <summary>
    /// C[i] = A[i]·B[i] for i below <paramref name="count"/>, all row-major: A[i] [m, k] at <paramref name="a"/> +
    /// i·<paramref name="aStride"/> with rows <paramref name="lda"/> apart, B[i] [k, n] dense at <paramref name="b"/> +
    /// i·k·n, C[i] [m, n] at <paramref name="c"/> + i·<paramref name="cStride"/> with rows n apart. On the calling thread
    /// inside a parallel region, on MKL's threads outside one.
    /// </summary>
    public static void Multiply(int count, long m, long n, long k, float* a, long aStride, long lda, float* b, float* c, long cStride)
    {
        var aList = stackalloc float*[count];
        var bList = stackalloc float*[count];
        var cList = stackalloc float*[count];
        for (int i = 0; i < count; i++)
        {
            aList[i] = a + i * aStride;
            bList[i] = b + i * k * n;
            cList[i] = c + i * cStride;
        }

        Call(NoTrans, count, m, n, k, aList, lda, bList, n, cList, beta: 0);
    }

    /// <summary>
    /// C[i] += A[i]ᵀ·B[i] for i below <paramref name="count"/>, row-major: A[i] [k, m] at <paramref name="a"/> +
    /// i·<paramref name="aStride"/> with rows <paramref name="lda"/> apart, B[i] [k, n] at <paramref name="b"/> +
    /// i·<paramref name="bStride"/> with rows <paramref name="ldb"/> apart, C[i] [m, n] dense at <paramref name="c"/> +
    /// i·m·n. On the calling thread inside a parallel region, on MKL's threads outside one.
    /// </summary>
    public static void AddTransposedProducts(int count, long m, long n, long k, float* a, long aStride, long lda, float* b, long bStride, long ldb, float* c)
    {
        var aList = stackalloc float*[count];
        var bList = stackalloc float*[count];
        var cList = stackalloc float*[count];
        for (int i = 0; i < count; i++)
        {
            aList[i] = a + i * aStride;
            bList[i] = b + i * bStride;
            cList[i] = c + i * m * n;
        }

        Call(Trans, count, m, n, k, aList, lda, bList, ldb, cList, beta: 1);
    }

    // One group of `count` products C = op(A)·B + beta·C, C's rows n apart, through cblas_sgemm_batch.
    private static void Call(int transA, int count, long m, long n, long k, float** aList, long lda, float** bList, long ldb, float** cList, float beta)
    {
        if (Entry == IntPtr.Zero) throw new InvalidOperationException("MKL's cblas_sgemm_batch is not available in this libtorch.");
        if (m > int.MaxValue || n > int.MaxValue || k > int.MaxValue || lda > int.MaxValue || ldb > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(m), "The matrices are too large for MKL's 32-bit sizes.");
        int transB = NoTrans, mm = (int)m, nn = (int)n, kk = (int)k, ldA = (int)lda, ldB = (int)ldb, ldC = (int)n, size = count;
        float alpha = 1;
        ((delegate* unmanaged<int, int*, int*, int*, int*, int*, float*, float**, int*, float**, int*, float*, float**, int*, int, int*, void>)Entry)(
            RowMajor, &transA, &transB, &mm, &nn, &kk, &alpha, aList, &ldA, bList, &ldB, &beta, cList, &ldC, 1, &size);
    }

    private static IntPtr Find()
        => LibTorchSwitches.TryGetLibrary(out var handle) && NativeLibrary.TryGetExport(handle, "cblas_sgemm_batch", out var entry) ? entry : IntPtr.Zero;
}
