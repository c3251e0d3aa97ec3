using Incept.Data;

namespace Incept.Export;

/// <summary>How <see cref="OnnxExporter"/> writes a model.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The opset written when none is asked for.</summary>
    public const int DefaultOpset = 17;

    /// <summary>The ONNX opset of the file (7 to 23; ceil-mode pools need 10).</summary>
    public int Opset { get; init; } = DefaultOpset;

    /// <summary>Fold every BatchNorm into the convolution or linear layer before it.</summary>
    public bool FoldBatchNorm { get; init; }

    /// <summary>Leave the batch dimension symbolic (<c>N</c>) instead of fixing it to <see cref="BatchSize"/>.</summary>
    public bool DynamicBatch { get; init; }

    /// <summary>The fixed batch size when <see cref="DynamicBatch"/> is off.</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>Side of the square input in pixels; null takes <see cref="Preprocess"/>'s input size.</summary>
    public int? InputSize { get; init; }

    /// <summary>The registry name of the model (<c>inception_v3</c>), recorded in the file's metadata.</summary>
    public string? ModelName { get; init; }

    /// <summary>The preprocessing the weights expect, recorded so that the file alone says how to feed it.</summary>
    public PreprocessSpec? Preprocess { get; init; }

    /// <summary>The weights' class names, recorded when they have their own.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>The name of a published label set (<c>imagenet-1k</c>) the classes follow, when known.</summary>
    public string? Labels { get; init; }

    /// <summary>The published weights the file was made from (<c>inception_v3.tv_in1k</c>), when known.</summary>
    public string? Weights { get; init; }
}

/// <summary>What <see cref="OnnxExporter.Export(Incept.Models.InceptionModel, string, OnnxExportOptions)"/> wrote.</summary>
/// <param name="Path">The file.</param>
/// <param name="Bytes">Its size.</param>
/// <param name="Opset">The opset it declares.</param>
/// <param name="InputShape">The input's shape; -1 stands for a symbolic batch dimension.</param>
/// <param name="OutputShape">The output's shape; -1 stands for a symbolic batch dimension.</param>
/// <param name="Nodes">Operators in the graph.</param>
/// <param name="Parameters">Weights stored in the file (fewer with folded BatchNorms).</param>
public sealed record OnnxExportResult(string Path, long Bytes, int Opset, IReadOnlyList<long> InputShape, IReadOnlyList<long> OutputShape, int Nodes, long Parameters);
