using System.CommandLine;
using System.Text.Json;
using Incept.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Cli.Commands;

/// <summary><c>incept predict</c>: logits for an N×C×H×W tensor (the scripting path; images come later).</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var weightsFile = new Option<string>("--weights") { Description = "Checkpoint to load.", Required = true };
        var inputTensor = new Option<string>("--input-tensor") { Description = "float32 or float64 N×C×H×W .npy file, already preprocessed.", Required = true };
        var saveLogits = new Option<string>("--save-logits") { Description = ".npy file to write the float32 N×classes logits to.", Required = true };
        var format = CommonOptions.Format();
        var weights = new WeightsOptions();
        var command = new Command("predict", "Run a model on a preprocessed input tensor and save its logits.") { weightsFile, inputTensor, saveLogits, format };
        weights.AddTo(command);
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var options = weights.Read(parse);
            using var loaded = CheckpointLoader.Load(parse.GetValue(weightsFile)!, options);
            using var input = Npy.Read(parse.GetValue(inputTensor)!);
            if (input.dtype is not (ScalarType.Float32 or ScalarType.Float64))
                throw new InceptException($"The input tensor must be float32 or float64; '{parse.GetValue(inputTensor)}' is {input.dtype}.");
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var x = input.to_type(ScalarType.Float32).to(options.Device ?? CPU);
            var logits = loaded.Model.call(x).Logits.cpu();
            var path = parse.GetValue(saveLogits)!;
            Npy.Write(path, logits);
            if (parse.GetValue(format) == "json")
                output.WriteLine(JsonSerializer.Serialize(new { model = loaded.Spec.Name, logits = path, shape = logits.shape }, CommonOptions.Json));
            else
                output.WriteLine($"Wrote {path}: logits [{string.Join(", ", logits.shape)}] from {loaded.Spec.Name}.");
            return 0;
        });
        return command;
    }
}
