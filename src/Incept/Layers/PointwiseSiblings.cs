using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Layers;

/// <summary>
/// Folded 1×1 conv units that read the same input, such as the first layers of an Inception module's branches,
/// computed as one matrix product: the members' weights side by side, one ReLU, and each member's output a channel
/// slice of the result.
/// </summary>
/// <remarks>
/// Each branch of an Inception module starts with a narrow 1×1 convolution of the module's input (inception_resnet_v1's
/// 35×35 block: three of 256 → 32). One product with all their output channels keeps the cores busier than three
/// thin ones and calls libtorch once (that block at batch 1: 133 µs as three convolutions, 67 µs as one product). The
/// first member called with an input computes every member's output; the others take their slice while the input is
/// the same tensor object, and the shared result is let go once every member has taken its slice, so that no
/// activation outlives its block. A member called with another input gets a fresh product: never a stale one.
/// Inference copies only (not thread-safe, like the engine that holds it).
/// </remarks>
internal sealed class PointwiseSiblings : IDisposable
{
    private readonly Tensor weightRows;
    private readonly Tensor? bias;
    private readonly long[] offsets;
    private readonly long[] widths;
    private Tensor? input;
    private Tensor? output;
    private int served;

    private PointwiseSiblings(Tensor weightRows, Tensor? bias, long[] offsets, long[] widths)
    {
        this.weightRows = weightRows;
        this.bias = bias;
        this.offsets = offsets;
        this.widths = widths;
    }

    /// <summary>How many units share the product.</summary>
    public int Members => widths.Length;

    /// <summary>Whether the shared result of the last input is still held (for tests).</summary>
    internal bool HoldsOutput => output is not null;

    /// <summary>
    /// Whether <paramref name="conv"/> can be a member: a 1×1 convolution with stride 1, no padding, dilation or groups,
    /// on the CPU in float32 or float64.
    /// </summary>
    public static bool CanJoin(Conv2d conv)
    {
        ArgumentNullException.ThrowIfNull(conv);
        var weight = conv.weight;
        if (weight is null || weight.dim() != 4 || weight.shape[2] != 1 || weight.shape[3] != 1) return false;
        if (conv.stride.Any(s => s != 1) || conv.dilation.Any(d => d != 1) || conv.groups != 1) return false;
        if (conv.padding_type is not null || conv.padding is { } padding && padding.Any(p => p != 0)) return false;
        return weight.device_type == DeviceType.CPU && weight.dtype is ScalarType.Float32 or ScalarType.Float64;
    }

    /// <summary>
    /// The shared product of <paramref name="convs"/> (at least two, all able to join, with the same input channels,
    /// dtype and bias presence), member <c>i</c> being <c>convs[i]</c>. The weights are copied, so the convolutions
    /// keep their own for any other use.
    /// </summary>
    public static PointwiseSiblings Create(IReadOnlyList<Conv2d> convs)
    {
        ArgumentNullException.ThrowIfNull(convs);
        if (convs.Count < 2) throw new ArgumentException("Siblings are two convolutions or more.", nameof(convs));
        if (!convs.All(CanJoin)) throw new ArgumentException("Only 1×1 convolutions with stride 1 and no padding, dilation or groups can share a product.", nameof(convs));
        long channels = convs[0].weight!.shape[1];
        var dtype = convs[0].weight!.dtype;
        if (convs.Any(c => c.weight!.shape[1] != channels || c.weight!.dtype != dtype))
            throw new ArgumentException("Siblings read the same input: the same input channels and dtype.", nameof(convs));
        bool withBias = convs[0].bias is not null;
        if (convs.Any(c => (c.bias is not null) != withBias))
            throw new ArgumentException("Either every sibling has a bias or none has.", nameof(convs));

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var rows = cat(convs.Select(c => c.weight!.reshape(c.weight!.shape[0], channels)).ToArray(), 0).t().contiguous();
        var bias = withBias ? cat(convs.Select(c => c.bias!).ToArray(), 0).contiguous() : null;
        var widths = convs.Select(c => c.weight!.shape[0]).ToArray();
        var offsets = new long[widths.Length];
        for (int i = 1; i < widths.Length; i++) offsets[i] = offsets[i - 1] + widths[i - 1];
        return new PointwiseSiblings(rows.DetachFromDisposeScope(), bias?.DetachFromDisposeScope(), offsets, widths);
    }

    /// <summary>
    /// Member <paramref name="member"/>'s output for <paramref name="x"/>: the ReLU of its convolution, a channel slice
    /// of the shared product (channels-last where <paramref name="x"/> is).
    /// </summary>
    public Tensor Forward(int member, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (output is null || !ReferenceEquals(input, x))
        {
            Release();
            using var scope = NewDisposeScope();
            long batch = x.shape[0], height = x.shape[2], width = x.shape[3];
            var rows = x.permute(0, 2, 3, 1).reshape(batch * height * width, x.shape[1]);
            var product = bias is null ? rows.mm(weightRows) : addmm(bias, rows, weightRows, 1f, 1f);
            output = product.relu_().view(batch, height, width, weightRows.shape[1]).permute(0, 3, 1, 2).DetachFromDisposeScope();
            input = x;
            served = 0;
        }

        var slice = output.narrow(1, offsets[member], widths[member]);
        if (++served == widths.Length) Release();
        return slice;
    }

    /// <summary>Lets go of the shared result; the slices handed out keep their values.</summary>
    private void Release()
    {
        output?.Dispose();
        output = null;
        input = null;
        served = 0;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Release();
        weightRows.Dispose();
        bias?.Dispose();
    }
}
