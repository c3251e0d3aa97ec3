namespace Incept.Export;

/// <summary>
/// A model or block that writes its inference-mode forward pass into an ONNX graph. Each implementation sits
/// next to the <c>forward</c> it mirrors, so that a change to one is seen beside the other; the built-in
/// TorchSharp layers (convolutions, pools, linear layers, containers) are converted by
/// <see cref="OnnxGraphBuilder.Call"/> itself.
/// </summary>
internal interface IOnnxExportable
{
    /// <summary>
    /// Adds the nodes that compute this module's evaluation-mode output from <paramref name="input"/> and returns
    /// that output. Names given to <see cref="OnnxGraphBuilder"/> are relative to the module's own scope.
    /// </summary>
    OnnxValue ExportOnnx(OnnxGraphBuilder graph, OnnxValue input);
}

/// <summary>
/// A tensor in the graph being built: its name and its shape, whose first dimension is the batch
/// (<see cref="OnnxGraphBuilder.SymbolicBatch"/> when the batch size is left open).
/// </summary>
internal readonly record struct OnnxValue(string Name, long[] Shape)
{
    /// <summary>The shape as text, such as <c>N×192×28×28</c>.</summary>
    public string ShapeText => string.Join("×", Shape.Select(d => d == OnnxGraphBuilder.SymbolicBatch ? "N" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)));
}
