using System.CommandLine;
using System.Text.Json;
using Incept.Weights;
using Spectre.Console;

namespace Incept.Cli.Commands;

/// <summary><c>incept weights</c>: the known public weight sets, where to get them and how to feed them.</summary>
internal static class WeightsCommand
{
    public static Command Create()
    {
        var format = CommonOptions.Format();
        var command = new Command("weights", "List the public pretrained weights Incept can load, with their URLs and preprocessing.") { format };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(format) == "json")
            {
                var rows = WeightsRegistry.All.Select(w => new
                {
                    name = w.Name, arch = w.Arch, tag = w.Tag, source = w.Source, url = w.Url, file_name = w.FileName, sha256 = w.Sha256,
                    key_format = w.Format.ToString().ToLowerInvariant(), num_classes = w.NumClasses, has_aux = w.HasAux, labels = w.Labels,
                    top1 = w.Top1, license = w.License, notes = w.Notes,
                    preprocess = new
                    {
                        input_size = w.Preprocess.InputSize, crop_fraction = w.Preprocess.CropFraction, interpolation = w.Preprocess.Interpolation,
                        mean = w.Preprocess.Mean, std = w.Preprocess.Std, bgr = w.Preprocess.Bgr, scale = w.Preprocess.Scale,
                    },
                });
                output.WriteLine(JsonSerializer.Serialize(rows, CommonOptions.Json));
                return 0;
            }

            var table = new Table().AddColumns("name", "classes", "input", "mean / std", "source", "url");
            foreach (var w in WeightsRegistry.All)
            {
                var p = w.Preprocess;
                table.AddRow(
                    Markup.Escape(w.Name), $"{w.NumClasses}", $"{p.InputSize} (crop {p.CropFraction:0.###}, {p.Interpolation})",
                    Markup.Escape($"{string.Join("/", p.Mean)} / {string.Join("/", p.Std)}{(p.Bgr ? " BGR" : "")}{(p.Scale > 1 ? " 0–255" : "")}"),
                    Markup.Escape(w.Source), Markup.Escape(w.Url));
            }

            InceptCli.Console(output).Write(table);
            return 0;
        });
        return command;
    }
}
