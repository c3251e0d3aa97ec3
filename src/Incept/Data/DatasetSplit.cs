namespace Incept.Data;

/// <summary>A view of some samples of another data set, in the order of <see cref="Indices"/>.</summary>
public sealed class Subset : IImageDataset
{
    private readonly int[] _indices;

    /// <summary>Selects the samples <paramref name="indices"/> of <paramref name="source"/> (copied).</summary>
    public Subset(IImageDataset source, IEnumerable<int> indices)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(indices);
        _indices = [.. indices];
        foreach (var i in _indices)
        {
            if (i < 0 || i >= source.Count)
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"Index outside the source's {source.Count} samples.");
        }
        Source = source;
    }

    /// <summary>The data set the samples come from.</summary>
    public IImageDataset Source { get; }

    /// <summary>The source indices of this subset's samples.</summary>
    public IReadOnlyList<int> Indices => _indices;

    /// <inheritdoc/>
    public int Count => _indices.Length;

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => Source.ClassNames;

    /// <inheritdoc/>
    public LabeledImage Get(int index) => Source.Get(_indices[index]);

    /// <inheritdoc/>
    public int GetLabel(int index) => Source.GetLabel(_indices[index]);
}

/// <summary>Training and validation parts of one data set.</summary>
/// <param name="Train">The samples kept for training.</param>
/// <param name="Validation">The samples held out.</param>
public sealed record DatasetSplit(Subset Train, Subset Validation)
{
    /// <summary>
    /// Holds out a fraction of <paramref name="dataset"/> for validation, deterministically for a given
    /// <paramref name="seed"/>. Stratified (the default), each class gives round(fraction × its count) samples,
    /// chosen by a seeded shuffle of that class's indices, so the class balance is kept; otherwise round(fraction ×
    /// count) samples are chosen by a seeded shuffle of all indices. Both parts list their samples in source order.
    /// </summary>
    public static DatasetSplit Create(IImageDataset dataset, double validationFraction, int seed, bool stratified = true)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (!(validationFraction >= 0 && validationFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be between 0 and 1.");
        var random = new Random(seed);
        var held = new bool[dataset.Count];
        IEnumerable<int[]> groups = stratified
            ? Enumerable.Range(0, dataset.Count).GroupBy(dataset.GetLabel).OrderBy(g => g.Key).Select(g => g.ToArray())
            : [Enumerable.Range(0, dataset.Count).ToArray()];
        foreach (var group in groups)
        {
            Shuffle(group, random);
            int take = (int)Math.Round(validationFraction * group.Length, MidpointRounding.AwayFromZero);
            for (int k = 0; k < take; k++) held[group[k]] = true;
        }
        var train = Enumerable.Range(0, dataset.Count).Where(i => !held[i]);
        var validation = Enumerable.Range(0, dataset.Count).Where(i => held[i]);
        return new DatasetSplit(new Subset(dataset, train), new Subset(dataset, validation));
    }

    /// <summary>Fisher–Yates shuffle in place, drawing from <paramref name="random"/>.</summary>
    internal static void Shuffle(int[] items, Random random)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
