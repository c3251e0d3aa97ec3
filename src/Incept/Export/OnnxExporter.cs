using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Google.Protobuf;
using Incept.Models;
using Incept.Weights;
using Onnx;
using static TorchSharp.torch;

namespace Incept.Export;

/// <summary>
/// Writes a model's inference pass (evaluation mode: running BatchNorm statistics, no dropout, no auxiliary heads)
/// as an ONNX file with the float32 input <c>input</c> (N×C×H×W) and output <c>logits</c> (N×classes; the
/// features for a model without classifier), and metadata that records the model, its classes and its
/// preprocessing.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The graph input's name.</summary>
    public const string InputName = "input";

    /// <summary>The graph output's name.</summary>
    public const string OutputName = "logits";

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> (atomically: a failed export leaves no file).</summary>
    /// <exception cref="OnnxExportException">The model or a setting cannot be exported exactly.</exception>
    /// <exception cref="InputShapeException">The input size does not suit the model.</exception>
    public static OnnxExportResult Export(InceptionModel model, string path, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(path);
        var built = Build(model, options);
        AtomicFile.Write(path, built.WriteTo);
        return new OnnxExportResult(path, new FileInfo(path).Length, options.Opset, built.InputShape, built.OutputShape, built.Model.Graph.Node.Count, built.Parameters);
    }

    /// <summary>
    /// Builds the ONNX model of <paramref name="model"/>: the graph in memory, its initializers' data computed from the
    /// model when <see cref="OnnxBuild.WriteTo"/> writes it (the model must not change in between).
    /// </summary>
    internal static OnnxBuild Build(InceptionModel model, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        if (model is not IOnnxExportable exportable)
            throw new OnnxExportException($"{model.GetName()} has no ONNX exporter. Export a registry model (see 'incept models').");
        int size = options.InputSize ?? options.Preprocess?.InputSize
            ?? throw new OnnxExportException("The export needs an input size: give one (--input-size), or weights whose metadata records their preprocessing.");
        if (!options.DynamicBatch && options.BatchSize < 1)
            throw new OnnxExportException($"The batch size must be at least 1; got {options.BatchSize}. Use --dynamic-batch for a batch size chosen at run time.");
        var graph = new OnnxGraphBuilder(options.Opset, options.FoldBatchNorm);
        CheckRunsAt(model, size);

        graph.Reserve(OutputName);
        var input = graph.Input(InputName, options.DynamicBatch ? OnnxGraphBuilder.SymbolicBatch : options.BatchSize, model.Config.InChannels, size, size);
        OnnxValue output;
        using (no_grad())
        {
            output = exportable.ExportOnnx(graph, input);
        }

        long outputs = model.NumClasses > 0 ? model.NumClasses : model.NumFeatures;
        if (output.Shape.Length != 2 || output.Shape[1] != outputs)
            throw new OnnxExportException($"The exported {model.GetName()} ends in {output.ShapeText} instead of N×{outputs}; its exporter does not match its forward pass.");
        graph.Output(output, OutputName);
        graph.Graph.Name = options.ModelName ?? model.GetName();

        var proto = new ModelProto
        {
            IrVersion = IrVersion(options.Opset),
            ProducerName = "Incept",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "",
            Graph = graph.Graph,
            DocString = $"{options.ModelName ?? model.GetName()} in evaluation mode{(options.FoldBatchNorm ? ", BatchNorm folded into the convolutions" : "")}. Input '{InputName}': float32 N×C×H×W, preprocessed as the metadata's incept.preprocess says. Output '{OutputName}'.",
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        foreach (var (key, value) in Metadata(model, options, size))
            proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return new OnnxBuild(proto, input.Shape, output.Shape, graph.ParameterCount) { Graph = graph };
    }

    /// <summary>The ONNX IR version that goes with <paramref name="opset"/>.</summary>
    internal static long IrVersion(int opset) => opset switch
    {
        <= 8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        <= 22 => 10,
        _ => 11,
    };

    /// <summary>
    /// Runs one image of the export size through the model, so that a size it cannot take is refused with the model's
    /// own explanation before anything is written.
    /// </summary>
    private static void CheckRunsAt(InceptionModel model, int size)
    {
        bool training = model.training;
        var device = model.parameters().FirstOrDefault()?.device ?? CPU;
        try
        {
            model.eval();
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            model.call(zeros([1, model.Config.InChannels, size, size], device: device));
        }
        finally
        {
            if (training) model.train();
        }
    }

    private static Dictionary<string, string> Metadata(InceptionModel model, OnnxExportOptions options, int size)
    {
        var metadata = new Dictionary<string, string>
        {
            [CheckpointLoader.MetadataKeys.Version] = "1",
            [CheckpointLoader.MetadataKeys.NumClasses] = model.NumClasses.ToString(CultureInfo.InvariantCulture),
            [CheckpointLoader.MetadataKeys.InChannels] = model.Config.InChannels.ToString(CultureInfo.InvariantCulture),
            [CheckpointLoader.MetadataKeys.Width] = model.Config.Width.ToString("R", CultureInfo.InvariantCulture),
            [CheckpointLoader.MetadataKeys.SmallInput] = model.Config.SmallInput ? "true" : "false",
            [OnnxModelInfo.Keys.FoldBatchNorm] = options.FoldBatchNorm ? "true" : "false",
        };
        if (options.ModelName is not null) metadata[CheckpointLoader.MetadataKeys.Model] = options.ModelName;
        if (options.Preprocess is not null)
            metadata[CheckpointLoader.MetadataKeys.Preprocess] = JsonSerializer.Serialize(options.Preprocess with { InputSize = size });
        if (options.ClassNames is not null) metadata[CheckpointLoader.MetadataKeys.ClassNames] = JsonSerializer.Serialize(options.ClassNames);
        if (options.Labels is not null) metadata[OnnxModelInfo.Keys.Labels] = options.Labels;
        if (options.Weights is not null) metadata[OnnxModelInfo.Keys.Weights] = options.Weights;
        return metadata;
    }
}

/// <summary>
/// An exported model before it is written: <see cref="Model"/> has the graph, whose initializers carry names and
/// shapes only; <see cref="WriteTo"/> writes the complete model with their data.
/// </summary>
internal sealed record OnnxBuild(ModelProto Model, long[] InputShape, long[] OutputShape, long Parameters)
{
    /// <summary>The builder that made <see cref="Model"/>'s graph and computes its initializers.</summary>
    public required OnnxGraphBuilder Graph { get; init; }

    /// <summary>Writes the model with its initializers' data to <paramref name="output"/>.</summary>
    public void WriteTo(Stream output) => Graph.WriteModel(Model, output);
}
