using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// Runs an inference convolution of an input with few channels (an RGB or grey image in a network's stem) as one
/// matrix product over a strided view of the input's windows.
/// </summary>
/// <remarks>
/// Without oneDNN, libtorch unfolds a channels-last input window by window in runs of <c>C</c> numbers, three for an
/// RGB image, and googlenet's 7×7 stem then spends more time copying than multiplying (batch 8: 14.9 ms, against
/// 9.9 ms here). Here each window row of <c>kw·C</c> numbers is contiguous in the padded NHWC input, so one strided
/// copy builds the columns, and the product writes NHWC rows, which are the output's channels-last layout. The columns
/// of a batch are built a few images at a time so that they stay within the unit's column budget. Inference only: the
/// product is written into a preallocated output, which autograd would not follow.
/// </remarks>
internal static class FewChannelConvolution
{
    /// <summary>Inputs with at most this many channels take this path.</summary>
    public const long MaxInputChannels = 4;

    /// <summary>
    /// Whether <paramref name="conv"/> on <paramref name="input"/> takes this path: a channels-last CPU input of
    /// float32 or float64 with at most <see cref="MaxInputChannels"/> channels, a kernel larger than 1×1, zero
    /// padding given in numbers, no dilation or groups, and nothing that needs a gradient.
    /// </summary>
    public static bool Applies(Conv2d conv, Tensor input)
    {
        var weight = conv.weight;
        if (weight is null || input.dim() != 4 || input.device_type != DeviceType.CPU) return false;
        if (input.dtype is not (ScalarType.Float32 or ScalarType.Float64) || input.dtype != weight.dtype) return false;
        if (input.shape[1] > MaxInputChannels || conv.groups != 1 || conv.padding_type is not null) return false;
        if (conv.padding_mode != PaddingModes.Zeros || conv.dilation.Any(d => d != 1)) return false;
        if (weight.shape[2] == 1 && weight.shape[3] == 1) return false;
        if (is_grad_enabled() && (input.requires_grad || weight.requires_grad)) return false;
        return input.stride().SequenceEqual(MemoryFormat.ChannelsLastStrides(input.shape));
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

        // NHWC with the padding added: a copy of an input that is small by the condition above.
        var nhwc = input.permute(0, 2, 3, 1);
        if (ph != 0 || pw != 0) nhwc = nn.functional.pad(nhwc, [0, 0, pw, pw, ph, ph]).contiguous();
        long height = nhwc.shape[1], width = nhwc.shape[2];
        long outH = (height - kh) / sh + 1, outW = (width - kw) / sw + 1;
        if (outH <= 0 || outW <= 0) return conv.call(input).MoveToOuterDisposeScope();

        // Columns in (kh, kw, C) order, so the weight is the same permutation of [out, C, kh, kw].
        var weightRows = weight.permute(0, 2, 3, 1).reshape(outChannels, kh * kw * channels).t();
        long rowsPerImage = outH * outW, columnsPerRow = kh * kw * channels;
        long columnBytes = rowsPerImage * columnsPerRow * input.ElementSize;
        long images = budgetBytes > 0 ? Math.Clamp(budgetBytes / columnBytes, 1, batch) : batch;

        var output = empty([batch * rowsPerImage, outChannels], input.dtype, input.device);
        long[] windowShape = [0, outH, outW, kh, kw, channels];
        long[] windowStrides = [height * width * channels, sh * width * channels, sw * channels, width * channels, channels, 1];
        for (long start = 0; start < batch; start += images)
        {
            long count = Math.Min(images, batch - start);
            using var _ = NewDisposeScope();
            windowShape[0] = count;
            var windows = nhwc.as_strided(windowShape, windowStrides, nhwc.storage_offset() + start * windowStrides[0]);
            var columns = windows.reshape(count * rowsPerImage, columnsPerRow);
            var rows = output.narrow(0, start * rowsPerImage, count * rowsPerImage);
            if (conv.bias is null) rows.zero_();
            else rows.copy_(conv.bias.expand(rows.shape));
            rows.addmm_(columns, weightRows, 1f, 1f);
        }

        return output.view(batch, outH, outW, outChannels).permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }
}
