namespace Incept.Data;

/// <summary>One image and its class index.</summary>
/// <param name="Image">The image, 8-bit, height × width × channels.</param>
/// <param name="Label">The class index into <see cref="IImageDataset.ClassNames"/>.</param>
public readonly record struct LabeledImage(ByteImage Image, int Label);

/// <summary>
/// A fixed, indexed set of labelled images. Implementations must allow <see cref="Get"/> and
/// <see cref="GetLabel"/> to be called from several threads at once: data loaders decode in parallel.
/// </summary>
public interface IImageDataset
{
    /// <summary>Number of samples.</summary>
    int Count { get; }

    /// <summary>Class names; a label is an index into this list.</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>The image and label of sample <paramref name="index"/> (decoded on each call where the source is encoded).</summary>
#pragma warning disable CA1716 // 'Get' is a Visual Basic keyword; the short name matches dataset APIs elsewhere and VB can still call it as [Get].
    LabeledImage Get(int index);
#pragma warning restore CA1716

    /// <summary>The label of sample <paramref name="index"/>, without decoding its image.</summary>
    int GetLabel(int index);
}
