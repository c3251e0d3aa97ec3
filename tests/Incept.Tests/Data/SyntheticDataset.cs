using Incept.Data;

namespace Incept.Tests.Data;

/// <summary>
/// <paramref name="count"/> deterministic RGB images whose pixels encode the sample index, labelled by
/// <paramref name="labelOf"/>; counts calls to <see cref="Get"/> so tests can see which samples were read.
/// </summary>
internal sealed class SyntheticDataset(int count, int height, int width, Func<int, int> labelOf, int classes) : IImageDataset
{
    private int _reads;

    public int Count => count;

    public IReadOnlyList<string> ClassNames { get; } = [.. Enumerable.Range(0, classes).Select(c => $"class{c}")];

    public int Reads => _reads;

    public LabeledImage Get(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, count);
        Interlocked.Increment(ref _reads);
        var pixels = new byte[height * width * 3];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)((index * 31 + i * 7) % 256);
        return new LabeledImage(new ByteImage(height, width, 3, pixels), labelOf(index));
    }

    public int GetLabel(int index) => labelOf(index);
}
