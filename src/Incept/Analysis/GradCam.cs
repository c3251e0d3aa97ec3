using Incept.Data;
using Incept.Data.Transforms;
using Incept.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Analysis;

/// <summary>A map of values over an image's pixels, row by row.</summary>
public sealed class HeatMap
{
    private readonly float[] _values;

    /// <summary>Wraps <paramref name="values"/> (not copied), laid out height × width.</summary>
    public HeatMap(int height, int width, float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (values.Length != (long)height * width)
            throw new ArgumentException($"A {height}x{width} map needs {(long)height * width} values, not {values.Length}.", nameof(values));
        Height = height;
        Width = width;
        _values = values;
    }

    /// <summary>Rows.</summary>
    public int Height { get; }

    /// <summary>Columns.</summary>
    public int Width { get; }

    /// <summary>The values, row by row; the map shares this memory.</summary>
    public ReadOnlySpan<float> Values => _values;

    /// <summary>The value at row <paramref name="y"/>, column <paramref name="x"/>.</summary>
    public float this[int y, int x] => _values[y * Width + x];

    /// <summary>Row and column of the largest value (the first one in row order on ties).</summary>
    public (int Y, int X) ArgMax()
    {
        int best = 0;
        for (int i = 1; i < _values.Length; i++)
        {
            if (_values[i] > _values[best]) best = i;
        }
        return (best / Width, best % Width);
    }
}

/// <summary>What <see cref="GradCam.Compute"/> found.</summary>
/// <param name="ClassIndex">The class whose score was explained.</param>
/// <param name="Probability">That class's softmax probability.</param>
/// <param name="Layer">The module whose output was used (for the default, the last entry of <see cref="InceptionModel.FeatureInfo"/>).</param>
/// <param name="Map">The class activation map upsampled to the input's size, in [0, 1].</param>
/// <param name="Coarse">The map at the layer's resolution, in [0, 1].</param>
public sealed record GradCamResult(int ClassIndex, double Probability, string Layer, HeatMap Map, HeatMap Coarse);

/// <summary>
/// Grad-CAM (Selvaraju et al., 2017): where in the image a network finds the evidence for a class. For a feature map
/// A (channels × h × w) and the class score y (the logit before softmax), each channel is weighted by the spatial
/// mean of its gradient, α_c = mean_ij ∂y/∂A_cij, and the map is ReLU(Σ_c α_c A_c), divided by its maximum so
/// that it lies in [0, 1] (all zeros when no location speaks for the class), and upsampled bilinearly to the input.
/// </summary>
public static class GradCam
{
    /// <summary>
    /// Explains <paramref name="classIndex"/> (default: the top-1 class) for one image <paramref name="input"/>
    /// (1×C×H×W or C×H×W, already preprocessed) from the output of the module <paramref name="layer"/> (a module name,
    /// such as a <see cref="InceptionModel.FeatureInfo"/> tap; default: the last feature map, before global pooling).
    /// The model runs in evaluation mode and its parameters and mode are left as they were.
    /// </summary>
    /// <exception cref="InceptException">The class index is out of range, the layer does not exist or does not take part in the forward pass, or the model has no classifier.</exception>
    public static GradCamResult Compute(InceptionModel model, Tensor input, int? classIndex = null, string? layer = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(input);
        if (model.NumClasses == 0)
            throw new InceptException($"{model.GetName()} has no classifier, so there is no class score to explain; load weights with a classifier.");
        if (classIndex is { } k && (k < 0 || k >= model.NumClasses))
            throw new InceptException($"Class {k} does not exist: the model has {model.NumClasses} classes, numbered 0 to {model.NumClasses - 1}.");
        var x = input.dim() == 3 ? input.unsqueeze(0) : input;
        if (x.dim() != 4 || x.shape[0] != 1)
            throw new InputShapeException($"Grad-CAM explains one image at a time (1×C×H×W or C×H×W); got [{string.Join(", ", input.shape)}].");
        var target = layer is null ? null : FindLayer(model, layer);

        bool wasTraining = model.training;
        var requiresGrad = model.parameters().Select(p => p.requires_grad).ToList();
        Tensor? activation = null;
        try
        {
            // Gradients are needed only from the feature map on: the parameters do not take part.
            foreach (var p in model.parameters()) p.requires_grad = false;
            model.eval();
            using var scope = NewDisposeScope();
            using var enabled = enable_grad();
            Tensor logits;
            if (target is null)
            {
                activation = model.ForwardFeatures(x).detach().requires_grad_(true).DetachFromDisposeScope();
                logits = model.ForwardHead(activation);
            }
            else
            {
                // The hook keeps a leaf copy of the layer's output, whose gradient is the one sought, and hands the rest of
                // the network a view of it: containers such as Sequential free what a layer returns once the next one
                // has used it, which must not take the leaf with it.
                var hook = target.register_forward_hook((_, _, output) =>
                {
                    if (activation is not null) return output;
                    activation = output.detach().requires_grad_(true).DetachFromDisposeScope();
                    return activation.alias();
                });
                try
                {
                    logits = model.call(x).Logits;
                }
                finally
                {
                    hook.remove();
                }

                if (activation is null)
                    throw new InceptException($"The layer '{layer}' does not take part in {model.GetName()}'s forward pass; choose one of {string.Join(", ", model.FeatureInfo.Select(f => f.Module))}.");
            }

            var probabilities = nn.functional.softmax(logits.detach(), 1);
            int cls = classIndex ?? (int)probabilities.argmax(1).item<long>();
            double probability = probabilities[0, cls].item<float>();
            var gradient = autograd.grad([logits[0, cls]], [activation])[0];
            var cam = Combine(activation.detach(), gradient);
            var coarse = Normalise(cam[0]);
            var upsampled = nn.functional.interpolate(cam.unsqueeze(1), [x.shape[2], x.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
            var map = Normalise(upsampled[0, 0]);
            var name = layer ?? model.FeatureInfo[^1].Module;
            return new GradCamResult(cls, probability, name, ToHeatMap(map), ToHeatMap(coarse));
        }
        finally
        {
            activation?.Dispose();
            int i = 0;
            foreach (var p in model.parameters()) p.requires_grad = requiresGrad[i++];
            if (wasTraining) model.train();
        }
    }

    /// <summary>
    /// The Grad-CAM combination of a feature map and the gradient of a class score with respect to it, both N×C×h×w:
    /// ReLU(Σ_c α_c A_c) with α_c the spatial mean of the gradient of channel c; N×h×w, not normalised.
    /// </summary>
    public static Tensor Combine(Tensor activation, Tensor gradient)
    {
        ArgumentNullException.ThrowIfNull(activation);
        ArgumentNullException.ThrowIfNull(gradient);
        if (activation.dim() != 4 || !activation.shape.SequenceEqual(gradient.shape))
            throw new ArgumentException($"The feature map and its gradient must both be N×C×h×w of the same shape; got [{string.Join(", ", activation.shape)}] and [{string.Join(", ", gradient.shape)}].", nameof(gradient));
        using var scope = NewDisposeScope();
        var weights = gradient.mean([2, 3], keepdim: true);
        return nn.functional.relu((weights * activation).sum(1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Prepares a decoded image as <paramref name="spec"/> says for a network with <paramref name="inChannels"/> input
    /// channels: the evaluation resize and centre crop, then normalisation. Returns the cropped image in [0, 1] as it is
    /// shown (RGB, or the grayscale repeated) and the network input (C×H×W).
    /// </summary>
    public static (FloatImage Shown, FloatImage Input) Prepare(ByteImage image, PreprocessSpec spec, int inChannels)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(spec);
        if (inChannels is not (1 or 3))
            throw new InceptException($"Images can be prepared for networks with 1 or 3 input channels; this one takes {inChannels}.");
        if (spec.Mean.Length != inChannels)
            throw new InceptException($"The weights' preprocessing has {spec.Mean.Length} channel means but the network takes {inChannels} channels; fix the preprocessing metadata.");
        var random = new Random(0);
        var geometry = new ImagePipeline([.. ImagePipeline.Evaluation(spec with { Mean = [0, 0, 0], Std = [1, 1, 1] }).Transforms.Where(t => t is not Normalize)]);
        var shown = geometry.Apply(image, random);
        var input = inChannels == 1 ? Luma(shown) : shown;
        if (inChannels == 3 && input.Channels == 1) input = new GrayscaleToRgb().Apply(input, random);
        if (shown.Channels == 1) shown = new GrayscaleToRgb().Apply(shown, random);
        return (shown, Normalize.From(spec).Apply(input, random));
    }

    private static nn.Module<Tensor, Tensor> FindLayer(InceptionModel model, string layer)
    {
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach (var (stageName, stage) in model.Stages()) modules.TryAdd(stageName, stage);
        if (modules.TryGetValue(layer, out var module) && module is nn.Module<Tensor, Tensor> tensorModule) return tensorModule;
        throw new InceptException($"{model.GetName()} has no layer '{layer}' with a feature-map output; use one of its feature taps: {string.Join(", ", model.FeatureInfo.Select(f => f.Module))}.");
    }

    /// <summary>ITU-R 601 luma, as Pillow's <c>convert("L")</c> weighs the channels.</summary>
    private static FloatImage Luma(FloatImage rgb)
    {
        if (rgb.Channels == 1) return rgb;
        int plane = rgb.Height * rgb.Width;
        var src = rgb.Data;
        var gray = new float[plane];
        for (int p = 0; p < plane; p++)
            gray[p] = 0.299f * src[p] + 0.587f * src[plane + p] + 0.114f * src[2 * plane + p];
        return new FloatImage(1, rgb.Height, rgb.Width, gray);
    }

    /// <summary>Divides by the maximum (a map without positive values stays zero).</summary>
    private static Tensor Normalise(Tensor map)
    {
        var max = map.max().item<float>();
        if (!(max > 0)) return zeros_like(map);
        using var divisor = max.ToScalar();
        return map.div(divisor);
    }

    private static HeatMap ToHeatMap(Tensor map)
    {
        var values = map.contiguous().to_type(ScalarType.Float32).cpu().data<float>().ToArray();
        return new HeatMap((int)map.shape[0], (int)map.shape[1], values);
    }
}
