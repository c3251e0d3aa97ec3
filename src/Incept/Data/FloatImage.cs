using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Data;

/// <summary>
/// A float32 image, channels first (channels × height × width, "CHW"), the layout transforms work on and
/// networks take.
/// </summary>
public sealed class FloatImage
{
    private readonly float[] _data;

    /// <summary>Wraps <paramref name="data"/> (not copied), laid out channels × height × width.</summary>
    public FloatImage(int channels, int height, int width, float[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (data.Length != (long)channels * height * width)
            throw new ArgumentException($"A {channels}x{height}x{width} image needs {(long)channels * height * width} values, not {data.Length}.", nameof(data));
        Channels = channels;
        Height = height;
        Width = width;
        _data = data;
    }

    /// <summary>Creates a zero-filled image.</summary>
    public FloatImage(int channels, int height, int width)
        : this(channels, height, width, new float[checked(channels * height * width)]) { }

    /// <summary>Channels (planes).</summary>
    public int Channels { get; }

    /// <summary>Rows.</summary>
    public int Height { get; }

    /// <summary>Columns.</summary>
    public int Width { get; }

    /// <summary>The values, channels × height × width; the image shares this memory.</summary>
    public Span<float> Data => _data;

    /// <summary>The value of channel <paramref name="c"/> at row <paramref name="y"/>, column <paramref name="x"/>.</summary>
    public float this[int c, int y, int x]
    {
        get => _data[(c * Height + y) * Width + x];
        set => _data[(c * Height + y) * Width + x] = value;
    }

    /// <summary>
    /// Copies the image into a new float32 tensor of shape channels × height × width. The caller owns the
    /// tensor (it joins the current dispose scope, if any).
    /// </summary>
    public Tensor ToTensor() => torch.tensor(_data, [Channels, Height, Width], ScalarType.Float32);

    internal float[] Array => _data;
}
