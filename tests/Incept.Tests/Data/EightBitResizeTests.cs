using System.Text.Json;
using Incept.Data;
using Incept.Data.Transforms;

namespace Incept.Tests.Data;

/// <summary>
/// The evaluation resize in Pillow's 8-bit arithmetic (compared with torchvision's PIL pipeline in
/// Inference/PreprocessParityTests); here its rounding and clipping on cases worked out by hand.
/// </summary>
public class EightBitResizeTests
{
    [Fact]
    public void Halving_black_and_white_rounds_half_up_as_pillow_does()
    {
        // Two pixels 0 and 255 averaged with weights 1/2 each: 127.5, which Pillow's fixed point rounds to 128.
        var image = new FloatImage(1, 1, 2, [0f, 1f]);
        Assert.Equal(128 / 255f, Resampler.ResizeEightBit(image, 1, 1, Interpolation.Bilinear).Data[0]);
        Assert.Equal(0.5f, Resampler.Resize(image, 1, 1, Interpolation.Bilinear).Data[0]);
    }

    [Fact]
    public void Bicubic_overshoot_at_a_hard_edge_is_clipped_to_the_8_bit_range()
    {
        // A black-to-white step enlarged bicubically rings below 0 and above 1 in float.
        var data = new float[16];
        for (int x = 8; x < 16; x++) data[x] = 1f;
        var step = new FloatImage(1, 1, 16, data);
        var wide = Resampler.Resize(step, 1, 40, Interpolation.Bicubic);
        Assert.True(wide.Data.ToArray().Min() < 0 && wide.Data.ToArray().Max() > 1);
        var levels = Resampler.ResizeEightBit(step, 1, 40, Interpolation.Bicubic).Data.ToArray();
        Assert.Equal(0f, levels.Min());
        Assert.Equal(1f, levels.Max());
        Assert.All(levels, v => Assert.Equal(Math.Round(v * 255), v * 255, 3)); // whole 8-bit levels

        // A constant image stays constant through both passes.
        var flat = new FloatImage(3, 13, 17, [.. Enumerable.Repeat(77 / 255f, 3 * 13 * 17)]);
        Assert.All(Resampler.ResizeEightBit(flat, 5, 29, Interpolation.Bicubic).Data.ToArray(), v => Assert.Equal(77 / 255f, v));
    }

    [Fact]
    public void Evaluation_resizes_in_8_bits_when_antialiased_and_in_float_otherwise()
    {
        var spec = new PreprocessSpec(4, 0.8, "bicubic", [0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f], false, 1);
        Assert.True(ImagePipeline.Evaluation(spec).Transforms.OfType<Resize>().Single().EightBit);
        var plain = ImagePipeline.Evaluation(spec with { Antialias = false }).Transforms.OfType<Resize>().Single();
        Assert.False(plain.EightBit);
        Assert.False(plain.Antialias);
        Assert.Throws<ArgumentException>(() => new Resize(5, Interpolation.Bilinear, antialias: false, eightBit: true));
    }

    [Fact]
    public void Preprocessing_metadata_without_antialias_reads_as_antialiased()
    {
        var old = """{"InputSize":299,"CropFraction":0.875,"Interpolation":"bicubic","Mean":[0.5,0.5,0.5],"Std":[0.5,0.5,0.5],"Bgr":false,"Scale":1}""";
        Assert.True(JsonSerializer.Deserialize<PreprocessSpec>(old)!.Antialias);
        var spec = new PreprocessSpec(299, 0.875, "bicubic", [0.5f], [0.5f], false, 1, Antialias: false);
        Assert.False(JsonSerializer.Deserialize<PreprocessSpec>(JsonSerializer.Serialize(spec))!.Antialias);
    }
}
