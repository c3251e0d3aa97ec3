using System.Text.Json;
using Incept.Cli;
using Incept.Data;
using Incept.Models;
using Incept.Registry;
using Incept.Weights;
using SkiaSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Cli;

/// <summary><c>incept cam</c> on a tiny model and a generated image.</summary>
public sealed class CamCliTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("incept-cam-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private string Weights(int inChannels)
    {
        manual_seed(4);
        var spec = ModelRegistry.Get("googlenet");
        using var model = ModelFactory.Create(spec, new ModelConfig { NumClasses = 3, InChannels = inChannels, Width = 0.25, SmallInput = true });
        float[] Values(float v) => [.. Enumerable.Repeat(v, inChannels)];
        var path = Path.Combine(dir, $"tiny{inChannels}.safetensors");
        CheckpointLoader.Save(path, model, spec, new PreprocessSpec(32, 0.875, "bilinear", Values(0.5f), Values(0.25f), false, 1.0), ["cat", "dog", "owl"]);
        return path;
    }

    /// <summary>A 50×40 PNG with a colour gradient.</summary>
    private string Image()
    {
        var path = Path.Combine(dir, "image.png");
        using var bitmap = new SKBitmap(50, 40);
        for (int y = 0; y < 40; y++)
            for (int x = 0; x < 50; x++) bitmap.SetPixel(x, y, new SKColor((byte)(x * 5), (byte)(y * 6), 128));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Theory]
    [InlineData(3)]
    [InlineData(1)]
    public void Cam_writes_a_png_of_the_crop_size_and_reports_the_class_and_its_probability(int inChannels)
    {
        var weights = Weights(inChannels);
        var output = Path.Combine(dir, "cam.png");
        var (code, stdout, error) = Run("cam", "--weights", weights, Image(), "-o", output, "--format", "json");
        Assert.True(code == 0, error);
        var json = JsonDocument.Parse(stdout).RootElement;
        int cls = json.GetProperty("class").GetInt32();
        Assert.InRange(cls, 0, 2);
        Assert.Equal(new[] { "cat", "dog", "owl" }[cls], json.GetProperty("class_name").GetString());
        Assert.InRange(json.GetProperty("probability").GetDouble(), 1.0 / 3, 1.0);
        Assert.Equal("inception5b", json.GetProperty("layer").GetString());
        using (var png = SKBitmap.Decode(output))
        {
            Assert.Equal(32, png.Width);
            Assert.Equal(32, png.Height);
        }

        (code, stdout, error) = Run("cam", "--weights", weights, Image(), "-o", output, "--class", "2", "--layer", "inception4e", "--alpha", "0.3");
        Assert.True(code == 0, error);
        Assert.Contains("class 2 (owl)", stdout, StringComparison.Ordinal);
        Assert.Contains("from inception4e", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_class_index_layer_or_image_is_one_clear_line_and_writes_nothing()
    {
        var weights = Weights(3);
        var output = Path.Combine(dir, "cam.png");
        var (code, stdout, error) = Run("cam", "--weights", weights, Image(), "-o", output, "--class", "3");
        Assert.Equal(1, code);
        Assert.Empty(stdout);
        Assert.Contains("Class 3 does not exist: the model has 3 classes, numbered 0 to 2.", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        Assert.False(File.Exists(output));

        (code, _, error) = Run("cam", "--weights", weights, Image(), "-o", output, "--layer", "inception9x");
        Assert.Equal(1, code);
        Assert.Contains("inception3b, inception4e, inception5b", error, StringComparison.Ordinal);
        (code, _, error) = Run("cam", "--weights", weights, Path.Combine(dir, "nope.png"), "-o", output);
        Assert.Equal(1, code);
        Assert.Contains("does not exist", error, StringComparison.Ordinal);
        (code, _, error) = Run("cam", "--weights", weights, Image(), "-o", output, "--alpha", "2");
        Assert.Equal(1, code);
        Assert.Contains("between 0 and 1", error, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(dir, "*cam.png*"));
    }
}
