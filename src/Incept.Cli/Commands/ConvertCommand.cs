using System.CommandLine;
using Incept.Runtime;
using Incept.Weights;

namespace Incept.Cli.Commands;

/// <summary><c>incept convert</c>: any supported checkpoint to an Incept safetensors file that rebuilds its model alone.</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "Checkpoint to read (.pth, .pt, .safetensors)." };
        var output = new Argument<string>("output") { Description = "safetensors file to write." };
        var weights = new WeightsOptions();
        var command = new Command("convert", "Check a checkpoint against its model and write it as safetensors with Incept's metadata.") { input, output };
        weights.AddTo(command);
        command.SetAction(parse =>
        {
            var writer = parse.InvocationConfiguration.Output;
            TorchRuntime.EnsureAvailable();
            var target = parse.GetValue(output)!;
            if (!target.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new InceptException($"The output '{target}' must be a .safetensors file.");
            using var loaded = CheckpointLoader.Load(parse.GetValue(input)!, weights.Read(parse));
            CheckpointLoader.Save(target, loaded.Model, loaded.Spec, loaded.Preprocess, loaded.ClassNames);
            writer.WriteLine($"Wrote {target}: {loaded.Spec.Name}, {loaded.Model.NumClasses} classes{(loaded.Model.HasAux ? ", aux heads" : "")}, {loaded.Report.Loaded.Count} tensors loaded.");
            return 0;
        });
        return command;
    }
}
