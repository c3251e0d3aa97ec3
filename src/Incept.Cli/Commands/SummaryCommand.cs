using System.CommandLine;
using System.Text.Json;
using Incept.Analysis;
using Incept.Runtime;
using Spectre.Console;

namespace Incept.Cli.Commands;

/// <summary><c>incept summary</c>: per-stage output shapes, parameters and multiply-accumulates.</summary>
internal static class SummaryCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "Registered model name (see 'incept models')." };
        var inputSize = new Option<int?>("--input-size") { Description = "Square input size in pixels (default: the model's)." };
        var aux = new Option<bool>("--aux") { Description = "Build, run and count the auxiliary heads." };
        var width = new Option<double>("--width")
        {
            Description = "Width multiplier from 0.25 to 1: every layer's channels times this, rounded to a multiple of 8.",
            DefaultValueFactory = _ => 1.0,
        };
        var smallInput = new Option<bool>("--small-input")
        {
            Description = $"Build the stem for 28–64 pixel images (default input size {ModelSummary.DefaultSmallInputSize}).",
        };
        var format = CommonOptions.Format();
        var command = new Command("summary", "Show a model's stages: output shapes, parameters and multiply-accumulates.") { model, inputSize, aux, width, smallInput, format };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var name = parse.GetValue(model)!;
            Registry.ModelRegistry.Get(name);
            TorchRuntime.EnsureAvailable();
            var summary = ModelSummary.Create(name, parse.GetValue(inputSize), parse.GetValue(aux), parse.GetValue(width), parse.GetValue(smallInput));
            if (parse.GetValue(format) == "json")
            {
                var json = new
                {
                    model = summary.Model, input_size = summary.InputSize, aux = summary.Aux, width = summary.Width, small_input = summary.SmallInput,
                    @params = summary.Params, macs = summary.Macs,
                    layers = summary.Layers.Select(l => new { name = l.Name, output_shape = l.OutputShape, @params = l.Params, macs = l.Macs, columns = l.Columns.Count > 0 ? l.Columns : null }),
                };
                output.WriteLine(JsonSerializer.Serialize(json, CommonOptions.Json));
                return 0;
            }

            var extra = summary.Layers.SelectMany(l => l.Columns.Keys).Distinct().ToList();
            var variant = string.Join(", ", new[]
            {
                summary.Width != 1.0 ? FormattableString.Invariant($"width {summary.Width}") : null,
                summary.SmallInput ? "small-input stem" : null,
                summary.Aux ? "aux heads" : null,
            }.OfType<string>());
            var table = new Table().Title($"{summary.Model} at {summary.InputSize}×{summary.InputSize}{(variant.Length > 0 ? $" with {variant}" : "")}");
            table.AddColumns("stage", "output");
            foreach (var c in extra) table.AddColumn(new TableColumn(Markup.Escape(c)).RightAligned());
            table.AddColumn(new TableColumn("params").RightAligned());
            table.AddColumn(new TableColumn("MACs").RightAligned());
            foreach (var l in summary.Layers)
            {
                var cells = new List<string> { l.Name, l.OutputShape.Count == 0 ? "–" : string.Join(" × ", l.OutputShape.Skip(1)) };
                cells.AddRange(extra.Select(c => l.Columns.TryGetValue(c, out var v) ? $"{v}" : ""));
                cells.Add(l.Params == 0 ? "" : $"{l.Params:N0}");
                cells.Add(l.Macs == 0 ? "" : CommonOptions.Giga(l.Macs));
                table.AddRow(cells.ToArray());
            }

            var total = new List<string> { "total", "" };
            total.AddRange(extra.Select(_ => ""));
            total.Add($"{summary.Params:N0}");
            total.Add(CommonOptions.Giga(summary.Macs));
            table.AddRow(total.Select(t => $"[bold]{t}[/]").ToArray());
            InceptCli.Console(output).Write(table);
            return 0;
        });
        return command;
    }
}
