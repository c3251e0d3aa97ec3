namespace Incept.Export;

/// <summary>
/// A model or setting that the ONNX export cannot write exactly: an opset too old for an operator the model
/// needs, a layer without a converter, a pooling whose rounding ONNX cannot express. The message names the
/// problem and the fix.
/// </summary>
public sealed class OnnxExportException : InceptException
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public OnnxExportException(string message) : base(message) { }

    /// <summary>Creates the exception with a user-facing message and the underlying cause.</summary>
    public OnnxExportException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception with a generic message.</summary>
    public OnnxExportException() : base("The model could not be exported to ONNX.") { }
}
