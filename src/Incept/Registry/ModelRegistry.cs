using Incept.Models;
using Incept.Models.BNInception;
using Incept.Models.GoogLeNet;
using Incept.Models.InceptionResNetV1;

namespace Incept.Registry;

/// <summary>The one explicit table of every architecture Incept provides.</summary>
public static class ModelRegistry
{
    private const string PaperV1 = "Going Deeper with Convolutions (Szegedy et al., 2014)";
    private const string PaperBn = "Batch Normalization (Ioffe & Szegedy, 2015)";
    private const string PaperV3 = "Rethinking the Inception Architecture for Computer Vision (Szegedy et al., 2015)";
    private const string PaperV4 = "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning (Szegedy et al., 2016)";

    /// <summary>Every registered model, in the order of the papers.</summary>
    public static IReadOnlyList<ModelSpec> All { get; } =
    [
        new()
        {
            Name = "googlenet", Family = "GoogLeNet", Paper = PaperV1, Reference = "torchvision googlenet",
            InputSize = 224, MinInputSize = 15, Params = 6_624_904, ParamsWithAux = 13_004_888, Macs = 1_498_000_000,
            FirstConv = "conv1.conv", Classifier = "fc",
            Build = c => new GoogLeNet(c, GoogLeNetArch.TorchVision), Initialize = GoogLeNetInitializer.Apply,
        },
        new()
        {
            Name = "googlenet_paper", Family = "GoogLeNet", Paper = PaperV1, Reference = "the paper's Table 1 (Caffe bvlc_googlenet)",
            InputSize = 224, MinInputSize = 29, Params = 6_998_552, ParamsWithAux = 13_378_280, Macs = 1_583_000_000,
            FirstConv = "conv1.conv", Classifier = "fc",
            Build = c => new GoogLeNet(c, GoogLeNetArch.Paper), Initialize = GoogLeNetInitializer.Apply,
        },
        new()
        {
            // Cadene's ImageNet weights (bn_inception-239d2248.pth) expect BGR input in [0, 255], mean (104, 117, 128), std 1.
            Name = "bn_inception", Family = "BN-Inception", Paper = PaperBn, Reference = "Cadene pretrainedmodels bninception",
            InputSize = 224, MinInputSize = 31, Params = 11_295_240, Macs = 2_033_000_000,
            FirstConv = "conv1_7x7_s2", Classifier = "last_linear",
            Build = c => new BNInception(c), Initialize = null,
        },
        new()
        {
            // facenet-pytorch's VGGFace2 / CASIA-WebFace weights: 160×160 RGB faces, (x − 127.5) / 128.
            Name = "inception_resnet_v1", Family = "Inception-ResNet-v1", Paper = PaperV4, Reference = "facenet-pytorch InceptionResnetV1",
            InputSize = 160, MinInputSize = 75, Params = 23_995_624, Macs = 1_418_000_000,
            FirstConv = "conv2d_1a.conv", Classifier = "logits",
            Build = c => new InceptionResNetV1(c), Initialize = null,
        },
        // REGISTRY-ENTRIES: each family adds its entries above this line.
    ];

    /// <summary>The names of every registered model.</summary>
    public static IEnumerable<string> Names => All.Select(s => s.Name);

    /// <summary>The spec called <paramref name="name"/>; throws <see cref="UnknownModelException"/> listing the known names.</summary>
    public static ModelSpec Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var arch = name.Split('.', 2)[0];
        return All.FirstOrDefault(s => string.Equals(s.Name, arch, StringComparison.OrdinalIgnoreCase))
            ?? throw new UnknownModelException(name, Names);
    }
}
