using System.Text.Json;
using Incept.Cli;
using Incept.Tests.Cli;
using Incept.Data;
using Incept.Inference;
using Incept.Models;
using Incept.Registry;
using Incept.Tests.Data;
using Incept.Tests.Models;
using Incept.Weights;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Inference;

/// <summary>
/// <c>incept predict</c> on generated images with small checkpoints saved as Incept saves trained weights (class
/// names and preprocessing in the metadata).
/// </summary>
public sealed class PredictTests : IDisposable
{
    private static readonly string[] Classes = ["cat", "dog", "fish, \"salty\""];

    /// <summary>32-pixel inputs, no resize for 32×32 images, mean = std = 0.5.</summary>
    private static readonly PreprocessSpec Spec = new(32, 1.0, "bilinear", [0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f], false, 1.0);

    private readonly TempFolder dir = new();

    public void Dispose() => dir.Dispose();

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    /// <summary>A googlenet at width 0.25 with the small-input stem and <paramref name="inChannels"/> inputs, saved with its class names.</summary>
    /// <remarks>
    /// Its BatchNorm statistics are calibrated on random inputs, so that its logits depend on the image; <paramref name="logitScale"/>
    /// multiplies the classifier's weights (an untrained classifier's logits are a few hundredths; a trained one's are units).
    /// </remarks>
    private string SaveCheckpoint(int inChannels = 3, PreprocessSpec? spec = null, string[]? classes = null, string name = "tiny.safetensors", double logitScale = 1)
    {
        classes ??= Classes;
        manual_seed(7);
        var modelSpec = ModelRegistry.Get("googlenet");
        using var model = ModelFactory.Create(modelSpec, new ModelConfig { NumClasses = classes.Length, InChannels = inChannels, Width = 0.25, SmallInput = true });
        BatchNormCalibration.Calibrate(model, inChannels, 32, seed: 7);
        model.eval();
        using (no_grad())
        {
            using var scale = logitScale.ToScalar();
            model.named_parameters().Single(p => p.name == "fc.weight").parameter.mul_(scale);
        }
        var path = dir.File(name);
        CheckpointLoader.Save(path, model, modelSpec, spec ?? Spec, classes);
        return path;
    }

    /// <summary>The network input for a 32×32 RGB image under <see cref="Spec"/>, computed by hand: (v / 255 − 0.5) / 0.5.</summary>
    private static Tensor HandPrepared(params string[] images)
    {
        var batch = new float[images.Length * 3 * 32 * 32];
        for (int n = 0; n < images.Length; n++)
        {
            var image = ImageDecoder.DecodeRgb(images[n]);
            Assert.Equal((32, 32), (image.Height, image.Width));
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                        batch[((n * 3 + c) * 32 + y) * 32 + x] = (image[y, x, c] / 255f - 0.5f) / 0.5f;
        }
        return tensor(batch, [images.Length, 3, 32, 32]);
    }

    [Theory]
    [InlineData(null, "onnx")]
    [InlineData("fast", "fast")]
    [InlineData("torch", "torch")]
    [InlineData("onnx", "onnx")]
    [InlineData("onnx-checkpoint", "onnx")]
    public void Json_names_the_classes_stored_with_the_weights_and_gives_the_models_own_probabilities(string? engine, string expectedEngine)
    {
        var weights = SaveCheckpoint();
        var file = weights;
        if (engine == "onnx-checkpoint") engine = "onnx"; // the checkpoint itself, exported on the fly
        else if (engine == "onnx")
        {
            file = dir.File("tiny.onnx");
            var export = Run("export", "--weights", weights, "-o", file, "--dynamic-batch");
            Assert.True(export.Code == 0, export.Err);
        }

        var a = TestImages.Write(dir.File("a.png"), 32, 32, gray: false, seed: 1);
        var b = TestImages.Write(dir.File("b.png"), 32, 32, gray: false, seed: 2);
        var logitsFile = dir.File("logits.npy");
        string[] engineArgs = engine is null ? [] : ["--engine", engine];
        var (code, output, error) = Run(["predict", "--weights", file, a, b, "--top", "2", "--format", "json", "--save-logits", logitsFile, .. engineArgs]);
        Assert.True(code == 0, error);
        Assert.Empty(error);

        // The same images prepared by hand and run through the model directly.
        using var loaded = CheckpointLoader.Load(weights);
        using var input = HandPrepared(a, b);
        using var expected = loaded.Model.call(input).Logits.detach();
        Assert.False(expected[0].allclose(expected[1], rtol: 1e-3, atol: 1e-3), "the two images get the same logits, so the check below cannot see the preprocessing");
        using var probabilities = expected.softmax(1);
        using var saved = Npy.Read(logitsFile);
        Assert.Equal(expected.shape, saved.shape);
        Assert.True(saved.allclose(expected, rtol: 1e-4, atol: 1e-4), "saved logits differ from the model's on the hand-prepared images");

        var root = JsonDocument.Parse(output).RootElement;
        Assert.Equal("googlenet", root.GetProperty("model").GetString());
        Assert.Equal(expectedEngine, root.GetProperty("engine").GetString());
        Assert.Empty(root.GetProperty("failed").EnumerateArray());
        var predictions = root.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal([a, b], predictions.Select(p => p.GetProperty("image").GetString()));
        for (int n = 0; n < 2; n++)
        {
            var top = predictions[n].GetProperty("top").EnumerateArray().ToList();
            Assert.Equal(2, top.Count);
            var order = expected[n].argsort(descending: true).data<long>().ToArray();
            for (int r = 0; r < 2; r++)
            {
                int index = top[r].GetProperty("index").GetInt32();
                Assert.Equal(order[r], index);
                Assert.Equal(Classes[index], top[r].GetProperty("label").GetString());
                Assert.Equal(probabilities[n, index].item<float>(), top[r].GetProperty("probability").GetSingle(), 4);
                Assert.Equal(expected[n, index].item<float>(), top[r].GetProperty("logit").GetSingle(), 4);
            }
        }
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("onnx")]
    public void Flip_tta_scores_an_image_by_the_mean_probabilities_of_it_and_its_mirror_image(string engine)
    {
        var weights = SaveCheckpoint();
        var a = TestImages.Write(dir.File("a.png"), 32, 32, gray: false, seed: 3);
        var mirrored = TestImages.Write(dir.File("a-mirrored.png"), 32, 32, gray: false, seed: 3, mirror: true);
        var logitsFile = dir.File("logits.npy");
        var (code, output, error) = Run("predict", "--weights", weights, a, mirrored, "--engine", engine, "--tta", "flip", "--format", "json", "--save-logits", logitsFile);
        Assert.True(code == 0, error);
        Assert.Equal("flip", JsonDocument.Parse(output).RootElement.GetProperty("tta").GetString());

        // By hand: the model on the image and on its mirror image, softmax of each, mean, logarithm.
        using var loaded = CheckpointLoader.Load(weights);
        using var input = HandPrepared(a);
        using var plain = loaded.Model.call(input).Logits.detach().softmax(1);
        using var flipped = loaded.Model.call(input.flip(-1)).Logits.detach().softmax(1);
        using var expected = plain.Plus(flipped).Over(2).log();
        using var saved = Npy.Read(logitsFile);
        // Tolerances are set against how far apart the two views are.
        double views = plain.log().sub(flipped.log()).abs().max().item<float>();
        Assert.True(views > 1e-4, $"the test image is nearly symmetric (views differ by {views}), so it cannot tell the views apart");
        Assert.True(saved[0].unsqueeze(0).sub(expected).abs().max().item<float>() < views / 100, "flip logits differ from the hand computation");
        // The mirror image has the same two views, so it scores alike.
        Assert.True(saved[1].sub(saved[0]).abs().max().item<float>() < views / 100, "an image and its mirror image score differently under flip tta");

        (code, _, error) = Run("predict", "--weights", weights, "--input-tensor", "x.npy", "--save-logits", logitsFile, "--tta", "flip");
        Assert.Equal(InceptCli.Usage, code);
        Assert.Contains("leave out --tta", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Bfloat16_predicts_with_the_fast_engine_close_to_the_float32_logits()
    {
        var weights = SaveCheckpoint(logitScale: 100);
        var a = TestImages.Write(dir.File("a.png"), 32, 32, gray: false, seed: 1);
        var full = dir.File("full.npy");
        var rounded = dir.File("rounded.npy");
        var (code, _, error) = Run("predict", "--weights", weights, a, "--engine", "fast", "--save-logits", full, "--format", "json");
        Assert.True(code == 0, error);
        (code, var output, error) = Run("predict", "--weights", weights, a, "--precision", "bfloat16", "--save-logits", rounded, "--format", "json");
        Assert.True(code == 0, error);
        Assert.Equal("fast-bf16", JsonDocument.Parse(output).RootElement.GetProperty("engine").GetString());
        using var x = Npy.Read(full);
        using var y = Npy.Read(rounded);
        double scale = x.abs().max().item<float>();
        double error2 = (x - y).abs().max().item<float>() / scale;
        Assert.True(scale > 1, $"the largest logit is {scale}, too small for a relative comparison");
        Assert.True(error2 is > 0 and < 0.1, $"bfloat16 logits differ from float32 by {error2} of the largest ({string.Join(", ", x.data<float>().ToArray())} / {string.Join(", ", y.data<float>().ToArray())})");

        (code, _, error) = Run("predict", "--weights", weights, a, "--engine", "onnx", "--precision", "bfloat16");
        Assert.Equal(1, code);
        Assert.Contains("bfloat16 runs in the fast engine", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Csv_has_one_row_per_image_and_rank_with_labels_quoted_when_needed()
    {
        var weights = SaveCheckpoint();
        var image = TestImages.Write(dir.File("photo.png"), 48, 40, gray: false, seed: 3);
        var (code, output, error) = Run("predict", "--weights", weights, image, "--top", "3", "--format", "csv");
        Assert.True(code == 0, error);
        var lines = output.TrimEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Equal("image,rank,index,label,probability,logit", lines[0]);
        Assert.Equal(4, lines.Count);
        Assert.Equal(["1", "2", "3"], lines.Skip(1).Select(l => l.Split(',')[1]));
        Assert.All(lines.Skip(1), l => Assert.StartsWith(image + ",", l, StringComparison.Ordinal));
        // RFC 4180: the label with a comma and quotes is quoted, its quotes doubled.
        Assert.Single(lines, l => l.Contains(",\"fish, \"\"salty\"\"\",", StringComparison.Ordinal));
        double total = lines.Skip(1).Sum(l => double.Parse(l.Split(',')[^2], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(1.0, total, 5); // all three classes shown, so their probabilities add up to one
    }

    [Fact]
    public void Table_lists_each_images_top_classes()
    {
        var weights = SaveCheckpoint();
        var image = TestImages.Write(dir.File("photo.png"), 32, 32, gray: false, seed: 4);
        var (code, output, error) = Run("predict", "--weights", weights, image, "--top", "3");
        Assert.True(code == 0, error);
        Assert.Contains("photo.png", output, StringComparison.Ordinal);
        foreach (var c in new[] { "cat", "dog", "fish, \"salty\"" }) Assert.Contains(c, output, StringComparison.Ordinal);
        Assert.Contains("%", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_corrupt_image_in_a_folder_is_skipped_and_named_and_the_exit_code_is_1()
    {
        var weights = SaveCheckpoint();
        var folder = Path.Combine(dir.Path, "photos");
        TestImages.Write(dir.File("photos/a.png"), 32, 32, gray: false, seed: 5);
        TestImages.Write(dir.File("photos/nested/c.jpg"), 40, 30, gray: true, seed: 6, SKEncodedImageFormat.Jpeg);
        File.WriteAllText(dir.File("photos/b.jpg"), "not a JPEG at all");
        File.WriteAllText(dir.File("photos/notes.txt"), "not an image and not read");

        var (code, output, error) = Run("predict", "--weights", weights, folder, "--format", "json", "--batch-size", "2");
        Assert.Equal(1, code);
        var root = JsonDocument.Parse(output).RootElement; // stdout stays clean JSON
        Assert.Equal([Path.Combine(folder, "a.png"), Path.Combine(folder, "nested", "c.jpg")],
            root.GetProperty("predictions").EnumerateArray().Select(p => p.GetProperty("image").GetString()));
        var failed = Assert.Single(root.GetProperty("failed").EnumerateArray());
        Assert.Equal(Path.Combine(folder, "b.jpg"), failed.GetProperty("image").GetString());
        Assert.Contains("b.jpg", error, StringComparison.Ordinal);
        Assert.Contains("1 of 3 images could not be read", error, StringComparison.Ordinal);
        Assert.DoesNotContain("notes.txt", output + error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grayscale_model_takes_grayscale_and_colour_images_as_one_luma_channel()
    {
        var spec = new PreprocessSpec(28, 1.0, "bilinear", [0.286f], [0.353f], false, 1.0);
        var weights = SaveCheckpoint(inChannels: 1, spec: spec, classes: ["T-shirt/top", "Trouser"]);
        var gray = TestImages.Write(dir.File("gray.png"), 28, 28, gray: true, seed: 7);
        var colour = TestImages.Write(dir.File("colour.png"), 56, 40, gray: false, seed: 8);
        var (code, output, error) = Run("predict", "--weights", weights, gray, colour, "--format", "json", "--top", "1");
        Assert.True(code == 0, error);
        Assert.Equal(2, JsonDocument.Parse(output).RootElement.GetProperty("predictions").GetArrayLength());

        var preprocessor = new ImagePreprocessor(spec, 1);
        var grayInput = preprocessor.Load(gray);
        Assert.Equal((1, 28, 28), (grayInput.Channels, grayInput.Height, grayInput.Width));
        var pixels = ImageDecoder.DecodeRgb(gray);
        Assert.Equal((pixels[3, 5, 0] / 255f - 0.286f) / 0.353f, grayInput[0, 3, 5], 5);
        // Pillow's luma of a colour pixel, as convert("L") rounds it.
        var luma = ImagePreprocessor.ToLuma(new ByteImage(1, 2, 3, [255, 0, 0, 10, 200, 30]));
        Assert.Equal([76, 124], luma.Pixels.ToArray()); // 255 × 0.299 = 76.2; 10 × 0.299 + 200 × 0.587 + 30 × 0.114 = 123.8
    }

    [Fact]
    public void An_onnx_file_with_a_torchsharp_engine_is_one_line_and_exit_code_1()
    {
        var weights = SaveCheckpoint();
        var onnx = dir.File("tiny.onnx");
        Assert.Equal(0, Run("export", "--weights", weights, "-o", onnx).Code);
        var image = TestImages.Write(dir.File("a.png"), 32, 32, gray: false, seed: 1);

        var (code, _, error) = Run("predict", "--weights", onnx, image, "--engine", "torch");
        Assert.Equal(1, code);
        Assert.Contains("only --engine onnx runs", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public void Predict_needs_images_or_an_input_tensor_but_not_both()
    {
        var weights = SaveCheckpoint();
        var (code, _, error) = Run("predict", "--weights", weights);
        Assert.Equal(2, code); // a usage error
        Assert.Contains("Name image files or folders", error, StringComparison.Ordinal);

        var image = TestImages.Write(dir.File("a.png"), 32, 32, gray: false, seed: 1);
        (code, _, error) = Run("predict", "--weights", weights, image, "--input-tensor", "x.npy", "--save-logits", "y.npy");
        Assert.Equal(2, code);
        Assert.Contains("either images or --input-tensor", error, StringComparison.Ordinal);

        (code, _, error) = Run("predict", "--weights", weights, dir.File("missing.png"));
        Assert.Equal(1, code);
        Assert.Contains("missing.png", error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_input_tensor_path_runs_through_the_torch_engine()
    {
        var weights = SaveCheckpoint();
        var image = TestImages.Write(dir.File("a.png"), 32, 32, gray: false, seed: 9);
        using var input = HandPrepared(image);
        var inputFile = dir.File("x.npy");
        Npy.Write(inputFile, input);
        var logitsFile = dir.File("logits.npy");
        var (code, output, error) = Run("predict", "--weights", weights, "--input-tensor", inputFile, "--save-logits", logitsFile, "--format", "json");
        Assert.True(code == 0, error);
        Assert.Equal("torch", JsonDocument.Parse(output).RootElement.GetProperty("engine").GetString());

        (code, _, error) = Run("predict", "--weights", weights, image, "--save-logits", dir.File("from-image.npy"), "--format", "json");
        Assert.True(code == 0, error);
        using var fromTensor = Npy.Read(logitsFile);
        using var fromImage = Npy.Read(dir.File("from-image.npy"));
        Assert.True(fromTensor.allclose(fromImage, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Class_names_come_from_the_weights_or_imagenet_with_tensorflows_background_class()
    {
        Assert.Equal(["a", "b"], ClassLabels.Resolve(2, ["a", "b"]));
        var imageNet = ClassLabels.Resolve(1000);
        Assert.Equal(1000, imageNet.Count);
        Assert.Equal("tench", imageNet[0]);
        Assert.Equal("tabby", imageNet[281]);
        Assert.Equal("toilet tissue", imageNet[999]);
        var tf = ClassLabels.Resolve(1001, labelSet: "imagenet-1k");
        Assert.Equal("background", tf[0]);
        Assert.Equal("tench", tf[1]);
        Assert.Equal("toilet tissue", tf[1000]);
        Assert.Equal("class 7", ClassLabels.Resolve(8631, labelSet: "vggface2")[7]);
        Assert.Equal("class 2", ClassLabels.Resolve(3, ["only", "two"])[2]); // stored names that do not fit are not used
    }

    [Fact]
    public void The_torch_engine_runs_in_evaluation_mode_without_gradients()
    {
        manual_seed(3);
        using var model = ModelFactory.Create("googlenet", new ModelConfig { NumClasses = 4, Width = 0.25, SmallInput = true });
        model.train();
        using var engine = new TorchEngine(model);
        using var x = randn(2, 3, 32, 32);
        using var first = engine.Run(x);
        using var second = engine.Run(x);
        Assert.False(model.training);
        Assert.False(first.requires_grad);
        Assert.Equal([2L, 4], first.shape);
        Assert.True(first.allclose(second, rtol: 0, atol: 0)); // no dropout, no batch statistics
    }
}
