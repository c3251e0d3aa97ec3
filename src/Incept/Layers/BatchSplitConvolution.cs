using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// Runs a convolution in slices of the batch when libtorch's own convolution would otherwise allocate one large im2col
/// buffer for the whole batch.
/// </summary>
/// <remarks>
/// Without oneDNN, libtorch convolves on the CPU by unfolding the input into columns (C·kh·kw rows by H'·W' columns per
/// image) and multiplying by the weight, and it allocates the columns of every image in the batch at once, in the forward
/// pass and again in the backward pass: for inception_v3's second convolution at batch 16 that is 398 MB, more than all
/// the network's activations at that point. It multiplies image by image anyway, so slicing the batch keeps the values;
/// it only bounds that buffer. 1×1 convolutions with stride 1 and no padding use the input as its own columns and are
/// never split. At inference each slice is copied into the output as soon as it is computed; with autograd the slices
/// are joined by <c>cat</c>, and the backward pass then costs a few per cent more (the weight gradient is summed over
/// the slices).
/// </remarks>
internal static class BatchSplitConvolution
{
    /// <summary>
    /// The budget of a unit that was given none: <see cref="TrainingBudgetBytes"/> while libtorch convolves without
    /// oneDNN (which unfolds whole batches), and no limit while oneDNN is on (its kernels keep small buffers of their own).
    /// </summary>
    public static long AutomaticBudgetBytes => Runtime.TorchRuntime.OneDnnInUse == true ? 0 : TrainingBudgetBytes;

    /// <summary>
    /// 64 MiB: with inception_v3 at batch 16 and autograd, peak memory 2,530 → 2,120 MiB at 4 % of the step's speed
    /// (16 MiB: 2,100 MiB at 6 %); docs/benchmarks.md.
    /// </summary>
    public const long TrainingBudgetBytes = 64L << 20;

    /// <summary>
    /// The bytes of libtorch's im2col buffer for one image of <paramref name="input"/> through <paramref name="conv"/>,
    /// or 0 where the convolution needs none.
    /// </summary>
    public static long ColumnBytesPerImage(Conv2d conv, Tensor input)
    {
        var weight = conv.weight!;
        long kh = weight.shape[2], kw = weight.shape[3];
        var (sh, sw) = (conv.stride[0], conv.stride[1]);
        var (ph, pw) = (conv.padding?[0] ?? 0, conv.padding?[1] ?? 0);
        bool unfolds = kh != 1 || kw != 1 || sh != 1 || sw != 1 || ph != 0 || pw != 0;
        if (!unfolds || input.dim() != 4) return 0;
        long outH = (input.shape[2] + 2 * ph - kh) / sh + 1;
        long outW = (input.shape[3] + 2 * pw - kw) / sw + 1;
        return input.shape[1] * kh * kw * Math.Max(0, outH) * Math.Max(0, outW) * input.ElementSize;
    }

    /// <summary>
    /// <paramref name="conv"/> applied to <paramref name="input"/>, in slices of the batch whose im2col buffers stay
    /// within <paramref name="budgetBytes"/> (at least one image per slice); in one call when the whole batch fits or the
    /// budget is 0.
    /// </summary>
    public static Tensor Forward(Conv2d conv, Tensor input, long budgetBytes)
    {
        long batch = input.dim() == 4 ? input.shape[0] : 1;
        long perImage = budgetBytes > 0 && batch > 1 ? ColumnBytesPerImage(conv, input) : 0;
        if (perImage == 0 || perImage * batch <= budgetBytes) return conv.call(input);

        // libtorch hands the images of a call to its threads, so a slice holds a multiple of the thread count: fewer
        // images would leave threads idle.
        long threads = Math.Max(1, get_num_threads());
        long slice = Math.Max(threads, budgetBytes / perImage / threads * threads);
        if (slice >= batch) return conv.call(input);
        if (is_grad_enabled())
        {
            // split, not narrow: autograd then joins the slices' input gradients in one tensor, where each narrow would
            // add a zero-filled gradient of the whole input.
            using var scope = NewDisposeScope();
            var parts = input.split(slice, 0).Select(part => conv.call(part)).ToList();
            return cat(parts, 0).MoveToOuterDisposeScope();
        }

        Tensor? output = null;
        for (long start = 0; start < batch; start += slice)
        {
            long count = Math.Min(slice, batch - start);
            using var part = conv.call(input.narrow(0, start, count));
            // The output takes the layout libtorch chose for the first slice, so that channels-last stays channels-last.
            output ??= empty_strided([batch, .. part.shape[1..]], FullBatchStrides(part), part.dtype, part.device);
            using var target = output.narrow(0, start, count);
            target.copy_(part);
        }

        return output!;
    }

    private static long[] FullBatchStrides(Tensor part)
    {
        var (c, h, w) = (part.shape[1], part.shape[2], part.shape[3]);
        var strides = part.stride();
        bool channelsLast = c > 1 && strides[1] == 1 && strides[3] == c && strides[2] == w * c;
        return channelsLast ? [h * w * c, 1, w * c, c] : [c * h * w, h * w, w, 1];
    }
}
