using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// Runs an inference convolution of a channels-last input as matrix products over a strided view of the input's
/// windows, several images per product: for image stems (few channels) and for small grids.
/// </summary>
/// <remarks>
/// Without oneDNN, libtorch convolves a channels-last input image by image: it unfolds each window in runs of
/// <c>C</c> numbers and multiplies one image's columns at a time. Two cases lose to that: an RGB stem, whose runs are
/// three numbers long (googlenet's 7×7 stem at batch 8: 14.9 ms there, 9.9 ms here), and a small grid such as 8×8 or
/// 7×7, whose per-image product has too few rows to keep the cores busy (inception_v3's 2048 → 384 1×1 at 8×8, batch
/// 16: 6.1 ms there, 4.4 ms as one product; whole networks at batch 16 gained 0–3 %). Here each window row of
/// <c>kw·C</c> numbers is contiguous in the padded NHWC input, so one strided copy builds the columns (none at all for
/// a 1×1 convolution with stride 1 and no padding), and the product writes NHWC rows, which are the output's
/// channels-last layout. The columns of a batch are built a few images at a time so that they stay within the unit's
/// column budget. Inference only: a split batch's products are written into a preallocated output, which autograd
/// would not follow.
/// </remarks>
internal static class ProductConvolution
{
    /// <summary>Inputs with at most this many channels take this path when the kernel is larger than 1×1.</summary>
    public const long MaxFewChannels = 4;

    /// <summary>
    /// Outputs with at most this many positions per image (8×8) take this path whatever their channels, in batches of
    /// more than one image. (For a single image the product is libtorch's own, and the extra calls cost: googlenet at
    /// batch 1 ran about 7 % slower with its 7×7 layers here.)
    /// </summary>
    public const long MaxSmallGridPositions = 64;

    /// <summary>
    /// Whether <paramref name="conv"/> on <paramref name="input"/> takes this path: a channels-last CPU input of
    /// float32 or float64, zero padding given in numbers, no dilation or groups, nothing that needs a gradient, and either
    /// at most <see cref="MaxFewChannels"/> input channels with a kernel larger than 1×1 or, for more than one image, at
    /// most <see cref="MaxSmallGridPositions"/> output positions per image.
    /// </summary>
    public static bool Applies(Conv2d conv, Tensor input)
    {
        var weight = conv.weight;
        if (weight is null || input.dim() != 4 || input.device_type != DeviceType.CPU) return false;
        if (input.dtype is not (ScalarType.Float32 or ScalarType.Float64) || input.dtype != weight.dtype) return false;
        if (conv.groups != 1 || conv.padding_type is not null) return false;
        if (conv.padding_mode != PaddingModes.Zeros || conv.dilation.Any(d => d != 1)) return false;
        if (is_grad_enabled() && (input.requires_grad || weight.requires_grad)) return false;
        if (!MemoryFormat.IsChannelsLast(input)) return false;

        bool fewChannels = input.shape[1] <= MaxFewChannels && (weight.shape[2] != 1 || weight.shape[3] != 1);
        return fewChannels || input.shape[0] > 1 && OutputPositions(conv, input) is > 0 and <= MaxSmallGridPositions;
    }

    /// <summary>
    /// <paramref name="conv"/> applied to <paramref name="input"/> (see <see cref="Applies"/>), in channels-last layout,
    /// building the columns of as many images at a time as fit in <paramref name="budgetBytes"/> (at least one; 0 means
    /// the whole batch at once).
    /// </summary>
    public static Tensor Forward(Conv2d conv, Tensor input, long budgetBytes)
    {
        using var scope = NewDisposeScope();
        var weight = conv.weight!;
        long batch = input.shape[0], channels = input.shape[1];
        long outChannels = weight.shape[0], kh = weight.shape[2], kw = weight.shape[3];
        long sh = conv.stride[0], sw = conv.stride[1];
        long ph = conv.padding?[0] ?? 0, pw = conv.padding?[1] ?? 0;

        var windows = new Windows(input, kh, kw, sh, sw, ph, pw);
        if (windows.OutHeight <= 0 || windows.OutWidth <= 0) return conv.call(input).MoveToOuterDisposeScope();

        // Columns in (kh, kw, C) order, so the weight is the same permutation of [out, C, kh, kw].
        var weightRows = weight.permute(0, 2, 3, 1).reshape(outChannels, kh * kw * channels).t();
        long rowsPerImage = windows.RowsPerImage, outH = windows.OutHeight, outW = windows.OutWidth;
        // A 1×1 convolution with stride 1 reads its columns straight from the input: nothing to budget.
        bool inputIsColumns = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
        long images = budgetBytes > 0 && !inputIsColumns ? windows.ImagesWithin(budgetBytes) : batch;

        Tensor output;
        if (images == batch)
        {
            // One product: the bias is its starting value.
            var columns = windows.Columns(0, batch);
            output = conv.bias is null ? columns.mm(weightRows) : addmm(conv.bias, columns, weightRows, 1f, 1f);
        }
        else
        {
            output = empty([batch * rowsPerImage, outChannels], input.dtype, input.device);
            for (long start = 0; start < batch; start += images)
            {
                long count = Math.Min(images, batch - start);
                using var _ = NewDisposeScope();
                var rows = output.narrow(0, start * rowsPerImage, count * rowsPerImage);
                if (conv.bias is null) rows.zero_();
                else rows.copy_(conv.bias.expand(rows.shape));
                rows.addmm_(windows.Columns(start, count), weightRows, 1f, 1f);
            }
        }

        return output.view(batch, outH, outW, outChannels).permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The windows of a convolution over a channels-last input, as matrix rows: the input in NHWC layout with the padding
    /// added (a copy only where there is padding), where each window row of <c>kw·C</c> numbers is contiguous, so that
    /// the columns of a run of images, in (kh, kw, C) order, are one strided copy. The caller keeps the input alive.
    /// </summary>
    internal sealed class Windows
    {
        private readonly Tensor nhwc;
        private readonly long[] shape;
        private readonly long[] strides;

        /// <summary>The windows of a <paramref name="kh"/> × <paramref name="kw"/> kernel with the given stride and zero padding over <paramref name="input"/>.</summary>
        public Windows(Tensor input, long kh, long kw, long sh, long sw, long ph, long pw)
        {
            nhwc = input.permute(0, 2, 3, 1);
            if (ph != 0 || pw != 0) nhwc = nn.functional.pad(nhwc, [0, 0, pw, pw, ph, ph]).contiguous();
            long channels = input.shape[1], height = nhwc.shape[1], width = nhwc.shape[2];
            OutHeight = (height - kh) / sh + 1;
            OutWidth = (width - kw) / sw + 1;
            ColumnsPerRow = kh * kw * channels;
            ElementSize = input.ElementSize;
            shape = [0, OutHeight, OutWidth, kh, kw, channels];
            strides = [height * width * channels, sh * width * channels, sw * channels, width * channels, channels, 1];
        }

        /// <summary>Output rows and columns (either is 0 or less where the kernel does not fit).</summary>
        public long OutHeight { get; }

        /// <inheritdoc cref="OutHeight"/>
        public long OutWidth { get; }

        /// <summary>Output positions, and so rows of columns, per image.</summary>
        public long RowsPerImage => OutHeight * OutWidth;

        /// <summary>Numbers per row of columns: kh · kw · C.</summary>
        public long ColumnsPerRow { get; }

        private long ElementSize { get; }

        /// <summary>How many images' columns fit in <paramref name="budgetBytes"/> (at least one, at most the batch).</summary>
        public long ImagesWithin(long budgetBytes)
            => Math.Clamp(budgetBytes / Math.Max(RowsPerImage * ColumnsPerRow * ElementSize, 1), 1, nhwc.shape[0]);

        /// <summary>The columns [count · rows per image, kh · kw · C] of images [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>).</summary>
        public Tensor Columns(long start, long count)
        {
            shape[0] = count;
            return nhwc.as_strided(shape, strides, nhwc.storage_offset() + start * strides[0]).reshape(count * RowsPerImage, ColumnsPerRow);
        }
    }

    /// <summary>The output positions per image of <paramref name="conv"/> on <paramref name="input"/>.</summary>
    private static long OutputPositions(Conv2d conv, Tensor input)
    {
        var weight = conv.weight!;
        long ph = conv.padding?[0] ?? 0, pw = conv.padding?[1] ?? 0;
        long outH = (input.shape[2] + 2 * ph - weight.shape[2]) / conv.stride[0] + 1;
        long outW = (input.shape[3] + 2 * pw - weight.shape[3]) / conv.stride[1] + 1;
        return outH > 0 && outW > 0 ? outH * outW : 0;
    }
}
