using Incept.Training.Reporting;

namespace Incept.Tests.Training;

public sealed class TrainingPlotsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("incept-plots-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static (int Width, int Height) PngSize(string path)
    {
        var b = File.ReadAllBytes(path);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], b[..4]);
        return (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(16)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(20)));
    }

    [Fact]
    public void Curves_are_written_as_png()
    {
        var path = Path.Combine(dir, "loss.png");
        TrainingPlots.Curves(path, "loss", "cross-entropy", new Dictionary<string, IReadOnlyList<CurvePoint>>
        {
            ["train"] = [new(0.5, 2.0), new(1, 1.2), new(2, 0.7)],
            ["test"] = [new(1, 1.0), new(2, 0.8)],
        });
        Assert.Equal((800, 500), PngSize(path));
    }

    [Fact]
    public void A_confusion_matrix_is_written_as_png_and_a_wrong_shape_is_refused()
    {
        var path = Path.Combine(dir, "cm.png");
        TrainingPlots.ConfusionMatrix(path, new long[,] { { 5, 1, 0 }, { 0, 6, 0 }, { 2, 0, 4 } }, ["a", "b", "c"], "confusion");
        Assert.Equal((900, 800), PngSize(path));
        Assert.Throws<ArgumentException>(() => TrainingPlots.ConfusionMatrix(path, new long[2, 3], ["a", "b"], "x"));
    }
}
