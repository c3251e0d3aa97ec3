using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Incept.Data;
using Incept.Models;
using Incept.Registry;
using Incept.Weights.KeyMaps;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Weights;

/// <summary>How to load a checkpoint into a model.</summary>
public sealed record CheckpointOptions
{
    /// <summary>Registry name (<c>arch</c> or <c>arch.tag</c>); null to take it from the file's metadata or published name.</summary>
    public string? Model { get; init; }

    /// <summary>The file's key scheme; <see cref="KeyFormat.Auto"/> detects it.</summary>
    public KeyFormat From { get; init; } = KeyFormat.Auto;

    /// <summary>Fail on any missing key, unexpected key or shape mismatch.</summary>
    public bool Strict { get; init; } = true;

    /// <summary>Load everything but the classifier (for a new class count).</summary>
    public bool SkipClassifier { get; init; }

    /// <summary>Classes of the new classifier when <see cref="SkipClassifier"/> is set (default: the file's).</summary>
    public int? NumClasses { get; init; }

    /// <summary>For 1001-class TF ports: drop class 0 (background) to get the 1000 ImageNet classes.</summary>
    public bool DropBackground { get; init; }

    /// <summary>Check the SHA-256 of files whose name matches a published weight set.</summary>
    public bool VerifyHash { get; init; } = true;

    /// <summary>Device to move the model to after loading (CPU by default).</summary>
    public Device? Device { get; init; }
}

/// <summary>A model built from a checkpoint, with what is known about its weights.</summary>
public sealed class LoadedModel : IDisposable
{
    internal LoadedModel(InceptionModel model, ModelSpec spec, WeightsSpec? weights, PreprocessSpec? preprocess, IReadOnlyList<string>? classNames, LoadReport report)
    {
        Model = model;
        Spec = spec;
        Weights = weights;
        Preprocess = preprocess;
        ClassNames = classNames;
        Report = report;
    }

    /// <summary>The model, in evaluation mode.</summary>
    public InceptionModel Model { get; }

    /// <summary>Its architecture.</summary>
    public ModelSpec Spec { get; }

    /// <summary>The published weight set the file was recognised as, or null.</summary>
    public WeightsSpec? Weights { get; }

    /// <summary>How inputs must be prepared, when the file or its weight set says.</summary>
    public PreprocessSpec? Preprocess { get; }

    /// <summary>Class names stored with the weights, or null.</summary>
    public IReadOnlyList<string>? ClassNames { get; }

    /// <summary>What the load copied and left alone.</summary>
    public LoadReport Report { get; }

    /// <summary>Disposes the model.</summary>
    public void Dispose() => Model.Dispose();
}

/// <summary>Builds models from checkpoints of torchvision, timm, facenet-pytorch, Cadene and Incept.</summary>
public static class CheckpointLoader
{
    /// <summary>Metadata keys Incept writes into the safetensors files it saves.</summary>
    public static class MetadataKeys
    {
        /// <summary>Format version of Incept's metadata.</summary>
        public const string Version = "incept.version";

        /// <summary>Registry name of the architecture.</summary>
        public const string Model = "incept.model";

        /// <summary>Classes of the classifier.</summary>
        public const string NumClasses = "incept.num_classes";

        /// <summary>Input channels.</summary>
        public const string InChannels = "incept.in_channels";

        /// <summary>"true" when the file holds aux-head weights.</summary>
        public const string Aux = "incept.aux";

        /// <summary>The width multiplier (<see cref="ModelConfig.Width"/>), invariant culture; absent means 1.</summary>
        public const string Width = "incept.width";

        /// <summary>"true" when the model has the small-input stem (<see cref="ModelConfig.SmallInput"/>); absent means false.</summary>
        public const string SmallInput = "incept.small_input";

        /// <summary>The preprocessing, as JSON.</summary>
        public const string Preprocess = "incept.preprocess";

        /// <summary>Class names, as a JSON array.</summary>
        public const string ClassNames = "incept.class_names";
    }

    /// <summary>Reads <paramref name="path"/> and builds the model it holds.</summary>
    public static LoadedModel Load(string path, CheckpointOptions? options = null)
    {
        options ??= new CheckpointOptions();
        // A file published under a known name is checked before anything of it is parsed.
        if (options.VerifyHash && File.Exists(path) && WeightsRegistry.ByFileName(path) is { } published) VerifyHash(path, published);
        using var file = CheckpointFile.Read(path);
        return Load(file, options with { VerifyHash = false });
    }

    /// <summary>Builds the model held by an already read checkpoint.</summary>
    public static LoadedModel Load(CheckpointFile file, CheckpointOptions options)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(options);
        var published = WeightsRegistry.ByFileName(file.Path);
        string? name = options.Model ?? file.Metadata.GetValueOrDefault(MetadataKeys.Model) ?? published?.Arch
            ?? throw new InceptException($"'{file.Path}' does not say which model it holds. Name it with --model (see 'incept models').");
        if (name.Contains('.', StringComparison.Ordinal) && published is null)
            published = WeightsRegistry.All.FirstOrDefault(w => string.Equals(w.Name, name, StringComparison.OrdinalIgnoreCase));
        var spec = ModelRegistry.Get(name);
        if (published is not null && options.VerifyHash) VerifyHash(file.Path, published);

        var format = options.From != KeyFormat.Auto ? options.From
            : file.Metadata.ContainsKey(MetadataKeys.Model) ? KeyFormat.Incept
            : KeyMap.Detect(spec.Name, file.Tensors.Keys);
        var tensors = KeyMap.ToIncept(spec.Name, file.Tensors, format);

        string classifierWeight = spec.Classifier + ".weight";
        int fileClasses = tensors.TryGetValue(classifierWeight, out var head) ? (int)head.shape[0] : 0;
        if (file.Metadata.TryGetValue(MetadataKeys.NumClasses, out var metaClasses)) fileClasses = int.Parse(metaClasses, CultureInfo.InvariantCulture);
        if (options.DropBackground)
        {
            if (fileClasses != 1001)
                throw new InceptException($"'{file.Path}' has {fileClasses} classes, not TensorFlow's 1001 with a background class; load it without dropping the background class.");
            tensors = DropBackgroundRow(spec, tensors);
            fileClasses = 1000;
        }

        bool aux = spec.AuxModules.Any(p => tensors.Keys.Any(k => k.StartsWith(p + ".", StringComparison.Ordinal)));
        int inChannels = tensors.TryGetValue(spec.FirstConv + ".weight", out var first) ? (int)first.shape[1] : 3;
        int classes = options.SkipClassifier ? options.NumClasses ?? fileClasses : fileClasses;
        if (aux && classes == 0) aux = false;
        var config = new ModelConfig
        {
            NumClasses = classes, AuxLogits = aux, InChannels = inChannels,
            Width = file.Metadata.TryGetValue(MetadataKeys.Width, out var width) ? ParseMetadata(file, MetadataKeys.Width, width, double.Parse) : 1.0,
            SmallInput = file.Metadata.TryGetValue(MetadataKeys.SmallInput, out var small) && ParseMetadata(file, MetadataKeys.SmallInput, small, (v, _) => bool.Parse(v)),
        };

        var model = ModelFactory.Create(spec, config);
        try
        {
            var skip = new List<string>();
            if (options.SkipClassifier)
            {
                skip.Add(spec.Classifier + ".");
                skip.AddRange(spec.AuxModules.Select(p => p + "."));
            }

            var report = StateDictLoader.Load(model, tensors, new LoadOptions { Strict = options.Strict, Skip = skip, MayBeMissing = skip });
            model.eval();
            if (options.Device is { } device && device.type != DeviceType.CPU) model.to(device);
            var preprocess = file.Metadata.TryGetValue(MetadataKeys.Preprocess, out var pre)
                ? JsonSerializer.Deserialize<PreprocessSpec>(pre)
                : published?.Preprocess;
            var classNames = file.Metadata.TryGetValue(MetadataKeys.ClassNames, out var names) && !options.SkipClassifier
                ? JsonSerializer.Deserialize<string[]>(names)
                : null;
            return new LoadedModel(model, spec, published, preprocess, classNames, report);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Saves <paramref name="model"/>'s state dict as safetensors with the metadata that lets
    /// <see cref="Load(string, CheckpointOptions)"/> rebuild it from the file alone. Written atomically.
    /// </summary>
    public static void Save(string path, InceptionModel model, ModelSpec spec, PreprocessSpec? preprocess = null, IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(spec);
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            [MetadataKeys.Version] = "1",
            [MetadataKeys.Model] = spec.Name,
            [MetadataKeys.NumClasses] = model.NumClasses.ToString(CultureInfo.InvariantCulture),
            [MetadataKeys.InChannels] = model.Config.InChannels.ToString(CultureInfo.InvariantCulture),
            [MetadataKeys.Aux] = model.HasAux ? "true" : "false",
            [MetadataKeys.Width] = model.Config.Width.ToString("R", CultureInfo.InvariantCulture),
            [MetadataKeys.SmallInput] = model.Config.SmallInput ? "true" : "false",
        };
        if (preprocess is not null) metadata[MetadataKeys.Preprocess] = JsonSerializer.Serialize(preprocess);
        if (classNames is not null) metadata[MetadataKeys.ClassNames] = JsonSerializer.Serialize(classNames);
        SafeTensors.Write(path, model.state_dict(), metadata);
    }

    private static T ParseMetadata<T>(CheckpointFile file, string key, string value, Func<string, IFormatProvider, T> parse)
    {
        try
        {
            return parse(value, CultureInfo.InvariantCulture);
        }
        catch (FormatException e)
        {
            throw new CheckpointFormatException($"'{file.Path}' has an unreadable {key} value '{value}'. Fix or remove the metadata entry.", e);
        }
    }

    private static Dictionary<string, Tensor> DropBackgroundRow(ModelSpec spec, Dictionary<string, Tensor> tensors)
    {
        var heads = new[] { spec.Classifier }.Concat(spec.AuxModules).ToList();
        return tensors.ToDictionary(kv => kv.Key, kv =>
            heads.Any(h => kv.Key.StartsWith(h + ".", StringComparison.Ordinal)) && kv.Value.dim() >= 1 && kv.Value.shape[0] == 1001
                ? kv.Value[TensorIndex.Slice(1)].contiguous()
                : kv.Value);
    }

    private static void VerifyHash(string path, WeightsSpec weights)
    {
        if (weights.Sha256 is not { Length: > 0 } expected) return;
        string actual;
        using (var stream = File.OpenRead(path)) actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        if (!actual.StartsWith(expected, StringComparison.OrdinalIgnoreCase))
            throw new CheckpointFormatException($"'{path}' has SHA-256 {actual[..12]}…, but the published {weights.Name} file's starts with {expected}: the download is incomplete or a different file. Download it again from {weights.Url}.");
    }
}
