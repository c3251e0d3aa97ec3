using static TorchSharp.torch;

namespace Incept.Inference;

/// <summary>
/// Something that turns a batch of preprocessed images into logits: the TorchSharp model itself, a
/// faster inference copy of it, or an exported ONNX file run by ONNX Runtime.
/// </summary>
public interface IInferenceEngine : IDisposable
{
    /// <summary>A short name for reports, such as <c>torch</c> or <c>onnx</c>.</summary>
    string Name { get; }

    /// <summary>
    /// Runs a float32 N×C×H×W batch (on the CPU, already preprocessed) and returns the float32 N×classes
    /// logits on the CPU. The caller owns both tensors.
    /// </summary>
    Tensor Run(Tensor input);
}
