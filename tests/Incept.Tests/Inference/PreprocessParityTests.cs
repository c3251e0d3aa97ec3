using Incept.Data;
using Incept.Data.Transforms;
using Incept.Tests.Data;
using Incept.Tests.Scripts;
using Incept.Weights;
using SkiaSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Incept.Tests.Inference;

/// <summary>
/// Image files through Incept's evaluation preprocessing and through torchvision's transforms
/// (Scripts/preprocess_reference.py, Debian's python3-torchvision): the torchvision (224, crop 0.875, ImageNet
/// mean/std) and Inception (299, crop 0.875, mean = std = 0.5) specs, bilinear and bicubic, on landscape,
/// portrait, grayscale, smaller-than-target and larger images.
/// </summary>
public sealed class PreprocessParityTests(ITestOutputHelper log) : IDisposable
{
    private static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];
    private static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];
    private static readonly float[] Half = [0.5f, 0.5f, 0.5f];

    private static readonly (string Name, PreprocessSpec Spec)[] Specs =
    [
        ("tv_bilinear", new(224, 0.875, "bilinear", ImageNetMean, ImageNetStd, false, 1.0)),
        ("tv_bicubic", new(224, 0.875, "bicubic", ImageNetMean, ImageNetStd, false, 1.0)),
        ("inception_bilinear", new(299, 0.875, "bilinear", Half, Half, false, 1.0)),
        ("inception_bicubic", new(299, 0.875, "bicubic", Half, Half, false, 1.0)),
    ];

    private readonly TempFolder dir = new();

    public void Dispose() => dir.Dispose();

    [SkippableFact]
    public void Images_prepared_by_Incept_match_torchvision_exactly_for_png_and_up_to_the_decoder_for_jpeg()
    {
        PythonReference.Require("torch, torchvision, PIL");
        string[] png =
        [
            TestImages.Write(dir.File("landscape.png"), 400, 300, gray: false, seed: 1),
            TestImages.Write(dir.File("portrait.png"), 180, 250, gray: false, seed: 2),
            TestImages.Write(dir.File("gray.png"), 333, 517, gray: true, seed: 3),
            TestImages.Write(dir.File("wide.png"), 640, 203, gray: false, seed: 4),
        ];
        string[] jpeg =
        [
            TestImages.Write(dir.File("photo.jpg"), 360, 270, gray: false, seed: 5, SKEncodedImageFormat.Jpeg, quality: 90),
            TestImages.Write(dir.File("grayphoto.jpg"), 230, 310, gray: true, seed: 6, SKEncodedImageFormat.Jpeg, quality: 90),
        ];
        Assert.Equal(0, PngColourType(png[2])); // a true grayscale PNG, not RGB with equal channels
        PythonReference.RunOrFail("preprocess_reference.py", [dir.Path, .. png, .. jpeg]);

        foreach (var (name, spec) in Specs)
        {
            var preprocessor = new ImagePreprocessor(spec, 3);
            // The same steps with a float resize, to compare with torchvision's resize of float tensors.
            var floatPipeline = new ImagePipeline(
                new GrayscaleToRgb(), new Resize((int)Math.Floor(spec.InputSize / spec.CropFraction), InterpolationNames.Parse(spec.Interpolation)),
                new CenterCrop(spec.InputSize), Normalize.From(spec));
            foreach (var image in png)
            {
                var stem = Path.GetFileNameWithoutExtension(image);
                double pil = Differences(preprocessor.Load(image), Expected(stem, name, "pil")).Max;
                double tensor = Differences(floatPipeline.Apply(ImageDecoder.DecodeRgb(image), new Random(0)), Expected(stem, name, "tensor")).Max;
                log.WriteLine($"{stem,-10} {name,-20} max |Δ| vs PIL images {pil:G3}, float resize vs tensors {tensor:G3}");
                Assert.True(pil <= 1e-2, $"{stem} {name}: max |Δ| {pil:G3} from torchvision on PIL images exceeds 1e-2");
                // Pillow's 8-bit arithmetic is reproduced exactly: only float rounding of the normalisation could remain.
                Assert.True(pil <= 1e-5, $"{stem} {name}: max |Δ| {pil:G3} from torchvision on PIL images; Incept should reproduce Pillow's levels exactly");
                Assert.True(tensor <= 1e-4, $"{stem} {name}: max |Δ| {tensor:G3} from torchvision on float tensors exceeds 1e-4");
            }

            // SkiaSharp and PIL may decode JPEG differently (IDCT, chroma upsampling), so only the mean is bounded.
            foreach (var image in jpeg)
            {
                var stem = Path.GetFileNameWithoutExtension(image);
                var (max, mean) = Differences(preprocessor.Load(image), Expected(stem, name, "pil"));
                log.WriteLine($"{stem,-10} {name,-20} max |Δ| vs PIL images {max:G3}, mean {mean:G3}");
                Assert.True(mean <= 1e-2, $"{stem} {name}: mean |Δ| {mean:G3} from torchvision on PIL images exceeds 1e-2");
            }
        }
    }

    private string Expected(string stem, string spec, string path) => Path.Combine(dir.Path, $"{stem}_{spec}_{path}.npy");

    private static (double Max, double Mean) Differences(FloatImage actual, string expectedFile)
    {
        using var expected = Npy.Read(expectedFile);
        Assert.Equal([actual.Channels, actual.Height, actual.Width], expected.shape);
        var e = expected.data<float>().ToArray();
        double max = 0, sum = 0;
        for (int i = 0; i < e.Length; i++)
        {
            double d = Math.Abs(e[i] - actual.Data[i]);
            max = Math.Max(max, d);
            sum += d;
        }
        return (max, sum / e.Length);
    }

    /// <summary>The colour type byte of a PNG's IHDR chunk: 0 grayscale, 2 RGB, 6 RGBA.</summary>
    private static int PngColourType(string path) => File.ReadAllBytes(path)[25];
}
