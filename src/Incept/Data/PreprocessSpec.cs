namespace Incept.Data;

/// <summary>
/// How images are prepared for a network or a set of weights: the evaluation input size and crop, the
/// resampling filter, and the normalisation. <see cref="ImagePipeline.Evaluation"/> and
/// <see cref="ImagePipeline.Training"/> turn it into transforms.
/// </summary>
/// <param name="InputSize">Side of the square network input, such as 299.</param>
/// <param name="CropFraction">
/// Fraction of the resized image that the evaluation centre crop keeps: the shorter side is resized to
/// floor(<paramref name="InputSize"/> / <paramref name="CropFraction"/>) and then the centre
/// <paramref name="InputSize"/> square is cut, as timm's <c>crop_pct</c> (0.875 for most Inception weights).
/// </param>
/// <param name="Interpolation">Resampling filter: <c>bilinear</c>, <c>bicubic</c> or <c>nearest</c>.</param>
/// <param name="Mean">Per-channel mean subtracted, in the output channel order and in <paramref name="Scale"/> units.</param>
/// <param name="Std">Per-channel standard deviation divided by, in the output channel order and in <paramref name="Scale"/> units.</param>
/// <param name="Bgr">Whether the network takes channels in BGR order (Caffe-trained weights) rather than RGB.</param>
/// <param name="Scale">What the brightest value maps to before normalisation: 1 for [0, 1] inputs, 255 for [0, 255].</param>
/// <param name="Antialias">
/// Whether the evaluation resize widens its filter when shrinking, as Pillow and torchvision's <c>antialias=True</c>
/// do (true for every published Inception weight set; absent from older metadata, where it means true).
/// </param>
#pragma warning disable CA1819 // A plain record: the arrays are metadata values that are never mutated.
public sealed record PreprocessSpec(
    int InputSize,
    double CropFraction,
    string Interpolation,
    float[] Mean,
    float[] Std,
    bool Bgr,
    double Scale,
    bool Antialias = true);
#pragma warning restore CA1819
