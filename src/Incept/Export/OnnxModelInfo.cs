using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Incept.Data;
using Incept.Weights;
using Onnx;

namespace Incept.Export;

/// <summary>
/// What an ONNX file made by <see cref="OnnxExporter"/> says about itself: its input and output, and the metadata
/// that lets a program feed it images without the original weights (model, classes, preprocessing).
/// </summary>
public sealed record OnnxModelInfo
{
    /// <summary>The metadata keys the exporter writes beyond the checkpoint's own (<see cref="CheckpointLoader.MetadataKeys"/>).</summary>
    public static class Keys
    {
        /// <summary>Whether the BatchNorms were folded into the convolutions (<c>true</c>/<c>false</c>).</summary>
        public const string FoldBatchNorm = "incept.fold_bn";

        /// <summary>The published label set the classes follow (<c>imagenet-1k</c>).</summary>
        public const string Labels = "incept.labels";

        /// <summary>The published weights the file was made from (<c>inception_v3.tv_in1k</c>).</summary>
        public const string Weights = "incept.weights";
    }

    /// <summary>The file.</summary>
    public required string Path { get; init; }

    /// <summary>The graph input's name.</summary>
    public required string InputName { get; init; }

    /// <summary>The graph output's name.</summary>
    public required string OutputName { get; init; }

    /// <summary>The fixed batch size, or null when the batch dimension is symbolic.</summary>
    public int? BatchSize { get; init; }

    /// <summary>Channels of the input image.</summary>
    public required int InChannels { get; init; }

    /// <summary>Height of the input in pixels.</summary>
    public required int Height { get; init; }

    /// <summary>Width of the input in pixels.</summary>
    public required int Width { get; init; }

    /// <summary>Values per image in the output: the classes, or the features of a model without classifier.</summary>
    public required int Outputs { get; init; }

    /// <summary>The registry model the file was exported from, when recorded.</summary>
    public string? Model { get; init; }

    /// <summary>Classes of the classifier (0 for a model that outputs features).</summary>
    public int NumClasses { get; init; }

    /// <summary>The preprocessing the weights expect, when recorded.</summary>
    public PreprocessSpec? Preprocess { get; init; }

    /// <summary>The weights' own class names, when recorded.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>The published label set the classes follow, when recorded.</summary>
    public string? Labels { get; init; }

    /// <summary>The published weights the file was made from, when recorded.</summary>
    public string? Weights { get; init; }

    /// <summary>Whether the BatchNorms were folded into the convolutions.</summary>
    public bool FoldBatchNorm { get; init; }

    /// <summary>Every metadata entry of the file.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>Reads the description of the ONNX file at <paramref name="path"/> without running it.</summary>
    /// <exception cref="InceptException">The file is missing or not an ONNX image classifier.</exception>
    public static OnnxModelInfo Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        CheckExists(path);
        ModelProto model;
        try
        {
            using var stream = File.OpenRead(path);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw NotAModel(path, e.Message, e);
        }

        if (model.Graph is not { } graph || graph.Input.Count == 0 || graph.Output.Count == 0)
            throw NotAModel(path, "it has no graph with an input and an output");
        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var input = graph.Input.FirstOrDefault(i => !initializers.Contains(i.Name)) ?? graph.Input[0];
        return From(path, model.MetadataProps.ToDictionary(e => e.Key, e => e.Value), input.Name, Dims(input), graph.Output[0].Name, Dims(graph.Output[0]));
    }

    /// <summary>Builds the description from the pieces ONNX Runtime or the protobuf reader found; a symbolic dimension is null.</summary>
    internal static OnnxModelInfo From(string path, IReadOnlyDictionary<string, string> metadata, string inputName, long?[] inputShape,
        string outputName, long?[] outputShape)
    {
        if (inputShape.Length != 4 || inputShape.Skip(1).Any(d => d is null or < 1))
            throw NotAModel(path, $"its input '{inputName}' is not an image batch of fixed size N×C×H×W ({Text(inputShape)})");
        if (outputShape.Length != 2 || outputShape[1] is null)
            throw NotAModel(path, $"its output '{outputName}' is not N×classes ({Text(outputShape)})");
        int outputs = checked((int)outputShape[1]!.Value);
        var preprocess = Json<PreprocessSpec>(path, metadata, CheckpointLoader.MetadataKeys.Preprocess);
        return new OnnxModelInfo
        {
            Path = path, InputName = inputName, OutputName = outputName,
            BatchSize = inputShape[0] is { } n and > 0 ? checked((int)n) : null,
            InChannels = checked((int)inputShape[1]!.Value), Height = checked((int)inputShape[2]!.Value), Width = checked((int)inputShape[3]!.Value),
            Outputs = outputs,
            Model = metadata.GetValueOrDefault(CheckpointLoader.MetadataKeys.Model),
            NumClasses = metadata.TryGetValue(CheckpointLoader.MetadataKeys.NumClasses, out var classes)
                && int.TryParse(classes, NumberStyles.Integer, CultureInfo.InvariantCulture, out var c) ? c : outputs,
            Preprocess = preprocess,
            ClassNames = Json<string[]>(path, metadata, CheckpointLoader.MetadataKeys.ClassNames),
            Labels = metadata.GetValueOrDefault(Keys.Labels),
            Weights = metadata.GetValueOrDefault(Keys.Weights),
            FoldBatchNorm = metadata.GetValueOrDefault(Keys.FoldBatchNorm) == "true",
            Metadata = metadata,
        };
    }

    /// <summary>Throws the one message for a path that does not exist.</summary>
    internal static void CheckExists(string path)
    {
        if (!File.Exists(path))
            throw new InceptException($"The ONNX file '{path}' does not exist. Check the path, or write one with 'incept export'.");
    }

    /// <summary>The one message for a file that is not an ONNX model Incept can run.</summary>
    internal static InceptException NotAModel(string path, string detail, Exception? inner = null)
    {
        var message = $"'{path}' is not an ONNX image classifier Incept can run: {FirstLine(detail)}. Export the weights again with 'incept export'.";
        return inner is null ? new InceptException(message) : new InceptException(message, inner);
    }

    private static string FirstLine(string text)
    {
        var line = text.Split('\n', 2)[0].Trim().TrimEnd('.');
        return line.Length > 300 ? line[..300] + "…" : line;
    }

    private static long?[] Dims(ValueInfoProto value)
        => value.Type?.TensorType?.Shape is { } shape
            ? [.. shape.Dim.Select(d => d.HasDimValue ? d.DimValue : (long?)null)]
            : [];

    private static string Text(long?[] shape) => shape.Length == 0 ? "no shape" : string.Join("×", shape.Select(d => d?.ToString(CultureInfo.InvariantCulture) ?? "?"));

    private static T? Json<T>(string path, IReadOnlyDictionary<string, string> metadata, string key) where T : class
    {
        if (!metadata.TryGetValue(key, out var text)) return null;
        try
        {
            return JsonSerializer.Deserialize<T>(text);
        }
        catch (JsonException e)
        {
            throw new InceptException($"'{path}' has an unreadable {key} metadata entry ({e.Message}). Export the weights again with 'incept export'.", e);
        }
    }
}
