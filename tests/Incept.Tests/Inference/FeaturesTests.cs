using System.Text.Json;
using Incept.Cli;
using Incept.Tests.Cli;
using Incept.Data;
using Incept.Inference;
using Incept.Models;
using Incept.Registry;
using Incept.Tests.Data;
using Incept.Weights;
using Incept.Tests.Models;
using static TorchSharp.torch;

namespace Incept.Tests.Inference;

/// <summary><c>incept features</c> and <see cref="FeatureExtractor"/> on small checkpoints and generated images.</summary>
public sealed class FeaturesTests : IDisposable
{
    private static readonly PreprocessSpec Spec = new(32, 1.0, "bilinear", [0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f], false, 1.0);

    private readonly TempFolder dir = new();

    public void Dispose() => dir.Dispose();

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private string SaveCheckpoint(string name, int classes)
    {
        manual_seed(11);
        var spec = ModelRegistry.Get(name);
        using var model = ModelFactory.Create(spec, new ModelConfig { NumClasses = classes, Width = 0.25, SmallInput = true });
        // Calibrated BatchNorms: the features depend on the image, as a trained network's do.
        BatchNormCalibration.Calibrate(model, 3, 32, seed: 11);
        var path = dir.File($"{name}.safetensors");
        CheckpointLoader.Save(path, model, spec, Spec, classes > 0 ? [.. Enumerable.Range(0, classes).Select(i => $"c{i}")] : null);
        return path;
    }

    private string[] Images() =>
    [
        TestImages.Write(dir.File("a.png"), 32, 32, gray: false, seed: 1),
        TestImages.Write(dir.File("b.png"), 50, 40, gray: true, seed: 2),
        TestImages.Write(dir.File("c.png"), 40, 64, gray: false, seed: 3),
    ];

    /// <summary>A tap per naming scheme: a named child, a position in timm's <c>features</c>, a flat BN-Inception stage.</summary>
    [Theory]
    [InlineData("googlenet", "inception4e")]
    [InlineData("inception_v4", "features.9")]
    [InlineData("bn_inception", "conv2_3x3")]
    public void A_feature_tap_is_saved_as_n_c_h_w_with_the_channels_feature_info_lists(string name, string tap)
    {
        var weights = SaveCheckpoint(name, 3);
        var images = Images();
        var outFile = dir.File($"{tap}.npy");
        var (code, output, error) = Run(["features", "--weights", weights, .. images, "--layer", tap, "--out", outFile, "--format", "json", "--batch-size", "2"]);
        Assert.True(code == 0, error);

        using var loaded = CheckpointLoader.Load(weights);
        var info = loaded.Model.FeatureInfo.Single(f => f.Module == tap);
        using var saved = Npy.Read(outFile);
        Assert.Equal(4, saved.dim());
        Assert.Equal([3L, info.NumChannels], saved.shape[..2]);
        // The small-input stem keeps 32-pixel inputs at about 32 / reduction pixels (unpadded convolutions shave some).
        Assert.InRange(saved.shape[2], 1, 32 / info.Reduction + 1);
        Assert.Equal(saved.shape[2], saved.shape[3]);
        var root = JsonDocument.Parse(output).RootElement;
        Assert.Equal(saved.shape, root.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(images, root.GetProperty("images").EnumerateArray().Select(e => e.GetString()));

        // Batches of two through the command line equal one batch of three in process.
        using var batch = new ImagePreprocessor(Spec, 3).LoadBatch(images);
        using var direct = new FeatureExtractor(loaded.Model, tap).Extract(batch.Images!);
        double difference = (saved - direct).abs().max().item<float>(), scale = direct.abs().max().item<float>();
        Assert.True(difference <= 1e-5 * scale, $"the features differ by {difference} (largest {scale})");
    }

    [Fact]
    public void Pooled_features_are_the_heads_pre_logits_input_and_a_tap_is_the_modules_output()
    {
        var weights = SaveCheckpoint("inception_v3", 5);
        var images = Images();
        var outFile = dir.File("pooled.npy");
        var (code, output, error) = Run(["features", "--weights", weights, .. images, "--layer", "pooled", "--out", outFile]);
        Assert.True(code == 0, error);
        Assert.Contains("pooled", output, StringComparison.Ordinal);

        using var loaded = CheckpointLoader.Load(weights);
        var preprocessor = new ImagePreprocessor(Spec, 3);
        using var batch = preprocessor.LoadBatch(images);
        using var pooled = Npy.Read(outFile);
        Assert.Equal([3L, loaded.Model.NumFeatures], pooled.shape);
        using (no_grad())
        {
            using var expected = loaded.Model.ForwardHead(loaded.Model.ForwardFeatures(batch.Images!), preLogits: true);
            Assert.True(pooled.allclose(expected, rtol: 1e-4, atol: 1e-5));
            // The classifier applied to the pooled features gives the model's logits.
            using var logits = loaded.Model.call(batch.Images!).Logits;
            var fc = (TorchSharp.Modules.Linear)loaded.Model.named_modules().Single(m => m.name == "fc").module;
            using var fromPooled = fc.call(pooled);
            Assert.True(fromPooled.allclose(logits, rtol: 1e-4, atol: 1e-5));
        }

        // The last tap is the map the head pools.
        var extractor = new FeatureExtractor(loaded.Model, loaded.Model.FeatureInfo[^1].Module);
        using var map = extractor.Extract(batch.Images!);
        using (no_grad())
        using (var last = loaded.Model.ForwardFeatures(batch.Images!))
            Assert.True(map.allclose(last, rtol: 1e-5, atol: 1e-6));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    public void Inception_resnet_v1_embeddings_are_512_wide_with_unit_length(int classes)
    {
        var weights = SaveCheckpoint("inception_resnet_v1", classes);
        var images = Images();
        var outFile = dir.File("embedding.npy");
        var (code, _, error) = Run(["features", "--weights", weights, .. images, "--layer", "embedding", "--out", outFile]);
        Assert.True(code == 0, error);
        using var embedding = Npy.Read(outFile);
        Assert.Equal([3L, 512], embedding.shape);
        using var norms = embedding.norm(1);
        Assert.All(norms.data<float>().ToArray(), n => Assert.Equal(1f, n, 5));

        // facenet-pytorch's embedding: F.normalize(last_bn(last_linear(flatten(avgpool_1a(features))))), with the
        // batch norm in evaluation mode written out from its (randomised) buffers.
        using var loaded = CheckpointLoader.Load(weights);
        var modules = loaded.Model.named_modules().ToDictionary(m => m.name, m => m.module);
        var linear = (TorchSharp.Modules.Linear)modules["last_linear"];
        var bn = (TorchSharp.Modules.BatchNorm1d)modules["last_bn"];
        using var batch = new ImagePreprocessor(Spec, 3).LoadBatch(images);
        using (no_grad())
        {
            using var features = loaded.Model.ForwardFeatures(batch.Images!);
            using var projected = linear.call(features.mean([2, 3]));
            using var normed = ((projected - bn.running_mean!) / bn.running_var!.Plus(1e-3).sqrt() * bn.weight!).Plus(bn.bias!);
            using var expected = nn.functional.normalize(normed, p: 2, dim: 1);
            Assert.True(embedding.allclose(expected, rtol: 1e-4, atol: 1e-5), "the embedding is not facenet's normalised last_bn output");
        }
    }

    [Fact]
    public void An_unknown_layer_lists_the_valid_ones_and_writes_nothing()
    {
        var weights = SaveCheckpoint("inception_resnet_v1", 0);
        var outFile = dir.File("nothing.npy");
        var (code, output, error) = Run(["features", "--weights", weights, .. Images(), "--layer", "Mixed_6e", "--out", outFile]);
        Assert.Equal(1, code);
        Assert.Empty(output);
        Assert.Contains("no layer 'Mixed_6e'", error, StringComparison.Ordinal);
        foreach (var valid in new[] { "conv2d_2b", "repeat_1", "block8", "pooled", "embedding" })
            Assert.Contains(valid, error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
        Assert.False(File.Exists(outFile));

        weights = SaveCheckpoint("googlenet", 3);
        (code, _, error) = Run(["features", "--weights", weights, .. Images(), "--layer", "embedding", "--out", outFile]);
        Assert.Equal(1, code);
        Assert.Contains("inception5b, pooled.", error, StringComparison.Ordinal); // embedding is inception_resnet_v1's only
    }

    [Fact]
    public void Unreadable_images_are_skipped_and_the_rest_saved_with_exit_code_1()
    {
        var weights = SaveCheckpoint("googlenet", 3);
        var images = Images();
        var broken = dir.File("broken.png");
        File.WriteAllBytes(broken, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        var outFile = dir.File("feats.npy");
        var (code, output, error) = Run(["features", "--weights", weights, images[0], broken, images[1], "--layer", "pooled", "--out", outFile, "--format", "json"]);
        Assert.Equal(1, code);
        Assert.Contains("broken.png", error, StringComparison.Ordinal);
        var root = JsonDocument.Parse(output).RootElement;
        Assert.Equal([images[0], images[1]], root.GetProperty("images").EnumerateArray().Select(e => e.GetString()));
        using var features = Npy.Read(outFile);
        Assert.Equal(2, features.shape[0]);

        // Nothing readable: no file.
        var none = dir.File("none.npy");
        (code, _, error) = Run("features", "--weights", weights, broken, "--layer", "pooled", "--out", none);
        Assert.Equal(1, code);
        Assert.Contains("was not written", error, StringComparison.Ordinal);
        Assert.False(File.Exists(none));
    }
}
