using System.Globalization;
using Incept.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Reference;

/// <summary>One row of keys.tsv.</summary>
internal sealed record ReferenceKey(string Key, long[] Shape, string DType, string Rule);

/// <summary>A folder of the reference fixtures: keys, BatchNorm statistics, logits.</summary>
internal sealed class ReferenceFixture
{
    public static string Root { get; } = FindRoot();

    private ReferenceFixture(string folder)
    {
        Folder = folder;
        Dir = Path.Combine(Root, folder);
        Keys = File.ReadAllLines(Path.Combine(Dir, "keys.tsv")).Skip(1).Where(l => l.Length > 0).Select(l =>
        {
            var c = l.Split('\t');
            var shape = c[1] == "scalar" ? [] : c[1].Split('x').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            return new ReferenceKey(c[0], shape, c[2], c[3]);
        }).ToList();
    }

    public string Folder { get; }

    public string Dir { get; }

    public IReadOnlyList<ReferenceKey> Keys { get; }

    public static ReferenceFixture Open(string folder) => new(folder);

    /// <summary>Number of trainable parameter elements (every key except BN statistics).</summary>
    public long ParamCount => Keys.Where(k => k.Rule is "he_uniform" or "bias" or "bn_weight" or "bn_bias")
        .Sum(k => k.Shape.Aggregate(1L, (a, d) => a * d));

    /// <summary>The formula state dict, with BN statistics from <paramref name="statsFrom"/> (default: this folder).</summary>
    public Dictionary<string, Tensor> StateDict(ReferenceFixture? statsFrom = null)
    {
        using var stats = SafeTensors.Read(Path.Combine((statsFrom ?? this).Dir, "bn_stats.safetensors"));
        var sd = new Dictionary<string, Tensor>();
        foreach (var k in Keys)
        {
            sd[k.Key] = k.Rule switch
            {
                "zero" => tensor(0L),
                "bn_running_mean" or "bn_running_var" => stats.Tensors.TryGetValue(k.Key, out var s)
                    ? s.clone()
                    : (k.Rule == "bn_running_mean" ? zeros(k.Shape) : ones(k.Shape)),
                _ => tensor(Formula.Values(k.Key, k.Shape, k.Rule), k.Shape),
            };
        }

        return sd;
    }

    public int InputSize => int.Parse(System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "meta.json")))
        .RootElement.GetProperty("input_size").GetRawText(), CultureInfo.InvariantCulture);

    public Tensor Input()
    {
        long[] shape = [2, 3, InputSize, InputSize];
        return tensor(Formula.Values("input", shape, "input"), shape);
    }

    /// <summary>The batch the reference's BatchNorm statistics were measured on: key <c>calibration</c>, 8 × 3 × S × S.</summary>
    public Tensor Calibration()
    {
        long[] shape = [8, 3, InputSize, InputSize];
        return tensor(Formula.Values("calibration", shape, "input"), shape);
    }

    /// <summary>The reference's BatchNorm running statistics (<c>running_mean</c>, <c>running_var</c>), keyed by state-dict key.</summary>
    public Dictionary<string, Tensor> BatchNormStatistics()
    {
        using var stats = SafeTensors.Read(Path.Combine(Dir, "bn_stats.safetensors"));
        return stats.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.clone());
    }

    public Tensor Logits() => Npy.Read(Path.Combine(Dir, "logits.npy"));

    public Tensor Embeddings() => Npy.Read(Path.Combine(Dir, "embeddings.npy"));

    private static string FindRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null)
        {
            var candidate = Path.Combine(dir, "tests", "Incept.Tests", "Fixtures", "reference");
            if (Directory.Exists(candidate)) return candidate;
            dir = Path.GetDirectoryName(dir);
        }

        throw new DirectoryNotFoundException("tests/Incept.Tests/Fixtures/reference not found above " + AppContext.BaseDirectory);
    }
}
