using System.Diagnostics;
using Incept.Models;
using Incept.Registry;
using Incept.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

/// <summary>
/// Parity with Debian's python3-torchvision run beside the tests: random weights and BatchNorm statistics
/// (aux heads included) written by Scripts/torchvision_reference.py, loaded strictly, compared in float64,
/// where round-off cannot hide a porting mistake.
/// </summary>
public class TorchvisionParityTests
{
    private const string Python = "/usr/bin/python3";

    [SkippableTheory]
    [InlineData("googlenet", 224)]
    [InlineData("inception_v3", 299)]
    public void Random_torchvision_weights_give_the_same_float64_logits(string name, int size)
    {
        var dir = Directory.CreateTempSubdirectory("incept-tv-").FullName;
        try
        {
            RunReference(name, dir, seed: 11, size);
            using var weights = SafeTensors.Read(Path.Combine(dir, "weights.safetensors"));
            using var model = ModelFactory.Create(name, new ModelConfig { AuxLogits = true });
            var report = StateDictLoader.Load(model, weights.Tensors);
            Assert.Equal(weights.Tensors.Count, report.Loaded.Count);
            model.eval();
            model.to(ScalarType.Float64);
            using var _ = no_grad();
            using var input = Npy.Read(Path.Combine(dir, "input.npy"));
            using var expected = Npy.Read(Path.Combine(dir, "logits64.npy"));
            using var x = input.to_type(ScalarType.Float64);
            var logits = model.call(x).Logits;
            Assert.Equal(ScalarType.Float64, logits.dtype);
            double scale = Math.Max(1.0, expected.abs().max().item<double>());
            double diff = (expected - logits).abs().max().item<double>();
            Assert.True(diff <= 1e-9 * scale, $"{name}: float64 max |Δ| = {diff:G4} exceeds 1e-9 × {scale:G4}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void RunReference(string name, string dir, int seed, int size)
    {
        bool inCi = Environment.GetEnvironmentVariable("CI") == "true";
        var script = Path.Combine(AppContext.BaseDirectory, "Scripts", "torchvision_reference.py");
        Skip.If(!inCi && !HasTorchvision(), "Debian's python3-torchvision is not installed (bash .ci/run installs it).");
        var psi = new ProcessStartInfo(Python, [script, name, dir, $"{seed}", $"{size}"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        psi.Environment["OMP_NUM_THREADS"] = "2";
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
