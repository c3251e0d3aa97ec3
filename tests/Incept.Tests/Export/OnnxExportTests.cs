using Incept.Data;
using Incept.Export;
using Incept.Inference;
using Incept.Models;
using Incept.Registry;
using Incept.Tests.Models;
using Xunit.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Export;

/// <summary>Every registry model exported to ONNX computes, in ONNX Runtime, the logits TorchSharp computes in evaluation mode.</summary>
public sealed class OnnxExportTests(ITestOutputHelper output) : IDisposable
{
    private const double Tolerance = 1e-4;
    private readonly string dir = Directory.CreateTempSubdirectory("incept-onnx-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    public static TheoryData<string> Models() => RegistryModels.All();

    [Theory]
    [MemberData(nameof(Models))]
    public void A_narrow_small_input_model_runs_in_onnx_runtime_with_the_logits_of_torchsharp_at_batch_1_and_3(string name)
    {
        using var model = Calibrated(name, new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 }, size: 32);
        using var three = Images(3, 32);
        using var one = Images(1, 32, seed: 7);
        foreach (bool fold in new[] { false, true })
        {
            var path = Path.Combine(dir, $"{name}-{fold}.onnx");
            var result = OnnxExporter.Export(model, path, new OnnxExportOptions { ModelName = name, FoldBatchNorm = fold, DynamicBatch = true, InputSize = 32 });
            Assert.Equal([-1, 3, 32, 32], result.InputShape);
            Assert.Equal([-1, 10], result.OutputShape);
            output.WriteLine($"{name} fold={fold}: {result.Bytes} bytes, {result.Nodes} nodes, {result.Parameters} parameters");
            AssertInitializersAreStateDictKeys(model, path, fold);

            using var engine = OnnxEngine.Open(path);
            Assert.Null(engine.Info.BatchSize);
            AssertSameLogits(model, engine, three, $"{name} fold={fold} batch 3");
            AssertSameLogits(model, engine, one, $"{name} fold={fold} batch 1");
        }
    }

    [Fact]
    public void A_model_exported_in_memory_runs_like_the_file_and_names_itself()
    {
        using var model = Calibrated("inception_resnet_v2", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 }, size: 32);
        using var engine = OnnxEngine.FromModel(model, new OnnxExportOptions { ModelName = "inception_resnet_v2", InputSize = 32 });
        Assert.Null(engine.Info.BatchSize); // the batch size is left open
        Assert.Equal("inception_resnet_v2", engine.Info.Model);
        Assert.Contains("exported on the fly", engine.Info.Path, StringComparison.Ordinal);
        AssertSameLogits(model, engine, Images(3, 32), "inception_resnet_v2 exported on the fly");

        // ONNX Runtime's memory pattern (off by default to save memory) changes where intermediates live, not results;
        // batches of a new size after the first are where a planned pattern would be rebuilt.
        using var patterned = OnnxEngine.FromModel(model, new OnnxExportOptions { ModelName = "inception_resnet_v2", InputSize = 32 }, new OnnxEngineOptions { MemoryPattern = true });
        foreach (int n in new[] { 2, 5, 2 }) AssertSameLogits(model, patterned, Images(n, 32), $"inception_resnet_v2 with the memory pattern, batch {n}");
        foreach (int n in new[] { 4, 1 }) AssertSameLogits(model, engine, Images(n, 32), $"inception_resnet_v2 without it, batch {n}");
    }

    [Fact]
    public void Folding_removes_the_batchnorms_from_the_graph()
    {
        using var model = Calibrated("inception_v3", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 }, size: 32);
        var (plain, _, _, _) = OnnxExporter.Build(model, new OnnxExportOptions { InputSize = 32 });
        var (folded, _, _, foldedParams) = OnnxExporter.Build(model, new OnnxExportOptions { InputSize = 32, FoldBatchNorm = true });
        int convs = model.modules().OfType<Conv2d>().Count();
        Assert.Equal(convs, plain.Graph.Node.Count(n => n.OpType == "BatchNormalization"));
        Assert.DoesNotContain(folded.Graph.Node, n => n.OpType == "BatchNormalization");
        Assert.Contains(folded.Graph.Initializer, t => t.Name == "Mixed_5b.branch1x1.conv.bias");
        Assert.True(foldedParams < model.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void The_written_file_holds_every_initializer_once_with_the_layers_data()
    {
        using var model = Calibrated("googlenet", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 }, size: 32);
        var built = OnnxExporter.Build(model, new OnnxExportOptions { InputSize = 32 });
        Assert.All(built.Model.Graph.Initializer, t => Assert.True(t.RawData.IsEmpty)); // declared, computed when written

        using var stream = new MemoryStream();
        built.WriteTo(stream);
        var read = Onnx.ModelProto.Parser.ParseFrom(stream.ToArray());
        Assert.Equal(built.Model.Graph.Node.Select(n => n.Name), read.Graph.Node.Select(n => n.Name));
        Assert.Equal(built.Model.Graph.Initializer.Select(t => t.Name), read.Graph.Initializer.Select(t => t.Name));
        Assert.Equal(built.Model.MetadataProps, read.MetadataProps);
        Assert.Equal(built.Parameters, read.Graph.Initializer.Sum(t => t.Dims.Aggregate(1L, (n, d) => n * d)));
        var state = model.state_dict();
        foreach (var key in new[] { "conv1.conv.weight", "inception4a.branch2.1.bn.running_var", "fc.bias" })
        {
            var written = read.Graph.Initializer.Single(t => t.Name == key);
            Assert.Equal(state[key].shape, written.Dims);
            var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(written.RawData.Span).ToArray();
            Assert.Equal(state[key].data<float>().ToArray(), values);
        }

        Assert.DoesNotContain(built.Model.Graph.Initializer, t => !t.RawData.IsEmpty); // writing leaves the graph as declared
    }

    [Fact]
    public void Releasing_the_model_frees_its_weights_and_keeps_its_logits()
    {
        var model = Calibrated("bn_inception", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 }, size: 32);
        using var x = Images(2, 32);
        Tensor expected;
        using (no_grad())
        {
            model.eval();
            expected = model.call(x).Logits.detach().clone();
        }

        var weight = model.parameters().First();
        using var engine = OnnxEngine.FromModel(model, new OnnxExportOptions { InputSize = 32 }, releaseModel: true);
        Assert.True(weight.IsInvalid);
        using var actual = engine.Run(x);
        double relative = (expected - actual).abs().max().item<float>() / expected.abs().max().item<float>();
        Assert.True(relative <= Tolerance, $"max |Δ| is {relative:G3} of the largest logit");
        model.Dispose(); // disposing a released model again does nothing
        expected.Dispose();
    }

    [Fact]
    public void The_on_the_fly_export_leaves_no_temporary_file()
    {
        using var model = Calibrated("inception_resnet_v1", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 }, size: 32);
        string pattern = $"incept-export-{Environment.ProcessId}-*.onnx";
        var before = Directory.GetFiles(Path.GetTempPath(), pattern).ToHashSet();
        using (OnnxEngine.FromModel(model, new OnnxExportOptions { InputSize = 32 }))
            Assert.Empty(Directory.GetFiles(Path.GetTempPath(), pattern).Except(before));
    }

    [Fact]
    public void Full_size_googlenet_at_224_matches_torchsharp_with_folded_batchnorm()
    {
        using var model = Calibrated("googlenet", new ModelConfig(), size: 224, calibrationBatch: 2);
        var path = Path.Combine(dir, "googlenet.onnx");
        OnnxExporter.Export(model, path, new OnnxExportOptions { ModelName = "googlenet", FoldBatchNorm = true, InputSize = 224, BatchSize = 2 });
        using var engine = OnnxEngine.Open(path, new OnnxEngineOptions { Threads = 2 });
        Assert.Equal(2, engine.Info.BatchSize);
        // Three images through a file fixed at two run in two padded chunks.
        AssertSameLogits(model, engine, Images(3, 224), "googlenet 224");
    }

    [Fact]
    public void The_embedding_model_without_classifier_exports_its_normalised_embedding()
    {
        using var model = Calibrated("inception_resnet_v1", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 0 }, size: 32);
        var path = Path.Combine(dir, "facenet.onnx");
        OnnxExporter.Export(model, path, new OnnxExportOptions { FoldBatchNorm = true, DynamicBatch = true, InputSize = 32 });
        using var engine = OnnxEngine.Open(path);
        Assert.Equal(0, engine.Info.NumClasses);
        Assert.Equal(512, engine.Info.Outputs);
        AssertSameLogits(model, engine, Images(2, 32), "inception_resnet_v1 embedding");
    }

    [Fact]
    public void The_file_declares_its_input_output_and_preprocessing()
    {
        using var model = Calibrated("googlenet", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 3 }, size: 40);
        var preprocess = new PreprocessSpec(40, 0.875, "bicubic", [0.5f, 0.5f, 0.5f], [0.25f, 0.25f, 0.25f], true, 255.0);
        string[] classes = ["cat", "dog", "bird"];
        var path = Path.Combine(dir, "described.onnx");
        OnnxExporter.Export(model, path, new OnnxExportOptions
        {
            ModelName = "googlenet", Preprocess = preprocess, ClassNames = classes, Labels = "pets", BatchSize = 4,
        });

        var info = OnnxModelInfo.Read(path);
        Assert.Equal((OnnxExporter.InputName, OnnxExporter.OutputName), (info.InputName, info.OutputName));
        Assert.Equal((4, 3, 40, 40, 3), (info.BatchSize!.Value, info.InChannels, info.Height, info.Width, info.Outputs));
        Assert.Equal("googlenet", info.Model);
        Assert.Equal(3, info.NumClasses);
        Assert.Equal(classes, info.ClassNames);
        Assert.Equal("pets", info.Labels);
        Assert.False(info.FoldBatchNorm);
        var p = info.Preprocess!;
        Assert.Equal((40, 0.875, "bicubic", true, 255.0), (p.InputSize, p.CropFraction, p.Interpolation, p.Bgr, p.Scale));
        Assert.Equal(preprocess.Mean, p.Mean);
        Assert.Equal(preprocess.Std, p.Std);

        // ONNX Runtime reads the same description from the file.
        using var engine = OnnxEngine.Open(path);
        Assert.Equal(info.Preprocess, engine.Info.Preprocess, (a, b) => a!.InputSize == b!.InputSize && a.Mean.SequenceEqual(b.Mean));
        Assert.Equal(classes, engine.Info.ClassNames);
        Assert.Equal(4, engine.Info.BatchSize);
    }

    [Fact]
    public void An_opset_too_old_for_ceil_mode_pooling_is_refused_with_the_fix()
    {
        using var model = ModelFactory.Create("googlenet", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 });
        var path = Path.Combine(dir, "old.onnx");
        var e = Assert.Throws<OnnxExportException>(() => OnnxExporter.Export(model, path, new OnnxExportOptions { Opset = 9, InputSize = 32 }));
        Assert.Contains("ceil mode", e.Message, StringComparison.Ordinal);
        Assert.Contains("opset 10 or later", e.Message, StringComparison.Ordinal);
        Assert.Contains("--opset", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void A_model_without_ceil_mode_pools_runs_at_an_old_opset()
    {
        using var model = Calibrated("inception_v3", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 }, size: 32);
        var path = Path.Combine(dir, "v3-opset9.onnx");
        OnnxExporter.Export(model, path, new OnnxExportOptions { Opset = 9, InputSize = 32, DynamicBatch = true });
        using var engine = OnnxEngine.Open(path);
        AssertSameLogits(model, engine, Images(2, 32), "inception_v3 opset 9");
    }

    [Theory]
    [InlineData(6)]
    [InlineData(30)]
    public void An_opset_outside_the_written_range_is_refused(int opset)
    {
        using var model = ModelFactory.Create("inception_v3", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 });
        var e = Assert.Throws<OnnxExportException>(() => OnnxExporter.Build(model, new OnnxExportOptions { Opset = opset, InputSize = 32 }));
        Assert.Contains("opsets 7 to 23", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_layer_without_a_converter_is_named()
    {
        var graph = new OnnxGraphBuilder(17, foldBatchNorm: false);
        var x = graph.Input("input", 1, 3, 8, 8);
        using var elu = nn.ELU();
        var e = Assert.Throws<OnnxExportException>(() => graph.Call(elu, x, "head"));
        Assert.Contains("no converter for the ELU at 'head'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_input_size_the_model_cannot_take_is_refused_with_the_models_own_reason()
    {
        using var model = ModelFactory.Create("bn_inception", new ModelConfig { Width = 0.25, NumClasses = 10 });
        var e = Assert.Throws<InputShapeException>(() => OnnxExporter.Build(model, new OnnxExportOptions { InputSize = 299 }));
        Assert.Contains("299", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_or_corrupt_file_gives_one_clear_message()
    {
        var missing = Path.Combine(dir, "missing.onnx");
        var e = Assert.Throws<InceptException>(() => OnnxEngine.Open(missing));
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);

        var corrupt = Path.Combine(dir, "corrupt.onnx");
        File.WriteAllBytes(corrupt, [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 31 + 7))]);
        e = Assert.Throws<InceptException>(() => OnnxEngine.Open(corrupt));
        Assert.StartsWith($"'{corrupt}' is not an ONNX image classifier Incept can run: ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("\n", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InceptException>(() => OnnxModelInfo.Read(corrupt));
        Assert.StartsWith($"'{corrupt}' is not an ONNX image classifier", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_batch_of_the_wrong_image_size_is_refused_by_the_engine()
    {
        using var model = ModelFactory.Create("googlenet", new ModelConfig { Width = 0.25, SmallInput = true, NumClasses = 10 });
        var path = Path.Combine(dir, "g.onnx");
        OnnxExporter.Export(model, path, new OnnxExportOptions { InputSize = 32, DynamicBatch = true });
        using var engine = OnnxEngine.Open(path);
        using var wrong = zeros(2, 3, 48, 48);
        var e = Assert.Throws<InputShapeException>(() => engine.Run(wrong));
        Assert.Contains("N×3×32×32", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Unfolded, the initializers are the model's state-dict entries under their keys (besides residual scales);
    /// folded, the BatchNorms are gone and every convolution followed by one has a bias.
    /// </summary>
    private static void AssertInitializersAreStateDictKeys(InceptionModel model, string path, bool fold)
    {
        var graph = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph;
        var names = graph.Initializer.Select(t => t.Name).Where(n => !n.EndsWith(".scale", StringComparison.Ordinal) && n != "scale").ToHashSet();
        var bnPrefixes = model.named_modules().Where(m => m.module is BatchNorm).Select(m => m.name + ".").ToList();
        var keys = model.state_dict().Keys.Where(k => !k.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).ToHashSet();
        if (fold)
        {
            keys.RemoveWhere(k => bnPrefixes.Any(p => k.StartsWith(p, StringComparison.Ordinal)));
            Assert.DoesNotContain(graph.Node, n => n.OpType == "BatchNormalization");
            Assert.Empty(keys.Except(names));
            Assert.All(names.Except(keys), n => Assert.EndsWith(".bias", n, StringComparison.Ordinal));
        }
        else
        {
            Assert.Equal(keys.Order(), names.Order());
        }
    }

    /// <summary>Builds <paramref name="name"/> with calibrated BatchNorms (<see cref="BatchNormCalibration.Calibrate"/>), in evaluation mode.</summary>
    internal static InceptionModel Calibrated(string name, ModelConfig config, int size, int calibrationBatch = 4)
    {
        manual_seed(1234);
        var model = ModelFactory.Create(name, config);
        BatchNormCalibration.Calibrate(model, config.InChannels, size, seed: 99, batch: calibrationBatch);
        return model;
    }

    internal static Tensor Images(int n, int size, int channels = 3, int seed = 1)
    {
        using var generator = new Generator((ulong)seed);
        return randn([n, channels, size, size], generator: generator);
    }

    private double AssertSameLogits(InceptionModel model, OnnxEngine engine, Tensor input, string what)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        model.eval();
        var expected = model.call(input).Logits;
        var actual = engine.Run(input);
        Assert.Equal(expected.shape, actual.shape);
        double scale = expected.abs().max().item<float>();
        double diff = (expected - actual).abs().max().item<float>();
        double relative = diff / scale;
        Assert.True(scale > 1e-3, $"{what}: the logits are all but zero (max |x| = {scale:G3}); the comparison would prove nothing");
        Assert.True(relative <= Tolerance, $"{what}: max |Δ| = {diff:G4} is {relative:G3} of max |logit| {scale:G4}, above {Tolerance:G2}");
        output.WriteLine($"onnx parity {what}: max |Δ|/max|logit| = {relative:G3} (max |logit| {scale:G4})");
        return relative;
    }
}
