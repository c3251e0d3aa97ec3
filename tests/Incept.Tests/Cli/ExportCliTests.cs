using System.Text.Json;
using Incept.Cli;
using Incept.Data;
using Incept.Models;
using Incept.Registry;
using Incept.Tests.Data;
using Incept.Tests.Export;
using Incept.Weights;

namespace Incept.Tests.Cli;

/// <summary><c>incept export</c> writes an ONNX file that <c>incept eval --engine onnx</c> evaluates like the checkpoint.</summary>
public sealed class ExportCliTests : IDisposable
{
    private readonly TempFolder temp = new();

    public void Dispose() => temp.Dispose();

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void Export_writes_a_file_that_eval_with_the_onnx_engine_scores_like_the_checkpoint()
    {
        var data = WriteIdxData(testImages: 13);
        var weights = SaveCheckpoint();
        var onnx = temp.File("out/model.onnx");

        var (code, stdout, err) = Run("export", "--weights", weights, "-o", onnx, "--fold-bn", "--dynamic-batch", "--format", "json");
        Assert.True(code == 0, err);
        using (var json = JsonDocument.Parse(stdout))
        {
            var root = json.RootElement;
            Assert.Equal("googlenet", root.GetProperty("model").GetString());
            Assert.Equal(new FileInfo(onnx).Length, root.GetProperty("bytes").GetInt64());
            Assert.Equal(17, root.GetProperty("opset").GetInt32());
            Assert.Equal("[-1,1,28,28]", root.GetProperty("input").GetProperty("shape").GetRawText().Replace(" ", "", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal));
            Assert.True(root.GetProperty("preprocess").GetBoolean());
        }

        var torch = Eval("--weights", weights, "--data", data, "--batch-size", "5");
        var viaOnnx = Eval("--weights", onnx, "--engine", "onnx", "--data", data, "--batch-size", "5");
        Assert.Equal("onnx", viaOnnx.GetProperty("engine").GetString());
        Assert.Equal("googlenet", viaOnnx.GetProperty("model").GetString());
        Assert.Equal(13, viaOnnx.GetProperty("count").GetInt32());
        Assert.Equal(torch.GetProperty("top1").GetDouble(), viaOnnx.GetProperty("top1").GetDouble());
        Assert.Equal(torch.GetProperty("confusion_matrix").GetRawText(), viaOnnx.GetProperty("confusion_matrix").GetRawText());
        double loss = torch.GetProperty("loss").GetDouble();
        Assert.InRange(viaOnnx.GetProperty("loss").GetDouble(), loss - 1e-4 * Math.Abs(loss), loss + 1e-4 * Math.Abs(loss));

        // A file with a fixed batch of one still evaluates batches of five; a .onnx file picks the onnx engine by itself.
        var fixedBatch = temp.File("out/fixed.onnx");
        (code, stdout, err) = Run("export", "--weights", weights, "-o", fixedBatch);
        Assert.True(code == 0, err);
        Assert.Contains("1×1×28×28", stdout, StringComparison.Ordinal);
        var viaFixed = Eval("--weights", fixedBatch, "--data", data, "--batch-size", "5");
        Assert.Equal("onnx", viaFixed.GetProperty("engine").GetString());
        Assert.Equal(torch.GetProperty("confusion_matrix").GetRawText(), viaFixed.GetProperty("confusion_matrix").GetRawText());
    }

    [Fact]
    public void An_opset_too_old_is_one_line_exit_code_1_and_no_file()
    {
        var weights = SaveCheckpoint();
        var onnx = temp.File("old.onnx");
        var (code, _, err) = Run("export", "--weights", weights, "-o", onnx, "--opset", "9");
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", err, StringComparison.Ordinal);
        Assert.Contains("opset 10 or later", err, StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(File.Exists(onnx));
    }

    [Fact]
    public void Eval_of_a_file_that_is_not_onnx_is_one_line_and_exit_code_1()
    {
        var data = WriteIdxData(testImages: 2);
        var notOnnx = temp.File("weights.onnx");
        File.WriteAllText(notOnnx, "this is not a model");
        var (code, _, err) = Run("eval", "--weights", notOnnx, "--engine", "onnx", "--data", data);
        Assert.Equal(1, code);
        Assert.Contains("is not an ONNX image classifier Incept can run", err, StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Eval_runs_the_fast_engine_in_float32_and_bfloat16_and_refuses_bfloat16_elsewhere()
    {
        var data = WriteIdxData(testImages: 13);
        var weights = SaveCheckpoint();
        var torch = Eval("--weights", weights, "--data", data, "--batch-size", "5");
        var fast = Eval("--weights", weights, "--engine", "fast", "--data", data, "--batch-size", "5");
        var bf16 = Eval("--weights", weights, "--precision", "bfloat16", "--data", data, "--batch-size", "5");
        Assert.Equal("torch", torch.GetProperty("engine").GetString());
        Assert.Equal("fast", fast.GetProperty("engine").GetString());
        Assert.Equal("fast-bf16", bf16.GetProperty("engine").GetString());
        double loss = torch.GetProperty("loss").GetDouble();
        Assert.InRange(fast.GetProperty("loss").GetDouble(), loss - 1e-4 * Math.Abs(loss), loss + 1e-4 * Math.Abs(loss));
        // bfloat16 rounds every layer: the loss moves, but by about a percent, not more.
        double bf16Loss = bf16.GetProperty("loss").GetDouble();
        Assert.NotEqual(loss, bf16Loss);
        Assert.InRange(bf16Loss, loss - 0.05 * Math.Abs(loss), loss + 0.05 * Math.Abs(loss));

        var (code, _, err) = Run("eval", "--weights", weights, "--engine", "torch", "--precision", "bfloat16", "--data", data);
        Assert.Equal(1, code);
        Assert.Contains("bfloat16 evaluation runs in the fast engine", err, StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Eval_with_flip_tta_scores_a_test_set_and_its_mirror_image_alike_on_every_engine()
    {
        var data = WriteIdxData(testImages: 13);
        var mirrored = MirroredCopy(data);
        var weights = SaveCheckpoint();
        var plain = Eval("--weights", weights, "--data", data, "--batch-size", "5");
        var plainMirrored = Eval("--weights", weights, "--data", mirrored, "--batch-size", "5");
        Assert.NotEqual(plain.GetProperty("loss").GetDouble(), plainMirrored.GetProperty("loss").GetDouble());
        Assert.Equal("none", plain.GetProperty("tta").GetString());

        var flip = Eval("--weights", weights, "--data", data, "--batch-size", "5", "--tta", "flip");
        Assert.Equal("flip", flip.GetProperty("tta").GetString());
        Assert.Equal(13, flip.GetProperty("count").GetInt32());
        double loss = flip.GetProperty("loss").GetDouble();
        Assert.NotEqual(plain.GetProperty("loss").GetDouble(), loss);
        foreach (var engine in new[] { "torch", "fast" })
        {
            var other = Eval("--weights", weights, "--engine", engine, "--data", mirrored, "--batch-size", "5", "--tta", "flip");
            Assert.InRange(other.GetProperty("loss").GetDouble(), loss - 1e-4 * Math.Abs(loss), loss + 1e-4 * Math.Abs(loss));
            Assert.Equal(flip.GetProperty("confusion_matrix").GetRawText(), other.GetProperty("confusion_matrix").GetRawText());
        }

        var (code, _, err) = Run("eval", "--weights", weights, "--data", data, "--tta", "crops");
        Assert.NotEqual(0, code);
        Assert.Contains("crops", err, StringComparison.Ordinal);
    }

    /// <summary>A copy of the IDX folder <paramref name="folder"/> whose test images are mirrored left to right.</summary>
    private static string MirroredCopy(string folder)
    {
        var copy = Path.Combine(Path.GetDirectoryName(folder)!, "mirrored");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(folder)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        var images = Path.Combine(copy, "t10k-images-idx3-ubyte");
        var bytes = File.ReadAllBytes(images);
        const int header = 16, side = 28;
        for (int row = header; row < bytes.Length; row += side) Array.Reverse(bytes, row, side);
        File.WriteAllBytes(images, bytes);
        return copy;
    }

    private static JsonElement Eval(params string[] args)
    {
        var (code, stdout, err) = Run(["eval", .. args, "--format", "json"]);
        Assert.True(code == 0, err);
        using var json = JsonDocument.Parse(stdout);
        return json.RootElement.Clone();
    }

    /// <summary>A one-channel googlenet for 28-pixel images with ten classes, saved with its preprocessing.</summary>
    private string SaveCheckpoint()
    {
        var path = temp.File("googlenet.safetensors");
        using var model = OnnxExportTests.Calibrated("googlenet", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10, InChannels = 1 }, size: 28);
        var preprocess = new PreprocessSpec(28, 1.0, "bilinear", [0.2860f], [0.3530f], false, 1.0);
        CheckpointLoader.Save(path, model, ModelRegistry.Get("googlenet"), preprocess, FashionMnist.Classes);
        return path;
    }

    /// <summary>A folder of Fashion-MNIST-style IDX files with random 28×28 images.</summary>
    private string WriteIdxData(int testImages)
    {
        var random = new Random(5);
        var folder = temp.File("data/x");
        folder = Path.GetDirectoryName(folder)!;
        foreach (var (prefix, count) in new[] { ("train", 4), ("t10k", testImages) })
        {
            var pixels = new byte[count * 28 * 28];
            random.NextBytes(pixels);
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-images-idx3-ubyte"), IdxTests.Idx(0x08, [count, 28, 28], pixels));
            var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray();
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte"), IdxTests.Idx(0x08, [count], labels));
        }

        return folder;
    }
}
