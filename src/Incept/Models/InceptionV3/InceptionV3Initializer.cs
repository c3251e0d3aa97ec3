using Incept.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV3;

/// <summary>torchvision's Inception-v3 initialisation: truncated normal (std 0.1, 0.001 for the aux classifier), BN γ = 1, β = 0.</summary>
public static class InceptionV3Initializer
{
    /// <summary>Initialises a freshly built <see cref="InceptionV3"/>.</summary>
    public static void Apply(InceptionModel model)
    {
        if (model is not InceptionV3 net) throw new ArgumentException("InceptionV3Initializer applies to InceptionV3 only.", nameof(model));
        var auxFc = net.AuxFc;
        foreach (var m in net.modules())
        {
            switch (m)
            {
                case Conv2d c:
                    Init.TruncatedNormal(c.weight!, mean: 0, std: 0.1, a: -2, b: 2);
                    break;
                case Linear l:
                    Init.TruncatedNormal(l.weight!, mean: 0, std: ReferenceEquals(l, auxFc) ? 0.001 : 0.1, a: -2, b: 2);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight!);
                    nn.init.zeros_(bn.bias!);
                    break;
            }
        }
    }
}
