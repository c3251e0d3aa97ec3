using System.CommandLine;
using System.Text.Json;
using Incept.Registry;
using Spectre.Console;

namespace Incept.Cli.Commands;

/// <summary><c>incept models</c>: the registry as a table or JSON.</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var format = CommonOptions.Format();
        var command = new Command("models", "List the registered models with their size and cost.") { format };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var specs = ModelRegistry.All;
            if (parse.GetValue(format) == "json")
            {
                var rows = specs.Select(s => new
                {
                    name = s.Name, family = s.Family, @params = s.Params, params_with_aux = s.ParamsWithAux, macs = s.Macs,
                    input_size = s.InputSize, min_input_size = s.MinInputSize, paper = s.Paper, reference = s.Reference,
                });
                output.WriteLine(JsonSerializer.Serialize(rows, CommonOptions.Json));
                return 0;
            }

            var table = new Table().AddColumns("name", "family", "params", "MACs", "input", "paper");
            table.Columns[2].RightAligned();
            table.Columns[3].RightAligned();
            foreach (var s in specs)
                table.AddRow(s.Name, s.Family, CommonOptions.Millions(s.Params), CommonOptions.Giga(s.Macs), $"{s.InputSize}", Markup.Escape(s.Paper.Split(" (")[0]));
            InceptCli.Console(output).Write(table);
            return 0;
        });
        return command;
    }
}
