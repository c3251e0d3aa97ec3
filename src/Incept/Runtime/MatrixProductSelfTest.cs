using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Runtime;

/// <summary>The outcome of <see cref="MatrixProductSelfTest.Run()"/>.</summary>
/// <param name="Passed">Whether every product agreed with the one computed in C#.</param>
/// <param name="Failure">The first product that did not, with its relative error; null when all passed.</param>
/// <param name="Cases">How many products ran.</param>
public sealed record MatrixProductCheckResult(bool Passed, string? Failure, int Cases);

/// <summary>
/// Checks libtorch's float32 matrix products on the CPU (MKL's <c>sgemm</c> and <c>sgemv</c>) against products
/// computed here in float64 from the same float32 values: plain, with either side transposed, with a bias, and a
/// single row as a <c>Linear</c> layer at batch 1 computes it.
/// </summary>
/// <remarks>
/// <see cref="MklDispatch"/> runs it after letting MKL use its AVX-512 code path on a CPU that MKL does not itself
/// give that path, and goes back to MKL's own choice if it fails. The sizes leave partial blocks in every dimension.
/// The inputs are fixed formulas, so the check neither reads nor moves torch's random number generator.
/// </remarks>
public static class MatrixProductSelfTest
{
    /// <summary>Relative tolerance: the largest error allowed, as a share of the largest exact value.</summary>
    public const double Tolerance = 1e-4;

    private static readonly Case[] Cases =
    [
        new(Rows: 67, Inner: 129, Columns: 45, TransposeLeft: false, TransposeRight: false, Bias: false),
        new(Rows: 67, Inner: 129, Columns: 45, TransposeLeft: true, TransposeRight: false, Bias: false),
        new(Rows: 301, Inner: 259, Columns: 131, TransposeLeft: false, TransposeRight: true, Bias: true),
        new(Rows: 1, Inner: 1024, Columns: 203, TransposeLeft: false, TransposeRight: true, Bias: true),
    ];

    /// <summary>Runs every product on the CPU in float32 and compares it with float64 arithmetic in C#.</summary>
    public static MatrixProductCheckResult Run() =>
        Run(static (left, right, bias) => bias is null ? left.mm(right) : torch.addmm(bias, left, right, 1, 1));

    /// <summary>
    /// Runs every case with <paramref name="product"/> (left, right, optional bias added to every row) as the float32
    /// product under test.
    /// </summary>
    internal static MatrixProductCheckResult Run(Func<Tensor, Tensor, Tensor?, Tensor> product)
    {
        using var noGrad = no_grad();
        foreach (var c in Cases)
        {
            using var scope = NewDisposeScope();
            if (Check(c, product) is { } failure) return new MatrixProductCheckResult(false, failure, Cases.Length);
        }

        return new MatrixProductCheckResult(true, null, Cases.Length);
    }

    private static string? Check(Case c, Func<Tensor, Tensor, Tensor?, Tensor> product)
    {
        var a = Values(c.Rows * c.Inner, 0.37);
        var b = Values(c.Inner * c.Columns, 0.11);
        var bias = c.Bias ? Values(c.Columns, 0.23) : null;

        // Stored transposed where the case says so, then viewed back: MKL sees a transposed operand.
        var left = c.TransposeLeft
            ? torch.tensor(Transpose(a, c.Rows, c.Inner), [c.Inner, c.Rows]).t()
            : torch.tensor(a, [c.Rows, c.Inner]);
        var right = c.TransposeRight
            ? torch.tensor(Transpose(b, c.Inner, c.Columns), [c.Columns, c.Inner]).t()
            : torch.tensor(b, [c.Inner, c.Columns]);
        var output = product(left, right, bias is null ? null : torch.tensor(bias)).contiguous().data<float>().ToArray();

        double largest = 0, error = 0;
        for (int i = 0; i < c.Rows; i++)
        {
            for (int j = 0; j < c.Columns; j++)
            {
                double sum = bias?[j] ?? 0;
                for (int k = 0; k < c.Inner; k++) sum += (double)a[i * c.Inner + k] * b[k * c.Columns + j];
                largest = Math.Max(largest, Math.Abs(sum));
                error = Math.Max(error, Math.Abs(output[i * c.Columns + j] - sum));
            }
        }

        if (error <= Tolerance * largest) return null;
        string shape = $"{c.Rows}×{c.Inner} by {c.Inner}×{c.Columns}";
        string how = (c.TransposeLeft, c.TransposeRight) switch
        {
            (true, _) => " with the left side transposed",
            (_, true) => " with the right side transposed",
            _ => "",
        };
        return $"the float32 matrix product {shape}{how}{(c.Bias ? " plus a bias" : "")} is off by {error / largest:P0} of its range";
    }

    /// <summary>sin(0.5 + k × <paramref name="step"/>) for k = 1, 2, …, rounded to float32.</summary>
    private static float[] Values(int count, double step)
    {
        var values = new float[count];
        for (int k = 0; k < count; k++) values[k] = (float)Math.Sin(0.5 + (k + 1) * step);
        return values;
    }

    private static float[] Transpose(float[] m, int rows, int columns)
    {
        var t = new float[m.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                t[j * rows + i] = m[i * columns + j];
        return t;
    }

    private sealed record Case(int Rows, int Inner, int Columns, bool TransposeLeft, bool TransposeRight, bool Bias);
}
