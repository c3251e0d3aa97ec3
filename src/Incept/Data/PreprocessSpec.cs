namespace Incept.Data;

/// <summary>
/// How images must be prepared for a set of weights: resize the shorter side to
/// <c>InputSize / CropFraction</c> with <see cref="Interpolation"/>, centre-crop <see cref="InputSize"/>,
/// scale pixel values to [0, <see cref="Scale"/>], subtract <see cref="Mean"/> and divide by <see cref="Std"/>
/// per channel, in BGR order when <see cref="Bgr"/> is set.
/// </summary>
public sealed record PreprocessSpec(int InputSize, double CropFraction, string Interpolation, float[] Mean, float[] Std, bool Bgr, double Scale);
