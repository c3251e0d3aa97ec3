using System.CommandLine;
using Incept.Runtime;
using Incept.Weights;
using static TorchSharp.torch;

namespace Incept.Cli.Commands;

/// <summary>The options that say how to load weights, shared by every command that reads a checkpoint.</summary>
internal sealed class WeightsOptions
{
    public Option<string?> Model { get; } = new("--model") { Description = "Model name (arch or arch.tag); optional for files Incept saved or published weights." };

    public Option<string> From { get; } = new("--from") { Description = "Key scheme of the file: auto, torchvision, timm, facenet, cadene.", DefaultValueFactory = _ => "auto" };

    public Option<bool> NonStrict { get; } = new("--non-strict") { Description = "Load what matches and ignore missing, unexpected or mis-shaped keys." };

    public Option<bool> SkipClassifier { get; } = new("--skip-classifier") { Description = "Load everything but the classifier (for a new class count)." };

    public Option<bool> DropBackground { get; } = new("--drop-background") { Description = "For 1001-class TensorFlow ports: drop class 0 (background) to keep ImageNet's 1000." };

    public Option<string> Device { get; } = new("--device") { Description = "cpu or cuda.", DefaultValueFactory = _ => "cpu" };

    public WeightsOptions()
    {
        From.AcceptOnlyFromAmong("auto", "torchvision", "timm", "facenet", "cadene");
        Device.AcceptOnlyFromAmong("cpu", "cuda");
    }

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(From);
        command.Options.Add(NonStrict);
        command.Options.Add(SkipClassifier);
        command.Options.Add(DropBackground);
        command.Options.Add(Device);
    }

    public CheckpointOptions Read(ParseResult parse) => new()
    {
        Model = parse.GetValue(Model),
        From = Enum.Parse<KeyFormat>(parse.GetValue(From)!, ignoreCase: true),
        Strict = !parse.GetValue(NonStrict),
        SkipClassifier = parse.GetValue(SkipClassifier),
        DropBackground = parse.GetValue(DropBackground),
        Device = ParseDevice(parse.GetValue(Device)!),
    };

    public static Device ParseDevice(string name)
    {
        TorchRuntime.EnsureAvailable();
        if (name == "cuda" && !cuda.is_available())
            throw new InceptException("CUDA is not available: this build of Incept uses libtorch for the CPU, or no GPU is present. Use --device cpu.");
        return device(name);
    }
}
