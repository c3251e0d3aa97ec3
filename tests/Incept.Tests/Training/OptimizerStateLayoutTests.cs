using Incept.Layers;
using Incept.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

public sealed class OptimizerStateLayoutTests
{
    /// <summary>A convolution with a channels-last weight, one optimizer step taken on a fixed input.</summary>
    private static (Conv2d Conv, OptimizerHelper Optimizer) Stepped(Func<IEnumerable<Parameter>, OptimizerHelper> make)
    {
        manual_seed(3);
        var conv = nn.Conv2d(4, 6, 3);
        MemoryFormat.ToChannelsLast(conv);
        var optimizer = make(conv.parameters());
        using var scope = NewDisposeScope();
        var x = randn(2, 4, 5, 5);
        optimizer.zero_grad();
        var y = conv.call(x);
        y.mul(y).sum().backward();
        optimizer.step();
        return (conv, optimizer);
    }

    public static TheoryData<string> Optimizers => ["torch_sgd", "sgd", "adamw", "tf_rmsprop"];

    private static OptimizerHelper Make(string kind, IEnumerable<Parameter> ps) => kind switch
    {
        "torch_sgd" => optim.SGD(ps, 0.1, momentum: 0.9),
        "sgd" => new Sgd(ps, 0.1, momentum: 0.9, nesterov: true),
        "adamw" => optim.AdamW(ps, 0.01),
        _ => new TfRmsProp(ps, 0.01),
    };

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void State_of_channels_last_parameters_saves_and_loads_with_values_and_layout_kept(string kind)
    {
        var (conv, optimizer) = Stepped(ps => Make(kind, ps));
        using var _ = conv;
        using var __ = optimizer;
        var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) OptimizerStateLayout.Save(optimizer, writer);

        var (other, fresh) = Stepped(ps => Make(kind, ps));
        using var ___ = other;
        using var ____ = fresh;
        fresh.step(); // a second step moves its state away from the saved one, so the load has to overwrite it
        Assert.False(TensorsOf(fresh.state_dict().State[0])[0].eq(TensorsOf(optimizer.state_dict().State[0])[0]).all().item<bool>());
        stream.Position = 0;
        using (var reader = new BinaryReader(stream)) OptimizerStateLayout.Load(fresh, reader);

        var weight = conv.weight!;
        Assert.Equal([36L, 1, 12, 4], weight.stride());
        var saved = TensorsOf(optimizer.state_dict().State[0]);
        var loaded = TensorsOf(fresh.state_dict().State[0]);
        Assert.NotEmpty(saved);
        Assert.Equal(saved.Count, loaded.Count);
        for (int i = 0; i < saved.Count; i++)
        {
            Assert.True(saved[i].eq(loaded[i]).all().item<bool>(), $"state tensor {i} of {kind} changed in the round trip");
            Assert.Equal(weight.stride(), saved[i].stride());
            Assert.Equal(weight.stride(), loaded[i].stride());
        }
    }

    private static List<Tensor> TensorsOf(OptimizerState state) =>
        [.. state.GetType().GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic)
            .Where(f => f.FieldType == typeof(Tensor))
            .Select(f => f.GetValue(state))
            .OfType<Tensor>()
            .Where(t => t.shape.Length == 4)];
}
