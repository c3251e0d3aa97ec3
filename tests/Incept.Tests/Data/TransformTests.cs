using Incept.Data;
using Incept.Data.Transforms;

namespace Incept.Tests.Data;

/// <summary>Transforms against small examples computed by hand.</summary>
public class TransformTests
{
    private static readonly Random Unused = new(0);

    private static FloatImage Image(int channels, int height, int width, params float[] values) => new(channels, height, width, values);

    private static FloatImage Ramp(int channels, int height, int width) =>
        new(channels, height, width, [.. Enumerable.Range(0, channels * height * width).Select(i => (float)i)]);

    [Fact]
    public void Flip_mirrors_each_row_of_each_channel()
    {
        var image = Image(2, 2, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
        Assert.Equal([3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10], RandomHorizontalFlip.Flip(image).Data.ToArray());
        Assert.Equal([3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10], new RandomHorizontalFlip(1).Apply(image, Unused).Data.ToArray());
        Assert.Same(image, new RandomHorizontalFlip(0).Apply(image, Unused));
    }

    [Fact]
    public void Centre_crop_rounds_half_offsets_to_even_and_pads_with_zeros()
    {
        // 5 x 5 ramp, 2 x 2 crop: offset round(1.5) = 2 in both directions.
        Assert.Equal([12, 13, 17, 18], new CenterCrop(2).Apply(Ramp(1, 5, 5), Unused).Data.ToArray());
        // 4 x 4 ramp, 3 x 3 crop: offset round(0.5) = 0.
        Assert.Equal([0, 1, 2, 4, 5, 6, 8, 9, 10], new CenterCrop(3).Apply(Ramp(1, 4, 4), Unused).Data.ToArray());
        // 2 x 2 image, 4 x 4 crop: a zero border of one pixel.
        Assert.Equal([0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0],
            new CenterCrop(4).Apply(Image(1, 2, 2, 1, 2, 3, 4), Unused).Data.ToArray());
        // 1 x 2 image, 4 x 3 crop: padding floor(excess / 2) before, the rest after (rows 1 + 2, columns 0 + 1).
        Assert.Equal([0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0],
            new CenterCrop(4, 3).Apply(Image(1, 1, 2, 1, 2), Unused).Data.ToArray());
        // Half of a 4 x 6 image: 2 x 3 at (1, round(1.5) = 2).
        Assert.Equal([8, 9, 10, 14, 15, 16], CenterCrop.OfFraction(0.5).Apply(Ramp(1, 4, 6), Unused).Data.ToArray());
    }

    [Fact]
    public void Normalisation_scales_subtracts_divides_and_reorders_to_BGR()
    {
        var pixel = Image(3, 1, 1, 0.2f, 0.4f, 0.6f);

        var rgb = new Normalize([0.5f, 0.5f, 0.5f], [0.5f, 0.25f, 0.1f]).Apply(pixel, Unused).Data.ToArray();
        Assert.Equal([-0.6, -0.4, 1.0], rgb.Select(v => Math.Round(v, 5)));

        // Caffe style: BGR, [0, 255], mean given in BGR order. B = 0.6 x 255 - 104 = 49, G = 102 - 117, R = 51 - 128.
        var bgr = new Normalize([104f, 117f, 128f], [1f, 1f, 1f], bgr: true, scale: 255).Apply(pixel, Unused).Data.ToArray();
        Assert.Equal([49.0, -15.0, -77.0], bgr.Select(v => Math.Round(v, 4)));

        var e = Assert.Throws<InceptException>(() => new Normalize([0.5f, 0.5f, 0.5f], [1f, 1f, 1f]).Apply(Image(1, 1, 1, 0), Unused));
        Assert.Contains("GrayscaleToRgb", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Grayscale_becomes_three_equal_channels()
    {
        Assert.Equal([1, 2, 1, 2, 1, 2], new GrayscaleToRgb().Apply(Image(1, 1, 2, 1, 2), Unused).Data.ToArray());
    }

    [Fact]
    public void Bilinear_upscaling_interpolates_between_pixel_centres()
    {
        // Output centres of 2 -> 4 fall at input coordinates -0.25, 0.25, 0.75, 1.25 (in pixel-centre units):
        // clamped at the borders, so a row r becomes r0, 0.75 r0 + 0.25 r1, 0.25 r0 + 0.75 r1, r1.
        var up = Resampler.Resize(Image(1, 2, 2, 0, 1, 2, 3), 4, 4, Interpolation.Bilinear).Data.ToArray();
        float[] t = [0, 0.25f, 0.75f, 1];
        Assert.Equal([.. t.SelectMany(y => t.Select(x => 2 * y + x))], up);
    }

    [Fact]
    public void Bilinear_downscaling_averages_with_a_stretched_triangle_unless_antialiasing_is_off()
    {
        var row = Image(1, 1, 4, 0, 1, 2, 3);
        // 4 -> 2: centre of output 0 is input position 1.0 (edge units); the triangle is stretched to half-width 2,
        // so pixels 0, 1, 2 (centres 0.5, 1.5, 2.5) weigh 0.75, 0.75, 0.25: (0 + 0.75 + 0.5) / 1.75 = 5/7.
        // Output 1 (centre 3.0): pixels 1, 2, 3 weigh 0.25, 0.75, 0.75: (0.25 + 1.5 + 2.25) / 1.75 = 16/7.
        var aa = Resampler.Resize(row, 1, 2, Interpolation.Bilinear).Data.ToArray();
        Assert.Equal(5.0 / 7, aa[0], 6);
        Assert.Equal(16.0 / 7, aa[1], 6);
        // Without antialiasing: plain interpolation at 0.5 and 2.5, as PyTorch's interpolate(align_corners=False).
        Assert.Equal([0.5f, 2.5f], Resampler.Resize(row, 1, 2, Interpolation.Bilinear, antialias: false).Data.ToArray());
    }

    [Fact]
    public void Bicubic_weights_follow_Keys_kernel_with_a_of_minus_one_half()
    {
        // 4 -> 8 upscale, output 3 has centre 1.75 (edge units), i.e. 0.25 past the centre of pixel 1 (1.5).
        // Taps at distances 1.25, 0.25, 0.75, 1.75 weigh -0.0703125, 0.8671875, 0.2265625, -0.0234375 (sum 1).
        var row = Image(1, 1, 4, 1, 10, 100, 1000);
        var value = Resampler.Resize(row, 1, 8, Interpolation.Bicubic).Data[3];
        Assert.Equal(-0.0703125 * 1 + 0.8671875 * 10 + 0.2265625 * 100 - 0.0234375 * 1000, value, 4);
        Assert.Equal(1.0, Resampler.Kernel(Interpolation.Bicubic, 0), 12);
        Assert.Equal(0.0, Resampler.Kernel(Interpolation.Bicubic, 1), 12);
    }

    [Fact]
    public void Resize_of_the_shorter_side_keeps_the_aspect_ratio_rounding_down()
    {
        var resize = new Resize(4);
        Assert.Equal((4, 6), resize.TargetSize(6, 9));
        Assert.Equal((5, 4), resize.TargetSize(13, 9)); // floor(4 x 13 / 9) = floor(5.78)
        Assert.Equal((4, 4), resize.TargetSize(9, 9));
    }

    [Fact]
    public void Random_resized_crop_falls_back_to_a_centred_crop_when_no_attempt_fits()
    {
        // A 1 x 100 strip: every candidate is at least 2 rows high, so after ten attempts the fallback takes
        // the full height and width round(1 x 4/3) = 1, centred at column (100 - 1) / 2 = 49.
        var crop = new RandomResizedCrop(8);
        Assert.Equal(new CropBox(0, 49, 1, 1), crop.SampleBox(1, 100, new Random(3)));
    }

    [Fact]
    public void Random_resized_crop_boxes_lie_inside_the_image_within_the_area_and_ratio_ranges()
    {
        var crop = new RandomResizedCrop(8);
        var random = new Random(11);
        for (int i = 0; i < 500; i++)
        {
            var box = crop.SampleBox(60, 80, random);
            Assert.InRange(box.Top, 0, 60 - box.Height);
            Assert.InRange(box.Left, 0, 80 - box.Width);
            Assert.InRange(box.Height * box.Width, 0.08 * 4800 * 0.85, 4800);
            Assert.InRange((double)box.Width / box.Height, 0.75 * 0.85, 4.0 / 3 * 1.15);
        }
        var image = Ramp(3, 60, 80);
        Assert.Equal(crop.Apply(image, new Random(4)).Data.ToArray(), crop.Apply(image, new Random(4)).Data.ToArray());
        Assert.Equal((3, 8, 8), (crop.Apply(image, random).Channels, 8, 8));
    }

    [Fact]
    public void Colour_adjustments_match_their_formulas_on_one_pixel()
    {
        FloatImage Pixel() => Image(3, 1, 2, 0.2f, 0.8f, 0.4f, 0.4f, 0.6f, 0.2f);

        var b = Pixel();
        ColorJitter.AdjustBrightness(b, 1.5f);
        Assert.Equal([0.3f, 1f, 0.6f, 0.6f, 0.9f, 0.3f], b.Data.ToArray().Select(v => MathF.Round(v, 5)));

        // Pixels (R, G, B) = (0.2, 0.4, 0.6) and (0.8, 0.4, 0.2); grey levels
        // 0.2989 x 0.2 + 0.587 x 0.4 + 0.114 x 0.6 = 0.36298 and 0.2989 x 0.8 + 0.587 x 0.4 + 0.114 x 0.2 = 0.49672.
        var s = Pixel();
        ColorJitter.AdjustSaturation(s, 0f);
        Assert.Equal([0.36298f, 0.49672f, 0.36298f, 0.49672f, 0.36298f, 0.49672f], s.Data.ToArray().Select(v => MathF.Round(v, 5)));

        // Contrast 0 gives the mean grey level everywhere: (0.36298 + 0.49672) / 2 = 0.42985.
        var c = Pixel();
        ColorJitter.AdjustContrast(c, 0f);
        Assert.All(c.Data.ToArray(), v => Assert.Equal(0.42985f, v, 5));

        // Hue +1/3 turn maps red to green, green to blue, blue to red.
        var h = Image(3, 1, 3, 1, 0, 0, 0, 1, 0, 0, 0, 1);
        ColorJitter.AdjustHue(h, 1f / 3);
        Assert.Equal([0f, 0, 1, 1, 0, 0, 0, 1, 0], h.Data.ToArray().Select(v => MathF.Round(v, 5)));
    }

    [Fact]
    public void Evaluation_pipeline_resizes_to_size_over_crop_fraction_then_crops_and_normalises()
    {
        var spec = new PreprocessSpec(4, 0.8, "bilinear", [0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f], false, 1);
        var pipeline = ImagePipeline.Evaluation(spec);
        Assert.Collection(pipeline.Transforms,
            t => Assert.IsType<GrayscaleToRgb>(t),
            t => Assert.Equal(5, Assert.IsType<Resize>(t).ShorterSide),
            t => Assert.Equal(4, Assert.IsType<CenterCrop>(t).Height),
            t => Assert.IsType<Normalize>(t));

        // A grayscale 10 x 20 image of constant 51 (0.2) becomes 3 x 4 x 4 of (0.2 - 0.5) / 0.5 = -0.6.
        var gray = new ByteImage(10, 20, 1, [.. Enumerable.Repeat((byte)51, 200)]);
        var result = pipeline.Apply(gray, Unused);
        Assert.Equal((3, 4, 4), (result.Channels, result.Height, result.Width));
        Assert.All(result.Data.ToArray(), v => Assert.Equal(-0.6f, v, 5));

        Assert.Throws<InceptException>(() => ImagePipeline.Evaluation(spec with { Interpolation = "lanczos7" }));
    }
}
