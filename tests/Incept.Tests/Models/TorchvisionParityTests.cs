using Incept.Models;
using Incept.Registry;
using Incept.Tests.Scripts;
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
    [SkippableTheory]
    [InlineData("googlenet", 224)]
    [InlineData("inception_v3", 299)]
    public void Random_torchvision_weights_give_the_same_float64_logits(string name, int size)
    {
        var dir = Directory.CreateTempSubdirectory("incept-tv-").FullName;
        try
        {
            PythonReference.Require("torch, torchvision");
            PythonReference.RunOrFail("torchvision_reference.py", name, dir, "11", $"{size}");
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
}
