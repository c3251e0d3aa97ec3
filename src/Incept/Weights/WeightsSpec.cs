using Incept.Data;

namespace Incept.Weights;

/// <summary>Naming scheme of a checkpoint's keys.</summary>
public enum KeyFormat
{
    /// <summary>Detect from the keys.</summary>
    Auto,

    /// <summary>torchvision (<c>fc</c>, <c>aux1</c>, <c>AuxLogits</c>): Incept's own names for GoogLeNet and Inception-v3.</summary>
    TorchVision,

    /// <summary>timm (<c>features.N</c>, <c>classif</c>, <c>last_linear</c>): Incept's own names for Inception-v3/v4 and IR-v2.</summary>
    Timm,

    /// <summary>facenet-pytorch: Incept's own names for Inception-ResNet-v1.</summary>
    Facenet,

    /// <summary>Cadene's pretrainedmodels: flat BN-Inception keys, <c>last_linear</c> for the classifier everywhere.</summary>
    Cadene,

    /// <summary>A file written by Incept (safetensors with Incept metadata).</summary>
    Incept,
}

/// <summary>
/// A public set of pretrained weights: where it comes from, what it holds and how inputs must be prepared.
/// Incept never downloads them; users fetch <see cref="Url"/> themselves.
/// </summary>
public sealed record WeightsSpec
{
    /// <summary>Registry name of the architecture.</summary>
    public required string Arch { get; init; }

    /// <summary>Tag such as <c>tv_in1k</c>; the full name is <c>arch.tag</c>.</summary>
    public required string Tag { get; init; }

    /// <summary>The full name, <c>arch.tag</c>.</summary>
    public string Name => $"{Arch}.{Tag}";

    /// <summary>Who published the weights (torchvision, timm, facenet-pytorch, Cadene).</summary>
    public required string Source { get; init; }

    /// <summary>Where to download them.</summary>
    public required string Url { get; init; }

    /// <summary>File name as published; loading a file with this name checks its hash.</summary>
    public required string FileName { get; init; }

    /// <summary>
    /// The published SHA-256, or its leading hex digits as embedded in the file name (torch.hub's
    /// convention, e.g. <c>googlenet-1378be20.pth</c>); null when unpublished.
    /// </summary>
    public string? Sha256 { get; init; }

    /// <summary>Key naming scheme of the file.</summary>
    public required KeyFormat Format { get; init; }

    /// <summary>Classes of the file's classifier: 1000, 1001 for TF ports with a background class first, or a face-identity count.</summary>
    public required int NumClasses { get; init; }

    /// <summary>Whether the file carries auxiliary-head weights.</summary>
    public bool HasAux { get; init; }

    /// <summary>How images must be prepared.</summary>
    public required PreprocessSpec Preprocess { get; init; }

    /// <summary>Label set: <c>imagenet-1k</c>, <c>vggface2</c> or <c>casia-webface</c>.</summary>
    public required string Labels { get; init; }

    /// <summary>Published ImageNet top-1 accuracy (percent), where there is one.</summary>
    public double? Top1 { get; init; }

    /// <summary>Licence of the weights.</summary>
    public required string License { get; init; }

    /// <summary>Anything a user must know (such as a preprocessing identity).</summary>
    public string? Notes { get; init; }
}
