using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Incept.Models;
using Incept.Registry;
using Incept.Tests.Scripts;
using Incept.Weights;
using Incept.Weights.Pickle;
using static TorchSharp.torch;

namespace Incept.Tests.Weights;

/// <summary>
/// Runs Scripts/make_checkpoints.py once into a temporary folder for the tests that compare with files
/// written by torch.save; records why it could not, so that each test can skip or fail.
/// </summary>
public sealed class TorchSavedCheckpoints : IDisposable
{
    public TorchSavedCheckpoints()
    {
        Dir = Directory.CreateTempSubdirectory("incept-pth-").FullName;
        Available = PythonReference.HasModules("torch");
        if (Available) Failure = PythonReference.Run("make_checkpoints.py", Dir);
    }

    /// <summary>The folder holding the checkpoints.</summary>
    public string Dir { get; }

    /// <summary>Whether Debian's python3-torch can be imported.</summary>
    public bool Available { get; }

    /// <summary>The script's error output when it failed.</summary>
    public string? Failure { get; }

    public string this[string file] => Path.Combine(Dir, file);

    /// <summary>Skips outside CI when python3-torch is missing; fails when the script did.</summary>
    public void Require()
    {
        bool inCi = Environment.GetEnvironmentVariable("CI") == "true";
        Skip.If(!inCi && !Available, "Debian's python3-torch is not installed (bash .ci/run installs it).");
        Assert.True(Available, "python3-torch is required in CI.");
        Assert.True(Failure is null, $"make_checkpoints.py failed: {Failure}");
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}

public class PyTorchCheckpointTests(TorchSavedCheckpoints files) : IClassFixture<TorchSavedCheckpoints>
{
    // ---- Checkpoints written by torch.save (Debian's python3-torch 1.13) ----

    [SkippableFact]
    public void A_plain_state_dict_reads_every_tensor_with_its_dtype_and_values()
    {
        files.Require();
        var sd = PyTorchCheckpoint.ReadStateDict(files["plain.pth"]);
        try
        {
            AssertMatchesExpected(sd);
        }
        finally
        {
            foreach (var t in sd.Values) t.Dispose();
        }
    }

    [SkippableFact]
    public void Views_of_one_storage_are_copied_out_contiguous_and_do_not_share_memory()
    {
        files.Require();
        var sd = PyTorchCheckpoint.ReadStateDict(files["plain.pth"]);
        try
        {
            using var before = sd["base"].clone();
            sd["view_offset"].Fill(100);
            sd["tied_a"].Fill(100);
            Assert.True(sd["base"].eq(before).all().item<bool>());
            Assert.True(sd["fc.weight_t"].is_contiguous());
            Assert.True(sd["view_step"].is_contiguous());
            // One tensor saved under two names stays one tensor, as in PyTorch.
            Assert.True(sd["tied_b"].EqualTo(100).all().item<bool>());
        }
        finally
        {
            foreach (var t in sd.Values) t.Dispose();
        }
    }

    [SkippableFact]
    public void A_wrapped_checkpoint_with_training_arguments_unwraps_its_state_dict_and_keeps_the_other_entries_readable()
    {
        files.Require();
        var sd = PyTorchCheckpoint.ReadStateDict(files["wrapped.pth"]);
        try
        {
            AssertMatchesExpected(sd);
        }
        finally
        {
            foreach (var t in sd.Values) t.Dispose();
        }

        using var file = PyTorchCheckpoint.Read(files["wrapped.pth"]);
        var root = Assert.IsType<Dictionary<object, object?>>(file.Root);
        Assert.Equal(3L, root["epoch"]);
        Assert.Equal("toy", root["arch"]);
        Assert.Equal(0.75, root["best_acc1"]);
        var args = Assert.IsType<PythonObject>(root["args"]);
        Assert.Equal("argparse.Namespace", args.TypeName);
        Assert.Equal(0.1, args.Attributes["lr"]);
        Assert.Equal("toy", args.Attributes["model"]);
        Assert.Equal(3L, args.Attributes["epochs"]);
        var optimizer = Assert.IsType<Dictionary<object, object?>>(root["optimizer"]);
        var group = Assert.IsType<Dictionary<object, object?>>(Assert.IsType<List<object?>>(optimizer["param_groups"])[0]);
        Assert.Equal(0.1, group["lr"]);
        Assert.Equal(new List<object?> { 0L }, group["params"]);
        var state = Assert.IsType<Dictionary<object, object?>>(optimizer["state"]);
        var momentum = Assert.IsType<Tensor>(Assert.IsType<Dictionary<object, object?>>(state[0L])["momentum_buffer"]);
        Assert.Equal(new long[] { 4, 3, 3, 3 }, momentum.shape);
        Assert.Equal(1f, momentum.mean().item<float>());
        // tied_a and tied_b are one tensor in the pickle; the momentum buffer is the one tensor outside the state dict.
        var inner = Assert.IsType<Dictionary<object, object?>>(root["state_dict"]);
        Assert.Same(inner["tied_a"], inner["tied_b"]);
        Assert.Equal(inner.Count - 1 + 1, file.Tensors.Count);
    }

    [SkippableFact]
    public void A_DataParallel_module_prefix_is_stripped()
    {
        files.Require();
        var sd = PyTorchCheckpoint.ReadStateDict(files["dataparallel.pth"]);
        try
        {
            Assert.DoesNotContain(sd.Keys, k => k.StartsWith("module.", StringComparison.Ordinal));
            AssertMatchesExpected(sd);
        }
        finally
        {
            foreach (var t in sd.Values) t.Dispose();
        }
    }

    [SkippableFact]
    public void A_legacy_checkpoint_is_refused_with_how_to_re_save_it()
    {
        files.Require();
        var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(files["legacy.pth"]));
        Assert.Contains("legacy format", e.Message, StringComparison.Ordinal);
        Assert.Contains("torch.save(torch.load(", e.Message, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData("malicious_global.pth", "os.system")]
    [InlineData("malicious_stack.pth", "builtins.exec")]
    public void A_checkpoint_that_calls_code_is_refused_and_nothing_runs(string file, string global)
    {
        files.Require();
        var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(files[file]));
        Assert.Equal($"'{files[file]}' asks to call {global} while loading; Incept loads only tensors and refuses to run code from a checkpoint.", e.Message);
        Assert.False(File.Exists(files["PWNED"]));
    }

    [SkippableFact]
    public void A_TorchScript_archive_is_refused_with_what_to_save_instead()
    {
        files.Require();
        var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(files["scripted.pt"]));
        Assert.Equal($"'{files["scripted.pt"]}' is a TorchScript archive (torch.jit.save), which holds code; save the model's state_dict() with torch.save instead.", e.Message);
    }

    [SkippableFact]
    public void A_checkpoint_cut_in_half_is_reported_as_damaged()
    {
        files.Require();
        var bytes = File.ReadAllBytes(files["plain.pth"]);
        var half = Path.Combine(files.Dir, "half.pth");
        File.WriteAllBytes(half, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(half));
        Assert.StartsWith($"'{half}' is a damaged zip archive (", e.Message, StringComparison.Ordinal);
        Assert.EndsWith("it is truncated or corrupt, so download or save it again.", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_missing_or_resized_storage_record_is_named()
    {
        files.Require();
        var missing = Path.Combine(files.Dir, "missing.pth");
        var resized = Path.Combine(files.Dir, "resized.pth");
        Rewrite(files["plain.pth"], missing, (name, data) => name == "plain/data/0" ? null : data);
        Rewrite(files["plain.pth"], resized, (name, data) => name == "plain/data/0" ? data[..^4] : data);
        var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(missing));
        Assert.Equal($"'{missing}' lacks the storage record 'plain/data/0' that its data.pkl refers to; the file is incomplete, so download or save it again.", e.Message);
        e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(resized));
        Assert.Equal($"'{resized}' has a storage record 'plain/data/0' of 428 bytes, but a FloatStorage of 108 elements needs 432; the file is corrupt, so download or save it again.", e.Message);
    }

    [SkippableFact]
    public void A_torchvision_googlenet_checkpoint_loads_strictly()
    {
        files.Require();
        bool inCi = Environment.GetEnvironmentVariable("CI") == "true";
        Skip.If(!inCi && !PythonReference.HasModules("torchvision"), "Debian's python3-torchvision is not installed (bash .ci/run installs it).");
        var failure = PythonReference.Run("make_checkpoints.py", files.Dir, "googlenet");
        Assert.True(failure is null, $"make_checkpoints.py googlenet failed: {failure}");
        var sd = PyTorchCheckpoint.ReadStateDict(files["googlenet.pth"]);
        try
        {
            using var model = ModelFactory.Create("googlenet", new ModelConfig { AuxLogits = true });
            var report = StateDictLoader.Load(model, sd);
            Assert.Equal(sd.Count, report.Loaded.Count);
            Assert.Empty(report.Missing);
            using var expected = sd["conv1.conv.weight"].clone();
            Assert.True(model.state_dict()["conv1.conv.weight"].eq(expected).all().item<bool>());
        }
        finally
        {
            foreach (var t in sd.Values) t.Dispose();
        }
    }

    private void AssertMatchesExpected(Dictionary<string, Tensor> sd)
    {
        using var expected = SafeTensors.Read(files["expected.safetensors"]);
        Assert.Equal(expected.Tensors.Keys.Order(), sd.Keys.Order());
        foreach (var (key, want) in expected.Tensors)
        {
            var got = sd[key];
            Assert.True(want.dtype == got.dtype, $"{key}: dtype {got.dtype}, expected {want.dtype}");
            Assert.True(want.shape.SequenceEqual(got.shape), $"{key}: shape [{string.Join(", ", got.shape)}], expected [{string.Join(", ", want.shape)}]");
            Assert.True(want.eq(got).all().item<bool>(), $"{key}: values differ");
        }
    }

    private static void Rewrite(string source, string target, Func<string, byte[], byte[]?> change)
    {
        using var input = ZipFile.OpenRead(source);
        using var output = ZipFile.Open(target, ZipArchiveMode.Create);
        foreach (var entry in input.Entries)
        {
            using var s = entry.Open();
            using var buffer = new MemoryStream();
            s.CopyTo(buffer);
            if (change(entry.FullName, buffer.ToArray()) is not { } data) continue;
            using var w = output.CreateEntry(entry.FullName, CompressionLevel.NoCompression).Open();
            w.Write(data);
        }
    }

    // ---- Hand-built files: no Python needed ----

    [Fact]
    public void A_strided_view_at_an_offset_is_read_from_a_hand_built_checkpoint()
    {
        var path = WriteZip("strided", Pickle.StateDict("w", "FloatStorage", "0", numel: 6, offset: 1, size: [2, 2], stride: [1, 2]),
            ("strided/data/0", Floats(0, 1, 2, 3, 4, 5)));
        try
        {
            var sd = PyTorchCheckpoint.ReadStateDict(path);
            using var w = Assert.Single(sd).Value;
            using var want = tensor(new float[] { 1, 3, 2, 4 }).reshape(2, 2);
            Assert.True(w.eq(want).all().item<bool>());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_view_reaching_past_its_storage_is_reported()
    {
        var path = WriteZip("outside", Pickle.StateDict("w", "FloatStorage", "0", numel: 4, offset: 1, size: [2, 2], stride: [2, 1]),
            ("outside/data/0", Floats(0, 1, 2, 3)));
        try
        {
            var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(path));
            Assert.StartsWith($"'{path}' has a damaged data.pkl: torch._utils._rebuild_tensor_v2 describes a view [2, 2] (stride [2, 1], offset 1) that reaches element 4 of storage '0', which has 4 at byte ", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("__builtin__", "getattr")]
    [InlineData("subprocess", "Popen")]
    [InlineData("torch", "load")]
    [InlineData("collections", "defaultdict")]
    public void Any_global_outside_the_allow_list_is_refused_by_name(string module, string name)
    {
        var pickle = new Pickle().Proto().EmptyDict().Str("state_dict").Global(module, name).Str("echo hi").Op(0x85).Op('R').Op('s').Op('.');
        var path = WriteZip("evil", pickle.Bytes);
        try
        {
            var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.Read(path));
            Assert.Equal($"'{path}' asks to call {module}.{name} while loading; Incept loads only tensors and refuses to run code from a checkpoint.", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_file_that_is_not_a_checkpoint_is_reported_as_such()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "conv1.weight 0.1 0.2\n");
            var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(path));
            Assert.Equal($"'{path}' is not a PyTorch checkpoint: it is neither a zip archive written by torch.save nor a legacy pickle; check the file and its download.", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_zip_without_data_pkl_is_reported()
    {
        var path = WriteZip("other", null, ("other/readme.txt", "hello"u8.ToArray()));
        try
        {
            var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(path));
            Assert.Equal($"'{path}' is a zip archive but not a PyTorch checkpoint: it holds no <archive>/data.pkl; save the weights with torch.save.", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_checkpoint_without_tensors_names_its_top_level_entries()
    {
        var pickle = new Pickle().Proto().EmptyDict().Str("epoch").Int(3).Op('s').Str("arch").Str("toy").Op('s').Op('.');
        var path = WriteZip("meta", pickle.Bytes);
        try
        {
            var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(path));
            Assert.Equal($"'{path}' holds no state dict: none of its top-level entries (epoch, arch) is a dict of tensors under state_dict, model, module, model_state_dict; name the entry that holds the weights.", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_truncated_pickle_is_reported_as_damaged()
    {
        var full = Pickle.StateDict("w", "FloatStorage", "0", numel: 2, offset: 0, size: [2], stride: [1]);
        var path = WriteZip("cut", full[..(full.Length - 20)], ("cut/data/0", Floats(1, 2)));
        try
        {
            var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(path));
            Assert.StartsWith($"'{path}' has a damaged data.pkl: ", e.Message, StringComparison.Ordinal);
            Assert.EndsWith("; the file is corrupt or was not written by torch.save.", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Containers_nested_absurdly_deep_are_refused_instead_of_overflowing_the_stack()
    {
        var pickle = new Pickle().Proto();
        for (int i = 0; i < 100_000; i++) pickle.Op(']');
        for (int i = 1; i < 100_000; i++) pickle.Op('a');
        var path = WriteZip("deep", pickle.Op('.').Bytes);
        try
        {
            var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.Read(path));
            Assert.Equal($"'{path}' nests containers more than 1000 levels deep, which no state dict does; the file is corrupt or hostile.", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_legacy_header_is_recognised_without_python()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, (byte)'.']);
            var e = Assert.Throws<CheckpointFormatException>(() => PyTorchCheckpoint.ReadStateDict(path));
            Assert.Equal($"'{path}' was saved in PyTorch's legacy format (before 1.6), which Incept does not read; re-save it with PyTorch 1.6 or newer: torch.save(torch.load('old.pth'), 'new.pth').", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    /// <summary>Writes a torch-style zip (<c>prefix/data.pkl</c> and records) to a temporary file.</summary>
    private static string WriteZip(string prefix, byte[]? dataPkl, params (string Name, byte[] Data)[] records)
    {
        var path = Path.Combine(Path.GetTempPath(), $"incept-{prefix}-{Guid.NewGuid():N}.pth");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Add(string name, byte[] data)
        {
            using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
            s.Write(data);
        }

        if (dataPkl is not null) Add(prefix + "/data.pkl", dataPkl);
        foreach (var (name, data) in records) Add(name, data);
        Add(prefix + "/version", "3\n"u8.ToArray());
        return path;
    }

    /// <summary>Writes pickle opcodes by hand, as torch.save would for the few shapes the tests need.</summary>
    private sealed class Pickle
    {
        private readonly List<byte> _bytes = [];

        public byte[] Bytes => _bytes.ToArray();

        public Pickle Op(int op)
        {
            _bytes.Add((byte)op);
            return this;
        }

        public Pickle Proto() => Op(0x80).Op(2);

        public Pickle EmptyDict() => Op('}');

        public Pickle Global(string module, string name)
        {
            Op('c');
            _bytes.AddRange(Encoding.UTF8.GetBytes($"{module}\n{name}\n"));
            return this;
        }

        public Pickle Str(string s)
        {
            var utf8 = Encoding.UTF8.GetBytes(s);
            Op('X');
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(len, utf8.Length);
            _bytes.AddRange(len);
            _bytes.AddRange(utf8);
            return this;
        }

        public Pickle Int(long v)
        {
            Op('J');
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(b, checked((int)v));
            _bytes.AddRange(b);
            return this;
        }

        public Pickle Ints(long[] values)
        {
            Op('(');
            foreach (var v in values) Int(v);
            return Op('t');
        }

        /// <summary><c>{key: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}</c>.</summary>
        public static byte[] StateDict(string key, string storageType, string storageKey, long numel, long offset, long[] size, long[] stride) =>
            new Pickle().Proto().EmptyDict().Str(key)
                .Global("torch._utils", "_rebuild_tensor_v2").Op('(')
                .Op('(').Str("storage").Global("torch", storageType).Str(storageKey).Str("cpu").Int(numel).Op('t').Op('Q')
                .Int(offset).Ints(size).Ints(stride).Op(0x89).Global("collections", "OrderedDict").Op(')').Op('R')
                .Op('t').Op('R')
                .Op('s').Op('.').Bytes;
    }
}
