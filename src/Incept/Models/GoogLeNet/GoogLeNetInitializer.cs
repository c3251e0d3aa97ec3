using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.GoogLeNet;

/// <summary>The GoogLeNet references' weight initialisation.</summary>
public static class GoogLeNetInitializer
{
    /// <summary>Initialises a freshly built <see cref="GoogLeNet"/> as its reference does.</summary>
    public static void Apply(InceptionModel model)
    {
        if (model is not GoogLeNet net) throw new ArgumentException("GoogLeNetInitializer applies to GoogLeNet only.", nameof(model));
        foreach (var m in net.modules())
        {
            switch (m)
            {
                case Conv2d or Linear when net.Arch.Init == GoogLeNetInit.TruncatedNormal:
                    Init.TruncatedNormal(Weight(m), std: 0.01);
                    break;
                case Conv2d or Linear:
                    nn.init.xavier_uniform_(Weight(m));
                    if (Bias(m) is { } b)
                    {
                        using var fill = 0.2.ToScalar();
                        nn.init.constant_(b, fill);
                    }
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight!);
                    nn.init.zeros_(bn.bias!);
                    break;
            }
        }
    }

    private static TorchSharp.Modules.Parameter Weight(nn.Module m) => m switch
    {
        Conv2d c => c.weight!,
        Linear l => l.weight!,
        _ => throw new ArgumentException("not a conv or linear layer", nameof(m)),
    };

    private static TorchSharp.Modules.Parameter? Bias(nn.Module m) => m switch
    {
        Conv2d c => c.bias,
        Linear l => l.bias,
        _ => null,
    };
}
