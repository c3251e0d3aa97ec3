using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// The convolutions of a training step by Winograd's method, on CPUs with 256-bit or 512-bit vectors: the forward pass
/// and the input gradient run through <see cref="WinogradConvolution"/> with the weights transformed afresh on every
/// call (the input gradient of a stride-1 convolution is itself one: channels swapped, kernel turned by 180°, padding
/// <c>kernel − 1 − padding</c>), and the weight gradient by the same tiles read the other way round
/// (<see cref="WinogradConvolution.WeightGradient"/>), so that none of the three builds an im2col buffer.
/// </summary>
/// <remarks>
/// <para>Taken on grids of at least <see cref="MinOutputPositions"/> outputs per image, and below
/// <see cref="LargeGridPositions"/> only for layers with many channels: elsewhere the weight transforms and the few tiles
/// cost about what the saved multiplications gain (per layer, batch 16, forward and both gradients, against libtorch's
/// im2col path: 3×3 at 28×28 to 147×147 1.15–1.56×, at 14×14 1.1–1.2× from 96 → 208 channels up but 0.8–0.9× for
/// 16 → 48 and 32 → 128; 3×3 at 7×7 and 8×8 0.96–1.1×).</para>
/// <para>A convolution module with hooks keeps libtorch's path, which calls them; so does anything that is not float32,
/// channels-last and on the CPU, or that needs no gradient. The results equal libtorch's up to float32 rounding (about
/// 10⁻⁵ of the largest value with 4×4 tiles, for the outputs and both gradients).</para>
/// <para>On by default in <c>incept train</c> (<see cref="Training.TrainOptions.Winograd"/>).</para>
/// </remarks>
internal static class WinogradTraining
{
    /// <summary>The fewest output positions per image (14 × 14) on which a convolution is taken.</summary>
    public const long MinOutputPositions = 14 * 14;

    /// <summary>Below this many output positions per image (28 × 28), only layers with at least
    /// <see cref="MinSmallGridChannelProduct"/> input × output channels are taken.</summary>
    public const long LargeGridPositions = 28 * 28;

    /// <summary>The smallest product of the channel counts taken on grids below <see cref="LargeGridPositions"/>.</summary>
    public const long MinSmallGridChannelProduct = 8192;

    private static long forwardCount;

    /// <summary>How many times <see cref="Forward"/> has run in this process (for tests and diagnostics).</summary>
    internal static long ForwardCount => Interlocked.Read(ref forwardCount);

    /// <summary>Whether TorchSharp's hook tables were found, so that a convolution without hooks can be taken at all.</summary>
    internal static bool SeesHooks => ModuleHooks.Seen;

    /// <summary>
    /// Turns Winograd training on or off for every conv unit of <paramref name="model"/> (see
    /// <see cref="IConvBnUnit.TrainsWithWinograd"/>): on only where asked and where Incept's training kernels pay
    /// (<see cref="TrainingConvolution.OwnKernelsPay"/>); returns how many units there are.
    /// </summary>
    public static int Use(Models.InceptionModel model, bool on = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        bool winograd = on && TrainingConvolution.OwnKernelsPay;
        int count = 0;
        foreach (var unit in model.ConvBnUnits())
        {
            unit.TrainsWithWinograd = winograd;
            count++;
        }

        return count;
    }

    /// <summary>
    /// Whether this class computes <paramref name="conv"/> in training: float32 CPU weights, stride 1, no dilation or
    /// groups, zero padding, channel counts that are multiples of <see cref="WinogradConvolution.ChannelBlock"/>, and
    /// either a 3×3 or 5×5 kernel padded equally on every side by less than its size, or a 1×n or n×1 kernel (n from
    /// <see cref="WinogradConvolution.MinLineKernel"/> to <see cref="WinogradConvolution.MaxLineKernel"/>) padded along
    /// its length only, by less than n; on a CPU with 256-bit or 512-bit vectors in hardware. The lines run with tiles
    /// of two outputs, F(2, n): inception_v3's 1×7 and 7×1 layers make its step 5–10 % faster at batch 16; the peak
    /// memory they used to add was tcmalloc's placement, which <see cref="Runtime.StepMemory"/> takes out
    /// (docs/benchmarks.md, twenty-sixth to twenty-eighth sessions).
    /// </summary>
    public static bool Takes(Conv2d conv)
    {
        if (!WinogradConvolution.TakesLayout(conv, out long kh, out long kw, out long ph, out long pw)) return false;
        bool square = kh == kw && kh is 3 or 5 && ph == pw && ph >= 0 && ph < kh;
        bool line = kh == 1 && kw is >= WinogradConvolution.MinLineKernel and <= WinogradConvolution.MaxLineKernel && ph == 0 && pw >= 0 && pw < kw
            || kw == 1 && kh is >= WinogradConvolution.MinLineKernel and <= WinogradConvolution.MaxLineKernel && pw == 0 && ph >= 0 && ph < kh;
        return square || line;
    }

    /// <summary>
    /// Whether <see cref="Forward"/> computes <paramref name="conv"/> on <paramref name="input"/>: the convolution is
    /// <see cref="Takes">taken</see> and has no hooks, gradients are being recorded for the input or the weight, the input
    /// is a channels-last float32 CPU batch, and the grid is large enough (<see cref="MinOutputPositions"/>,
    /// <see cref="LargeGridPositions"/>).
    /// </summary>
    public static bool Applies(Conv2d conv, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!Takes(conv) || input.dim() != 4 || input.device_type != DeviceType.CPU || input.dtype != ScalarType.Float32) return false;
        var weight = conv.weight!;
        if (!is_grad_enabled() || !(input.requires_grad || weight.requires_grad)) return false;
        if (input.shape[1] != weight.shape[1]) return false;
        long outHeight = input.shape[2] + 2 * (conv.padding?[0] ?? 0) - weight.shape[2] + 1;
        long outWidth = input.shape[3] + 2 * (conv.padding?[1] ?? 0) - weight.shape[3] + 1;
        long positions = outHeight * outWidth;
        if (outHeight < 1 || outWidth < 1 || positions < MinOutputPositions) return false;
        if (positions < LargeGridPositions && weight.shape[0] * weight.shape[1] < MinSmallGridChannelProduct) return false;
        return MemoryFormat.IsChannelsLast(input) && !ModuleHooks.Any(conv);
    }

    /// <summary>
    /// <paramref name="conv"/> applied to <paramref name="input"/> (where it <see cref="Applies"/>), recorded for autograd:
    /// the output, channels-last, whose backward pass gives the input, weight and bias gradients.
    /// </summary>
    public static Tensor Forward(Conv2d conv, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(conv);
        var geometry = new Geometry(conv.padding?[0] ?? 0, conv.padding?[1] ?? 0, WinogradConvolution.TileFor(conv));
        Interlocked.Increment(ref forwardCount);
        // TorchSharp 0.107 keeps, beside each output of a custom autograd function, an uninitialised tensor of its size
        // (to make zero gradients from, which this function does not ask for) until the graph is freed. Made in this
        // scope, it is freed on return (inception_v3's training step at batch 16, the path forced on beside oneDNN, peaked
        // about 6 MiB lower so).
        using var scope = NewDisposeScope();
        return Function.apply(input, conv.weight!, conv.bias, geometry).MoveToOuterDisposeScope();
    }

    private sealed record Geometry(long PadRows, long PadColumns, int Tile);

    private sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => "WinogradConvolutionBackward";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var input = (Tensor)vars[0];
            var weight = (Tensor)vars[1];
            var bias = vars[2] as Tensor;
            var geometry = (Geometry)vars[3];
            // No zero-filled stand-ins for missing output gradients: backward handles an undefined one.
            ctx.set_materialize_grads(false);
            ctx.save_for_backward([input, weight]);
            ctx.save_data(nameof(Geometry), geometry);
            ctx.save_data(nameof(bias), bias is not null);
            using var winograd = WinogradConvolution.ForWeight(weight, bias, geometry.PadRows, geometry.PadColumns, geometry.Tile, turned: false);
            return winograd.Forward(input, relu: false);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
        {
            if (grad_output is null || grad_output.IsInvalid) return [null!, null!, null!, null!];
            // TorchSharp wraps the output gradient in a handle of the scope around backward() (the step's), which would
            // hold it to the step's end; libtorch keeps its own reference for as long as it needs it.
            using var gradientHandle = grad_output;
            using var scope = NewDisposeScope();
            var geometry = (Geometry)ctx.get_data(nameof(Geometry));
            bool hasBias = (bool)ctx.get_data("bias");
            var saved = ctx.get_saved_variables();
            Tensor input = saved[0], weight = saved[1];
            long kh = weight.shape[2], kw = weight.shape[3];
            Tensor? inputGradient = null, weightGradient = null, biasGradient = null;
            if (input.requires_grad)
            {
                using var turned = WinogradConvolution.ForWeight(weight, null, kh - 1 - geometry.PadRows, kw - 1 - geometry.PadColumns, geometry.Tile, turned: true);
                inputGradient = turned.Forward(grad_output, relu: false).MoveToOuterDisposeScope();
            }

            if (weight.requires_grad)
                weightGradient = WinogradConvolution.WeightGradient(input, grad_output, kh, kw, geometry.PadRows, geometry.PadColumns, geometry.Tile).MoveToOuterDisposeScope();
            if (hasBias) biasGradient = grad_output.sum([0, 2, 3]).MoveToOuterDisposeScope();
            return [inputGradient!, weightGradient!, biasGradient!, null!];
        }
    }
}
