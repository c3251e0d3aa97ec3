using Incept.Models;
using Incept.Models.BNInception;
using Incept.Models.GoogLeNet;
using Incept.Models.InceptionV3;
using Incept.Models.InceptionResNetV2;
using Incept.Models.InceptionResNetV1;
using Incept.Models.InceptionV4;

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
            InputSize = 224, MinInputSize = 15, Params = 6_624_904, ParamsWithAux = 13_004_888, Macs = 1_498_376_192,
            FirstConv = "conv1.conv", Classifier = "fc", AuxModules = ["aux1", "aux2"],
            Build = c => new GoogLeNet(c, GoogLeNetArch.TorchVision), Initialize = GoogLeNetInitializer.Apply,
        },
        new()
        {
            Name = "googlenet_paper", Family = "GoogLeNet", Paper = PaperV1, Reference = "the paper's Table 1 (Caffe bvlc_googlenet)",
            InputSize = 224, MinInputSize = 31, Params = 6_998_552, ParamsWithAux = 13_378_280, Macs = 1_582_671_872,
            FirstConv = "conv1.conv", Classifier = "fc", AuxModules = ["aux1", "aux2"],
            Build = c => new GoogLeNet(c, GoogLeNetArch.Paper), Initialize = GoogLeNetInitializer.Apply,
        },
        new()
        {
            // Cadene's ImageNet weights (bn_inception-239d2248.pth) expect BGR input in [0, 255], mean (104, 117, 128), std 1.
            Name = "bn_inception", Family = "BN-Inception", Paper = PaperBn, Reference = "Cadene pretrainedmodels bninception",
            InputSize = 224, MinInputSize = 31, Params = 11_295_240, Macs = 2_032_600_064,
            FirstConv = "conv1_7x7_s2", Classifier = "last_linear",
            Build = c => new BNInception(c), Initialize = null,
        },
        new()
        {
            Name = "inception_v3", Family = "Inception-v3", Paper = PaperV3, Reference = "torchvision inception_v3 (= timm inception_v3)",
            InputSize = 299, MinInputSize = 75, Params = 23_834_568, ParamsWithAux = 27_161_264, Macs = 5_713_216_096,
            FirstConv = "Conv2d_1a_3x3.conv", Classifier = "fc", AuxModules = ["AuxLogits"],
            Build = c => new InceptionV3(c), Initialize = InceptionV3Initializer.Apply,
        },
        new()
        {
            Name = "inception_v4", Family = "Inception-v4", Paper = PaperV4, Reference = "timm inception_v4",
            InputSize = 299, MinInputSize = 75, Params = 42_679_816, Macs = 12_253_974_624,
            FirstConv = "features.0.conv", Classifier = "last_linear",
            Build = c => new InceptionV4(c),
        },
        new()
        {
            // facenet-pytorch's VGGFace2 / CASIA-WebFace weights: 160×160 RGB faces, (x − 127.5) / 128.
            Name = "inception_resnet_v1", Family = "Inception-ResNet-v1", Paper = PaperV4, Reference = "facenet-pytorch InceptionResnetV1",
            InputSize = 160, MinInputSize = 75, Params = 23_995_624, Macs = 1_418_174_304,
            FirstConv = "conv2d_1a.conv", Classifier = "logits",
            Build = c => new InceptionResNetV1(c), Initialize = null,
        },
        new()
        {
            Name = "inception_resnet_v2", Family = "Inception-ResNet-v2", Paper = PaperV4, Reference = "timm inception_resnet_v2",
            InputSize = 299, MinInputSize = 75, Params = 55_843_464, Macs = 13_155_794_016,
            FirstConv = "conv2d_1a.conv", Classifier = "classif",
            Build = c => new InceptionResNetV2(c),
        },
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
