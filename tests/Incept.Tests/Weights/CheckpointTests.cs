using Incept.Cli;
using Incept.Tests.Cli;
using Incept.Models;
using Incept.Registry;
using Incept.Tests.Models;
using Incept.Tests.Reference;
using Incept.Tests.Scripts;
using Incept.Weights;
using Incept.Weights.KeyMaps;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Weights;

/// <summary>Checkpoints in each source's key scheme load through the CLI and reproduce the reference logits.</summary>
public sealed class CheckpointTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("incept-ckpt-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    public static TheoryData<string, string> SourceFormats() => new()
    {
        { "googlenet", "torchvision" },
        { "bn_inception", "cadene" },
        { "inception_v3", "timm" },
        { "inception_v3", "cadene" },
        { "inception_v4", "cadene" },
        { "inception_resnet_v1", "facenet" },
        { "inception_resnet_v2", "timm" },
        { "inception_resnet_v2", "cadene" },
    };

    [Theory]
    [MemberData(nameof(SourceFormats))]
    public void A_safetensors_checkpoint_in_the_sources_key_scheme_converts_and_predicts_the_reference_logits(string name, string source)
    {
        var fixture = ReferenceFixture.Open(ReferenceModels.Folders[name].Plain);
        var format = Enum.Parse<KeyFormat>(source, ignoreCase: true);
        var sourceFile = Path.Combine(dir, $"{name}-{source}.safetensors");
        var sd = fixture.StateDict();
        SafeTensors.Write(sourceFile, KeyMap.FromIncept(name, sd, format));
        var converted = Path.Combine(dir, $"{name}.safetensors");
        var (code, _, err) = Run("convert", sourceFile, converted, "--model", name);
        Assert.True(code == 0, err);

        var inputFile = Path.Combine(dir, "input.npy");
        using (var input = fixture.Input()) Npy.Write(inputFile, input);
        var logitsFile = Path.Combine(dir, "logits.npy");
        (code, _, err) = Run("predict", "--weights", converted, "--input-tensor", inputFile, "--save-logits", logitsFile);
        Assert.True(code == 0, err);
        if (ReferenceModels.Float32Unstable.ContainsKey(name)) return; // compared layer by layer in ReferenceParityTests
        using var expected = fixture.Logits();
        using var actual = Npy.Read(logitsFile);
        ReferenceParityTests.AssertClose(expected, actual, name, ReferenceModels.Tolerance(name));
    }

    [Fact]
    public void Cadene_names_are_detected_without_being_told()
    {
        Assert.Equal(KeyFormat.Cadene, KeyMap.Detect("inception_resnet_v2", ["conv2d_1a.conv.weight", "last_linear.weight"]));
        Assert.Equal(KeyFormat.Timm, KeyMap.Detect("inception_resnet_v2", ["conv2d_1a.conv.weight", "classif.weight"]));
        var renamed = KeyMap.ToIncept("inception_v3", new Dictionary<string, Tensor> { ["last_linear.weight"] = zeros(2, 2) }, KeyFormat.Auto);
        Assert.Equal(["fc.weight"], renamed.Keys);
    }

    [Fact]
    public void A_checkpoint_with_aux_heads_builds_them_and_one_without_does_not()
    {
        var aux = ReferenceFixture.Open("torchvision_googlenet_aux");
        var plain = ReferenceFixture.Open("torchvision_googlenet");
        var withAux = Path.Combine(dir, "with-aux.safetensors");
        var withoutAux = Path.Combine(dir, "without-aux.safetensors");
        SafeTensors.Write(withAux, aux.StateDict(statsFrom: plain));
        SafeTensors.Write(withoutAux, plain.StateDict());
        using (var loaded = CheckpointLoader.Load(withAux, new CheckpointOptions { Model = "googlenet" }))
        {
            Assert.True(loaded.Model.HasAux);
            Assert.Contains("aux1.fc2.weight", loaded.Report.Loaded);
        }

        using (var loaded = CheckpointLoader.Load(withoutAux, new CheckpointOptions { Model = "googlenet" }))
            Assert.False(loaded.Model.HasAux);
    }

    [Fact]
    public void Files_saved_by_incept_rebuild_their_model_from_the_metadata_alone()
    {
        var path = Path.Combine(dir, "small.safetensors");
        using (var model = ModelFactory.Create("inception_resnet_v2", new ModelConfig { NumClasses = 7, InChannels = 1 }))
            CheckpointLoader.Save(path, model, ModelRegistry.Get("inception_resnet_v2"), classNames: ["a", "b", "c", "d", "e", "f", "g"]);
        using var loaded = CheckpointLoader.Load(path);
        Assert.Equal("inception_resnet_v2", loaded.Spec.Name);
        Assert.Equal(7, loaded.Model.NumClasses);
        Assert.Equal(1, loaded.Model.Config.InChannels);
        Assert.Equal(1.0, loaded.Model.Config.Width);
        Assert.False(loaded.Model.Config.SmallInput);
        Assert.Equal("g", loaded.ClassNames![6]);
    }

    [Fact]
    public void A_narrow_small_input_model_saved_by_incept_reloads_from_the_file_alone_with_identical_logits()
    {
        var path = Path.Combine(dir, "fashion.safetensors");
        var spec = ModelRegistry.Get("googlenet");
        using var input = randn(3, 1, 28, 28);
        Tensor expected;
        using (var model = ModelFactory.Create(spec, new ModelConfig { NumClasses = 10, InChannels = 1, Width = 0.25, SmallInput = true, AuxLogits = true }))
        {
            // A few training steps move the BatchNorm statistics away from their initial values.
            model.train();
            using (no_grad()) for (int i = 0; i < 3; i++) model.call(randn(4, 1, 28, 28));
            model.eval();
            using (no_grad()) expected = model.call(input).Logits.detach().clone();
            CheckpointLoader.Save(path, model, spec);
        }

        using var file = CheckpointFile.Read(path);
        Assert.Equal("0.25", file.Metadata[CheckpointLoader.MetadataKeys.Width]);
        Assert.Equal("true", file.Metadata[CheckpointLoader.MetadataKeys.SmallInput]);
        using var loaded = CheckpointLoader.Load(path);
        Assert.Equal(0.25, loaded.Model.Config.Width);
        Assert.True(loaded.Model.Config.SmallInput);
        Assert.True(loaded.Model.HasAux);
        Assert.Equal(1, loaded.Model.Config.InChannels);
        using (no_grad())
        {
            var actual = loaded.Model.call(input).Logits;
            Assert.Equal(0, (actual - expected).abs().max().item<float>());
        }

        expected.Dispose();
    }

    [Fact]
    public void A_strict_mismatch_lists_missing_unexpected_and_misshaped_keys_and_non_strict_loads_the_rest()
    {
        var fixture = ReferenceFixture.Open("torchvision_googlenet");
        var sd = fixture.StateDict();
        sd.Remove("conv1.conv.weight");
        sd["extra.weight"] = zeros(3);
        sd["conv2.conv.weight"] = zeros(1, 2, 3, 3);
        var path = Path.Combine(dir, "broken.safetensors");
        SafeTensors.Write(path, sd);
        var output = Path.Combine(dir, "out.safetensors");
        var (code, _, err) = Run("convert", path, output, "--model", "googlenet");
        Assert.Equal(1, code);
        Assert.Contains("1 missing keys: conv1.conv.weight", err, StringComparison.Ordinal);
        Assert.Contains("1 unexpected keys: extra.weight", err, StringComparison.Ordinal);
        Assert.Contains("conv2.conv.weight: checkpoint [1, 2, 3, 3] vs model [64, 64, 1, 1]", err, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));

        (code, _, err) = Run("convert", path, output, "--model", "googlenet", "--non-strict");
        Assert.True(code == 0, err);
        Assert.True(File.Exists(output));
    }

    [Fact]
    public void Skip_classifier_loads_the_backbone_under_a_new_head()
    {
        var fixture = ReferenceFixture.Open("timm_inception_resnet_v2");
        var path = Path.Combine(dir, "irv2.safetensors");
        SafeTensors.Write(path, fixture.StateDict());
        using var loaded = CheckpointLoader.Load(path, new CheckpointOptions { Model = "inception_resnet_v2", SkipClassifier = true, NumClasses = 10 });
        Assert.Equal(10, loaded.Model.NumClasses);
        Assert.DoesNotContain("classif.weight", loaded.Report.Loaded);
        Assert.Contains("conv2d_7b.conv.weight", loaded.Report.Loaded);
    }

    [Fact]
    public void A_1001_class_tf_port_keeps_its_classes_or_drops_the_background_row()
    {
        var fixture = ReferenceFixture.Open("timm_inception_resnet_v2");
        var sd = fixture.StateDict();
        using var minusOne = (-1f).ToScalar();
        sd["classif.weight"] = cat([full(1, 1536, minusOne), sd["classif.weight"]], 0);
        sd["classif.bias"] = cat([full(1, minusOne), sd["classif.bias"]], 0);
        var path = Path.Combine(dir, "tf.safetensors");
        SafeTensors.Write(path, KeyMap.FromIncept("inception_resnet_v2", sd, KeyFormat.Cadene));
        using (var kept = CheckpointLoader.Load(path, new CheckpointOptions { Model = "inception_resnet_v2" }))
            Assert.Equal(1001, kept.Model.NumClasses);
        using var dropped = CheckpointLoader.Load(path, new CheckpointOptions { Model = "inception_resnet_v2", DropBackground = true });
        Assert.Equal(1000, dropped.Model.NumClasses);
        var head = dropped.Model.state_dict()["classif.weight"];
        Assert.Equal(0f, (head - fixture.StateDict()["classif.weight"]).abs().max().item<float>());

        var wrong = Path.Combine(dir, "plain.safetensors");
        SafeTensors.Write(wrong, fixture.StateDict());
        var e = Assert.Throws<InceptException>(() => CheckpointLoader.Load(wrong, new CheckpointOptions { Model = "inception_resnet_v2", DropBackground = true }));
        Assert.Contains("not TensorFlow's 1001", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_named_like_published_weights_must_have_their_hash()
    {
        var path = Path.Combine(dir, "googlenet-1378be20.pth");
        File.WriteAllBytes(path, [(byte)'P', (byte)'K', 3, 4, 0, 0]);
        var (code, _, err) = Run("convert", path, Path.Combine(dir, "x.safetensors"));
        Assert.Equal(1, code);
        Assert.Contains("starts with 1378be20", err, StringComparison.Ordinal);
        Assert.Contains("download.pytorch.org", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("truncated", "the header claims")]
    [InlineData("bad-json", "not valid JSON")]
    [InlineData("bad-dtype", "unsupported dtype F8_E4M3")]
    [InlineData("short-data", "truncated file")]
    [InlineData("text", "neither a safetensors file, a PyTorch checkpoint nor a TorchSharp weight file")]
    [InlineData("legacy", "legacy (pre-1.6) PyTorch file")]
    [InlineData("missing", "does not exist")]
    public void Bad_files_give_one_line_errors_exit_code_1_and_no_output(string kind, string expected)
    {
        var path = Path.Combine(dir, kind + ".safetensors");
        byte[] Header(string json)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(json);
            return [.. BitConverter.GetBytes((ulong)bytes.Length), .. bytes];
        }

        switch (kind)
        {
            case "truncated": File.WriteAllBytes(path, [.. BitConverter.GetBytes(5000UL), .. "{\"a\":"u8.ToArray()]); break;
            case "bad-json": File.WriteAllBytes(path, Header("{not json")); break;
            case "bad-dtype": File.WriteAllBytes(path, [.. Header("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}"), 0]); break;
            case "short-data": File.WriteAllBytes(path, [.. Header("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}"), 0, 0, 0, 0]); break;
            case "text": File.WriteAllText(path, "hello, this is not a checkpoint"); break;
            case "legacy": File.WriteAllBytes(path, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8]); break;
        }

        var output = Path.Combine(dir, "out.safetensors");
        var (code, stdout, err) = Run("convert", path, output, "--model", "googlenet");
        Assert.Equal(1, code);
        Assert.Contains(expected, err, StringComparison.Ordinal);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Empty(stdout);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Weights_lists_the_published_sets_with_urls_and_preprocessing()
    {
        var (code, output, _) = Run("weights", "--format", "json");
        Assert.Equal(0, code);
        var rows = System.Text.Json.JsonDocument.Parse(output).RootElement.EnumerateArray().ToList();
        var names = rows.Select(r => r.GetProperty("name").GetString()).ToList();
        foreach (var expected in new[] { "googlenet.tv_in1k", "inception_v3.tv_in1k", "inception_v3.tf_in1k", "inception_v3.tf_adv_in1k", "inception_v3.gluon_in1k",
                     "inception_v4.tf_in1k", "inception_resnet_v2.tf_in1k", "inception_resnet_v2.tf_ens_adv_in1k", "inception_resnet_v1.vggface2",
                     "inception_resnet_v1.casia_webface", "bn_inception.cadene_in1k" })
            Assert.Contains(expected, names);
        var irv2 = rows.Single(r => r.GetProperty("name").GetString() == "inception_resnet_v2.tf_in1k").GetProperty("preprocess");
        Assert.Equal(0.8975, irv2.GetProperty("crop_fraction").GetDouble());
        Assert.Equal("bicubic", irv2.GetProperty("interpolation").GetString());
        var bn = rows.Single(r => r.GetProperty("name").GetString() == "bn_inception.cadene_in1k").GetProperty("preprocess");
        Assert.True(bn.GetProperty("bgr").GetBoolean());
        Assert.Equal(255, bn.GetProperty("scale").GetDouble());
    }

    [SkippableTheory]
    [InlineData("googlenet", 224, "weights.pth")]
    [InlineData("googlenet", 224, "weights.safetensors")]
    [InlineData("inception_v3", 299, "weights.pth")]
    [InlineData("inception_v3", 299, "weights.safetensors")]
    public void Torchvision_checkpoints_with_aux_heads_load_strictly_through_the_cli_and_give_pytorchs_logits(string name, int size, string file)
    {
        PythonReference.Require("torch, torchvision");
        PythonReference.RunOrFail("torchvision_reference.py", name, dir, "5", $"{size}");
        var logits = Path.Combine(dir, "out.npy");
        var (code, _, err) = Run("predict", "--model", name, "--weights", Path.Combine(dir, file), "--input-tensor", Path.Combine(dir, "input.npy"), "--save-logits", logits);
        Assert.True(code == 0, err);
        using var expected = Npy.Read(Path.Combine(dir, "logits32.npy"));
        using var actual = Npy.Read(logits);
        ReferenceParityTests.AssertClose(expected, actual, $"{name} from {file}");
    }

    [SkippableTheory]
    [InlineData("bn_inception", "cadene", "plain")]
    [InlineData("inception_v4", "timm", "nested")]
    [InlineData("inception_resnet_v1", "facenet", "module")]
    [InlineData("inception_resnet_v2", "cadene", "nested")]
    public void Formula_weights_saved_by_torch_as_pth_reproduce_the_reference_logits(string name, string source, string style)
    {
        PythonReference.Require("torch");
        var fixture = ReferenceFixture.Open(ReferenceModels.Folders[name].Plain);
        var safetensors = Path.Combine(dir, "source.safetensors");
        SafeTensors.Write(safetensors, KeyMap.FromIncept(name, fixture.StateDict(), Enum.Parse<KeyFormat>(source, ignoreCase: true)));
        var pth = Path.Combine(dir, "source.pth");
        PythonReference.RunOrFail("safetensors_to_pth.py", safetensors, pth, style);
        using var loaded = CheckpointLoader.Load(pth, new CheckpointOptions { Model = name });
        if (ReferenceModels.Float32Unstable.ContainsKey(name))
        {
            Assert.Equal(fixture.Keys.Count, loaded.Report.Loaded.Count);
            return;
        }

        using var _ = no_grad();
        using var input = fixture.Input();
        using var expected = fixture.Logits();
        ReferenceParityTests.AssertClose(expected, loaded.Model.call(input).Logits, name, ReferenceModels.Tolerance(name));
    }

    [Fact]
    public void A_torchsharp_dat_file_loads_like_any_other_checkpoint()
    {
        var path = Path.Combine(dir, "net.dat");
        using var model = ModelFactory.Create("googlenet", new ModelConfig { NumClasses = 5, Width = 0.25, SmallInput = true, AuxLogits = true });
        model.save(path);
        var tensors = TorchSharpDat.Read(path);
        var expected = model.state_dict();
        Assert.Equal(expected.Keys.Order(), tensors.Keys.Order());
        foreach (var (key, t) in expected) Assert.True(t.eq(tensors[key]).all().item<bool>(), key);

        var truncated = Path.Combine(dir, "cut.dat");
        File.WriteAllBytes(truncated, File.ReadAllBytes(path)[..5000]);
        var e = Assert.Throws<CheckpointFormatException>(() => TorchSharpDat.Read(truncated));
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pickle_that_calls_a_function_is_refused_through_the_cli_with_exit_code_1()
    {
        // A zip checkpoint whose data.pkl asks for os.system('touch PWNED'): GLOBAL, then the argument tuple, REDUCE.
        var path = Path.Combine(dir, "evil.pth");
        var marker = Path.Combine(dir, "PWNED");
        using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Create))
        using (var entry = zip.CreateEntry("archive/data.pkl").Open())
        {
            var pickle = new List<byte> { 0x80, 0x02, (byte)'c' };
            pickle.AddRange("os\nsystem\n"u8.ToArray());
            var command = System.Text.Encoding.ASCII.GetBytes($"touch {marker}");
            pickle.Add((byte)'X');
            pickle.AddRange(BitConverter.GetBytes(command.Length));
            pickle.AddRange(command);
            pickle.AddRange(new byte[] { 0x85, (byte)'R', (byte)'.' });
            entry.Write(pickle.ToArray());
        }

        var output = Path.Combine(dir, "out.safetensors");
        var (code, _, err) = Run("convert", path, output, "--model", "googlenet");
        Assert.Equal(1, code);
        Assert.Contains("os.system", err, StringComparison.Ordinal);
        Assert.Contains("refuses to run code", err, StringComparison.Ordinal);
        Assert.False(File.Exists(marker));
        Assert.False(File.Exists(output));
    }
}
