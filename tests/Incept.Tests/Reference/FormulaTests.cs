using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Incept.Tests.Reference;

public class FormulaTests
{
    public static TheoryData<string> Folders() =>
    [
        "torchvision_googlenet", "torchvision_inception_v3", "timm_inception_v4", "timm_inception_resnet_v2",
        "facenet_inception_resnet_v1", "cadene_bninception",
    ];

    [Theory]
    [MemberData(nameof(Folders))]
    public void Formula_tensors_match_the_published_digests(string folder)
    {
        var fixture = ReferenceFixture.Open(folder);
        var shapes = fixture.Keys.ToDictionary(k => k.Key, k => k.Shape);
        var rows = File.ReadAllLines(Path.Combine(fixture.Dir, "formula_sha256.tsv")).Skip(1).Select(l => l.Split('\t')).ToList();
        Assert.NotEmpty(rows);
        foreach (var r in rows)
        {
            var values = Formula.Values(r[0], shapes[r[0]], r[1]);
            Assert.Equal(float.Parse(r[2], CultureInfo.InvariantCulture), values[0]);
            var digest = Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(values.AsSpan())));
            Assert.True(r[3] == digest, $"{folder} {r[0]}: digest {digest} differs from {r[3]}");
        }
    }

    [Fact]
    public void Worked_values_of_the_readme_are_reproduced()
    {
        Assert.Equal(2140423588u, Formula.Fnv1a32("conv1.conv.weight"));
        Assert.Equal(0xba2e1d5cu, BitConverter.SingleToUInt32Bits(Formula.Values("conv1.conv.weight", [64, 3, 7, 7], "he_uniform")[0]));
        Assert.Equal(0x3f871a02u, BitConverter.SingleToUInt32Bits(Formula.Values("conv1.bn.weight", [64], "bn_weight")[1]));
        Assert.Equal(0x3ec07f49u, BitConverter.SingleToUInt32Bits(Formula.Values("input", [2, 3, 224, 224], "input")[1]));
    }
}
