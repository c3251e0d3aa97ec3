using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// Runs an inference convolution in slices of the batch when libtorch's own convolution would otherwise allocate one
/// large im2col buffer for the whole batch.
/// </summary>
/// <remarks>
/// Without oneDNN, libtorch convolves on the CPU by unfolding the input into columns (C·kh·kw rows by H'·W' columns per
/// image) and multiplying by the weight, and it allocates the columns of every image in the batch at once: for
/// inception_v3's second convolution at batch 16 that is 398 MB, more than all the network's activations at that point.
/// It multiplies image by image anyway, so slicing the batch keeps the values;
/// it only bounds that buffer. 1×1 convolutions with stride 1 and no padding use the input as its own columns and are
/// never split. Inference only (the fast engine's folded units): each slice is copied into the output as soon as it
/// is computed, which autograd would not follow. (With autograd, slices joined by <c>cat</c> would bound the backward
/// pass's buffers too, but cost a few per cent of a training step and show hooks on the convolution one slice at a
/// time; docs/benchmarks.md.)
/// </remarks>
internal static class BatchSplitConvolution
{
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
    /// within <paramref name="budgetBytes"/> (but at least one image per thread); in one call when the whole batch fits or
    /// the budget is 0.
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
        Tensor? output = null;
        for (long start = 0; start < batch; start += slice)
        {
            long count = Math.Min(slice, batch - start);
            using var images = input.narrow(0, start, count);
            using var part = conv.call(images);
            // The output takes the layout libtorch chose for the first slice, so that channels-last stays channels-last.
            if (output is null)
            {
                long[] shape = [batch, .. part.shape[1..]];
                bool channelsLast = MemoryFormat.IsChannelsLast(part);
                output = channelsLast
                    ? empty_strided(shape, MemoryFormat.ChannelsLastStrides(shape), part.dtype, part.device)
                    : empty(shape, part.dtype, part.device);
            }

            using var target = output.narrow(0, start, count);
            target.copy_(part);
        }

        return output!;
    }
}
