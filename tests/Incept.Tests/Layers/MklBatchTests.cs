using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>MKL's batch of products, called directly, gives libtorch's bmm on strided inputs and outputs.</summary>
public unsafe class MklBatchTests
{
    [Fact]
    public void Products_of_row_blocks_land_in_the_given_rows_of_a_larger_output()
    {
        Assert.True(MklBatch.Available, "libtorch's CPU library exports cblas_sgemm_batch on linux-x64");
        manual_seed(8);
        // Three products of 5 rows out of blocks of 7 (the rest of each block is not read or written).
        using var a = randn(3, 7, 24);
        using var b = randn(3, 24, 40);
        using var nan = float.NaN.ToScalar();
        using var c = full([3, 7, 40], nan);
        fixed (byte* pa = a.bytes, pb = b.bytes, pc = c.bytes)
            MklBatch.Multiply(3, 5, 40, 24, (float*)pa, 7 * 24, 24, (float*)pb, (float*)pc, 7 * 40);
        using var expected = a.narrow(1, 0, 5).bmm(b);
        using var written = c.narrow(1, 0, 5);
        Assert.True(written.allclose(expected, rtol: 1e-5, atol: 1e-5));
        Assert.True(c.narrow(1, 5, 2).isnan().all().item<bool>());
    }
}
