using System.Buffers.Binary;
using System.Text.Json;
using Incept.Cli;
using Incept.Data;
using Incept.Tests.Training;
using Incept.Weights;

namespace Incept.Tests.Cli;

/// <summary><c>incept train --from … --freeze-backbone</c> on a tiny real Fashion-MNIST subset.</summary>
public sealed class FineTuneCliTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("incept-finetune-cli-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    /// <summary>Writes the first <paramref name="count"/> images of a Fashion-MNIST split as plain IDX files.</summary>
    private static void WriteIdx(string folder, string prefix, FashionMnist source, int count)
    {
        var first = source.Get(0).Image;
        using (var images = File.Create(Path.Combine(folder, $"{prefix}-images-idx3-ubyte")))
        {
            images.Write(Header(0x0803, count, first.Height, first.Width));
            for (int i = 0; i < count; i++) images.Write(source.Get(i).Image.Pixels);
        }

        using var labels = File.Create(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte"));
        labels.Write(Header(0x0801, count));
        for (int i = 0; i < count; i++) labels.WriteByte((byte)source.GetLabel(i));
    }

    private static byte[] Header(params int[] values)
    {
        var bytes = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }

    [SkippableFact]
    public void Train_from_weights_with_a_frozen_backbone_writes_a_ten_class_model_whose_backbone_is_the_pretrained_one()
    {
        bool inCi = Environment.GetEnvironmentVariable("CI") == "true";
        Skip.If(!inCi && !Directory.Exists(FashionMnist.DefaultDirectory), "Debian's dataset-fashion-mnist is not installed (bash .ci/run installs it).");
        var data = Directory.CreateDirectory(Path.Combine(dir, "data")).FullName;
        WriteIdx(data, "train", FashionMnist.Load(train: true), 200);
        WriteIdx(data, "t10k", FashionMnist.Load(train: false), 50);
        var pretrained = FineTuneTests.SavePretrained(Path.Combine(dir, "pretrained.safetensors"));
        var outDir = Path.Combine(dir, "run");

        var (code, output, error) = Run("train", "--data", data, "--from", pretrained, "--freeze-backbone", "--no-winograd", "--epochs", "1", "--batch-size", "32",
            "--val-split", "0.1", "--out", outDir, "--workers", "1", "--seed", "3", "--tta", "flip", "--final-test-only", "--format", "json");
        Assert.True(code == 0, error);
        var result = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;
        // --final-test-only: no epoch was tested; the test figure is the kept weights' own, with the flip (--tta flip).
        Assert.Contains("\"test_top1\":\"NaN\"", File.ReadAllText(Path.Combine(outDir, "metrics.jsonl")), StringComparison.Ordinal);
        var (evalCode, evalOutput, evalError) = Run("eval", "--weights", result.GetProperty("weights").GetString()!, "--data", data, "--tta", "flip", "--format", "json");
        Assert.True(evalCode == 0, evalError);
        Assert.Equal(JsonDocument.Parse(evalOutput).RootElement.GetProperty("top1").GetDouble(), result.GetProperty("test_top1").GetDouble());
        Assert.Equal("googlenet", result.GetProperty("model").GetString());
        Assert.Equal(pretrained, result.GetProperty("fine_tuned_from").GetString());
        Assert.Equal(1, result.GetProperty("epochs").GetInt32());
        Assert.Contains("Fine-tuning pretrained.safetensors (backbone frozen)", error, StringComparison.Ordinal);

        var weights = result.GetProperty("weights").GetString()!;
        using (var loaded = CheckpointLoader.Load(weights))
        {
            Assert.Equal(10, loaded.Model.NumClasses);
            Assert.Equal(FashionMnist.Classes, loaded.ClassNames);
        }

        using var before = SafeTensors.Read(pretrained);
        using var after = SafeTensors.Read(weights);
        Assert.Equal("10", after.Metadata[CheckpointLoader.MetadataKeys.NumClasses]);
        foreach (var (key, t) in after.Tensors.Where(kv => !kv.Key.StartsWith("fc.", StringComparison.Ordinal)))
            Assert.True(t.eq(before.Tensors[key]).all().item<bool>(), $"{key} changed although the backbone was frozen");
    }

    [Fact]
    public void Freezing_without_weights_to_start_from_is_one_clear_line()
    {
        var (code, output, error) = Run("train", "--freeze-backbone", "--out", Path.Combine(dir, "x"));
        Assert.Equal(1, code);
        Assert.Empty(output);
        Assert.Contains("--from <weights>", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(dir, "x")));
    }

    [Fact]
    public void A_width_with_from_or_a_missing_weights_file_is_refused()
    {
        var pretrained = FineTuneTests.SavePretrained(Path.Combine(dir, "p.safetensors"));
        var (code, _, error) = Run("train", "--from", pretrained, "--width", "0.5");
        Assert.Equal(1, code);
        Assert.Contains("width comes from the weights", error, StringComparison.Ordinal);
        (code, _, error) = Run("train", "--from", Path.Combine(dir, "missing.safetensors"), "--freeze-backbone");
        Assert.Equal(1, code);
        Assert.Contains("does not exist", error, StringComparison.Ordinal);
    }
}
