using Incept.Data;

namespace Incept.Weights;

/// <summary>The public pretrained weights Incept knows, with their provenance and preprocessing.</summary>
public static class WeightsRegistry
{
    private static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];
    private static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];
    private static readonly float[] Half = [0.5f, 0.5f, 0.5f];

    private static PreprocessSpec Inception(int size, double crop) => new(size, crop, "bicubic", Half, Half, false, 1.0);

    /// <summary>Every known weight set.</summary>
    public static IReadOnlyList<WeightsSpec> All { get; } =
    [
        new()
        {
            Arch = "googlenet", Tag = "tv_in1k", Source = "torchvision (IMAGENET1K_V1)",
            Url = "https://download.pytorch.org/models/googlenet-1378be20.pth", FileName = "googlenet-1378be20.pth", Sha256 = "1378be20",
            Format = KeyFormat.TorchVision, NumClasses = 1000, HasAux = true, Labels = "imagenet-1k", Top1 = 69.778, License = "BSD-3-Clause",
            Preprocess = new(224, 224.0 / 256, "bilinear", Half, Half, false, 1.0),
            Notes = "torchvision resizes to 256, crops 224, normalises with the ImageNet mean/std and then applies transform_input, which together equal mean = std = 0.5.",
        },
        new()
        {
            Arch = "inception_v3", Tag = "tv_in1k", Source = "torchvision (IMAGENET1K_V1)",
            Url = "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth", FileName = "inception_v3_google-0cc3c7bd.pth", Sha256 = "0cc3c7bd",
            Format = KeyFormat.TorchVision, NumClasses = 1000, HasAux = true, Labels = "imagenet-1k", Top1 = 77.294, License = "Apache-2.0",
            Preprocess = new(299, 299.0 / 342, "bilinear", Half, Half, false, 1.0),
            Notes = "torchvision resizes to 342, crops 299, normalises with the ImageNet mean/std and then applies transform_input, which together equal mean = std = 0.5.",
        },
        new()
        {
            Arch = "inception_v3", Tag = "tf_in1k", Source = "timm (port of TF-slim inception_v3_2016_08_28)",
            Url = "https://huggingface.co/timm/inception_v3.tf_in1k", FileName = "inception_v3.tf_in1k.safetensors",
            Format = KeyFormat.Timm, NumClasses = 1000, Labels = "imagenet-1k", License = "Apache-2.0", Preprocess = Inception(299, 0.875),
        },
        new()
        {
            Arch = "inception_v3", Tag = "tf_adv_in1k", Source = "timm (port of TF adv_inception_v3_2017_08_18)",
            Url = "https://huggingface.co/timm/inception_v3.tf_adv_in1k", FileName = "inception_v3.tf_adv_in1k.safetensors",
            Format = KeyFormat.Timm, NumClasses = 1000, Labels = "imagenet-1k", License = "Apache-2.0", Preprocess = Inception(299, 0.875),
        },
        new()
        {
            Arch = "inception_v3", Tag = "gluon_in1k", Source = "timm (port of GluonCV inceptionv3)",
            Url = "https://huggingface.co/timm/inception_v3.gluon_in1k", FileName = "inception_v3.gluon_in1k.safetensors",
            Format = KeyFormat.Timm, NumClasses = 1000, Labels = "imagenet-1k", License = "Apache-2.0",
            Preprocess = new(299, 0.875, "bicubic", ImageNetMean, ImageNetStd, false, 1.0),
        },
        new()
        {
            Arch = "inception_v4", Tag = "tf_in1k", Source = "timm (port of TF-slim inception_v4_2016_09_09)",
            Url = "https://huggingface.co/timm/inception_v4.tf_in1k", FileName = "inception_v4.tf_in1k.safetensors",
            Format = KeyFormat.Timm, NumClasses = 1000, Labels = "imagenet-1k", License = "Apache-2.0", Preprocess = Inception(299, 0.875),
        },
        new()
        {
            Arch = "inception_resnet_v2", Tag = "tf_in1k", Source = "timm (port of TF-slim inception_resnet_v2_2016_08_30)",
            Url = "https://huggingface.co/timm/inception_resnet_v2.tf_in1k", FileName = "inception_resnet_v2.tf_in1k.safetensors",
            Format = KeyFormat.Timm, NumClasses = 1000, Labels = "imagenet-1k", License = "Apache-2.0", Preprocess = Inception(299, 0.8975),
        },
        new()
        {
            Arch = "inception_resnet_v2", Tag = "tf_ens_adv_in1k", Source = "timm (port of TF ens_adv_inception_resnet_v2_2017_08_18)",
            Url = "https://huggingface.co/timm/inception_resnet_v2.tf_ens_adv_in1k", FileName = "inception_resnet_v2.tf_ens_adv_in1k.safetensors",
            Format = KeyFormat.Timm, NumClasses = 1000, Labels = "imagenet-1k", License = "Apache-2.0", Preprocess = Inception(299, 0.8975),
        },
        new()
        {
            Arch = "inception_resnet_v1", Tag = "vggface2", Source = "facenet-pytorch",
            Url = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt", FileName = "20180402-114759-vggface2.pt",
            Format = KeyFormat.Facenet, NumClasses = 8631, Labels = "vggface2", License = "MIT",
            Preprocess = new(160, 1.0, "bilinear", [127.5f, 127.5f, 127.5f], [128f, 128f, 128f], false, 255.0),
            Notes = "Inputs are faces already cropped to 160×160 (facenet-pytorch's MTCNN); the logits layer classifies the training identities.",
        },
        new()
        {
            Arch = "inception_resnet_v1", Tag = "casia_webface", Source = "facenet-pytorch",
            Url = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180408-102900-casia-webface.pt", FileName = "20180408-102900-casia-webface.pt",
            Format = KeyFormat.Facenet, NumClasses = 10575, Labels = "casia-webface", License = "MIT",
            Preprocess = new(160, 1.0, "bilinear", [127.5f, 127.5f, 127.5f], [128f, 128f, 128f], false, 255.0),
            Notes = "Inputs are faces already cropped to 160×160 (facenet-pytorch's MTCNN); the logits layer classifies the training identities.",
        },
        new()
        {
            Arch = "bn_inception", Tag = "cadene_in1k", Source = "Cadene pretrainedmodels (port of the Caffe BN-Inception)",
            Url = "http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth", FileName = "bn_inception-52deb4733.pth", Sha256 = "52deb4733",
            Format = KeyFormat.Cadene, NumClasses = 1000, Labels = "imagenet-1k", License = "BSD-3-Clause",
            Preprocess = new(224, 224.0 / 256, "bilinear", [104f, 117f, 128f], [1f, 1f, 1f], true, 255.0),
            Notes = "BGR channel order, pixel values in [0, 255], mean (104, 117, 128), no scaling.",
        },
        new()
        {
            Arch = "inception_v4", Tag = "cadene_in1k", Source = "Cadene pretrainedmodels (port of TF-slim, with background class)",
            Url = "http://data.lip6.fr/cadene/pretrainedmodels/inceptionv4-8e4777a0.pth", FileName = "inceptionv4-8e4777a0.pth", Sha256 = "8e4777a0",
            Format = KeyFormat.Cadene, NumClasses = 1001, Labels = "imagenet-1k", License = "BSD-3-Clause", Preprocess = Inception(299, 0.875),
            Notes = "1001 classes, class 0 = background: load with the background row dropped to get ImageNet's 1000.",
        },
        new()
        {
            Arch = "inception_resnet_v2", Tag = "cadene_in1k", Source = "Cadene pretrainedmodels (port of TF-slim, with background class)",
            Url = "http://data.lip6.fr/cadene/pretrainedmodels/inceptionresnetv2-520b38e4.pth", FileName = "inceptionresnetv2-520b38e4.pth", Sha256 = "520b38e4",
            Format = KeyFormat.Cadene, NumClasses = 1001, Labels = "imagenet-1k", License = "BSD-3-Clause", Preprocess = Inception(299, 0.8975),
            Notes = "1001 classes, class 0 = background: load with the background row dropped to get ImageNet's 1000.",
        },
    ];

    /// <summary>The weight set called <c>arch.tag</c>; throws an <see cref="InceptException"/> listing the known ones.</summary>
    public static WeightsSpec Get(string name)
        => All.FirstOrDefault(w => string.Equals(w.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new InceptException($"Unknown weights '{name}'. Known weights: {string.Join(", ", All.Select(w => w.Name))}.");

    /// <summary>The weight set published under <paramref name="fileName"/>, or null.</summary>
    public static WeightsSpec? ByFileName(string fileName)
        => All.FirstOrDefault(w => string.Equals(w.FileName, Path.GetFileName(fileName), StringComparison.Ordinal));
}
