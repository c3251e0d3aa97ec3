using Incept.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Registry;

/// <summary>Builds registered models: construct, initialise as the reference does, then move to a device.</summary>
/// <remarks>
/// The first model built initialises libtorch through <see cref="Runtime.TorchRuntime.EnsureAvailable()"/>, which
/// also checks that its convolutions compute correctly on this machine (see <see cref="Runtime.ConvolutionSelfTest"/>).
/// </remarks>
public static class ModelFactory
{
    /// <summary>Builds the model called <paramref name="name"/> with <paramref name="config"/> on <paramref name="device"/> (CPU by default).</summary>
    public static InceptionModel Create(string name, ModelConfig? config = null, Device? device = null)
        => Create(ModelRegistry.Get(name), config, device);

    /// <summary>Builds the model described by <paramref name="spec"/>.</summary>
    public static InceptionModel Create(ModelSpec spec, ModelConfig? config = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Runtime.TorchRuntime.EnsureAvailable();
        config ??= new ModelConfig();
        if (config.AuxLogits && !spec.HasAux)
            throw new InceptException($"{spec.Name} has no auxiliary heads; build it without them.");
        var model = spec.Build(config);
        using (no_grad()) spec.Initialize?.Invoke(model);
        if (device is not null && device.type != DeviceType.CPU) model.to(device);
        return model;
    }
}
