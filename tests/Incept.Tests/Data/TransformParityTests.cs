using System.Diagnostics;
using Incept.Data;
using Incept.Data.Transforms;
using Incept.Weights;
using static TorchSharp.torch;

namespace Incept.Tests.Data;

/// <summary>
/// Transforms against torchvision.transforms.functional on float tensors, run by Debian's python3-torchvision
/// beside the tests (Scripts/transforms_reference.py), on one random 3 × 13 × 17 image.
/// </summary>
public class TransformParityTests
{
    private const string Python = "/usr/bin/python3";

    [SkippableFact]
    public void Resizes_crops_flips_and_colour_adjustments_match_torchvision()
    {
        bool inCi = Environment.GetEnvironmentVariable("CI") == "true";
        Skip.If(!inCi && !HasTorchvision(), "Debian's python3-torchvision is not installed (bash .ci/run installs it).");
        var dir = Directory.CreateTempSubdirectory("incept-tf-").FullName;
        try
        {
            Run(dir);
            var input = Load(dir, "input");
            var none = new Random(0);
            var checks = new List<(string Name, FloatImage Actual, double Tolerance)>();
            foreach (var (name, mode) in new[] { ("bilinear", Interpolation.Bilinear), ("bicubic", Interpolation.Bicubic) })
            {
                foreach (var (h, w) in new[] { (7, 9), (20, 31), (10, 25), (4, 3) })
                    checks.Add(($"resize_{name}_{h}x{w}", Resampler.Resize(input, h, w, mode), 2e-6));
            }
            checks.Add(("resize_bilinear_noaa_7x9", Resampler.Resize(input, 7, 9, Interpolation.Bilinear, antialias: false), 2e-6));
            checks.Add(("center_crop_8x8", new CenterCrop(8).Apply(input, none), 0));
            checks.Add(("center_crop_20x20", new CenterCrop(20).Apply(input, none), 0));
            checks.Add(("hflip", RandomHorizontalFlip.Flip(input), 0));
            checks.Add(("brightness_1.3", Adjusted(input, i => ColorJitter.AdjustBrightness(i, 1.3f)), 1e-6));
            checks.Add(("contrast_0.6", Adjusted(input, i => ColorJitter.AdjustContrast(i, 0.6f)), 1e-6));
            checks.Add(("saturation_1.7", Adjusted(input, i => ColorJitter.AdjustSaturation(i, 1.7f)), 1e-6));
            checks.Add(("hue_0.23", Adjusted(input, i => ColorJitter.AdjustHue(i, 0.23f)), 2e-6));
            checks.Add(("hue_-0.4", Adjusted(input, i => ColorJitter.AdjustHue(i, -0.4f)), 2e-6));

            foreach (var (name, actual, tolerance) in checks)
            {
                var expected = Load(dir, name);
                Assert.True((expected.Channels, expected.Height, expected.Width) == (actual.Channels, actual.Height, actual.Width),
                    $"{name}: shape {actual.Channels}x{actual.Height}x{actual.Width}, torchvision {expected.Channels}x{expected.Height}x{expected.Width}");
                double diff = 0;
                for (int i = 0; i < expected.Data.Length; i++) diff = Math.Max(diff, Math.Abs(expected.Data[i] - actual.Data[i]));
                Assert.True(diff <= tolerance, $"{name}: max |Δ| = {diff:G3} exceeds {tolerance:G3}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static FloatImage Adjusted(FloatImage input, Action<FloatImage> adjust)
    {
        var copy = new FloatImage(input.Channels, input.Height, input.Width, input.Data.ToArray());
        adjust(copy);
        return copy;
    }

    private static FloatImage Load(string dir, string name)
    {
        using var t = Npy.Read(Path.Combine(dir, $"{name}.npy"));
        var shape = t.shape;
        return new FloatImage((int)shape[0], (int)shape[1], (int)shape[2], t.to_type(ScalarType.Float32).data<float>().ToArray());
    }

    private static void Run(string dir)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Scripts", "transforms_reference.py");
        var psi = new ProcessStartInfo(Python, [script, dir]) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{script} failed: {stderr.Result}");
    }

    private static bool HasTorchvision()
    {
        if (!File.Exists(Python)) return false;
        using var process = Process.Start(new ProcessStartInfo(Python, ["-c", "import torchvision"]) { RedirectStandardError = true })!;
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0;
    }
}
