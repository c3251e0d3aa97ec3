using System.Text.Json;
using Incept.Cli;
using Incept.Registry;

namespace Incept.Tests.Cli;

public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void Models_json_lists_every_registered_model_with_its_numbers()
    {
        var (code, output, _) = Run("models", "--format", "json");
        Assert.Equal(0, code);
        var rows = JsonDocument.Parse(output).RootElement.EnumerateArray().ToList();
        Assert.Equal(ModelRegistry.Names, rows.Select(r => r.GetProperty("name").GetString()));
        var v3 = rows.Single(r => r.GetProperty("name").GetString() == "inception_v3");
        Assert.Equal(23_834_568, v3.GetProperty("params").GetInt64());
        Assert.Equal(299, v3.GetProperty("input_size").GetInt32());
        Assert.Equal(ModelRegistry.Get("inception_v3").Macs, v3.GetProperty("macs").GetInt64());
    }

    [Fact]
    public void Models_table_shows_names_and_costs()
    {
        var (code, output, _) = Run("models");
        Assert.Equal(0, code);
        Assert.Contains("googlenet_paper", output, StringComparison.Ordinal);
        Assert.Contains("1.583 G", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Summary_json_has_layers_that_add_up_to_the_totals()
    {
        var (code, output, _) = Run("summary", "googlenet", "--format", "json");
        Assert.Equal(0, code);
        var root = JsonDocument.Parse(output).RootElement;
        Assert.Equal("googlenet", root.GetProperty("model").GetString());
        Assert.Equal(224, root.GetProperty("input_size").GetInt32());
        var layers = root.GetProperty("layers").EnumerateArray().ToList();
        Assert.Equal(root.GetProperty("macs").GetInt64(), layers.Sum(l => l.GetProperty("macs").GetInt64()));
        Assert.Equal(root.GetProperty("params").GetInt64(), layers.Sum(l => l.GetProperty("params").GetInt64()));
        Assert.Equal(6_624_904, root.GetProperty("params").GetInt64());
        var conv1 = layers.First(l => l.GetProperty("name").GetString() == "conv1");
        Assert.Equal([1, 64, 112, 112], conv1.GetProperty("output_shape").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void Summary_table_of_the_paper_model_shows_table_1_columns()
    {
        var (code, output, _) = Run("summary", "googlenet_paper", "--input-size", "224");
        Assert.Equal(0, code);
        foreach (var column in new[] { "#1×1", "#3×3 reduce", "#5×5 reduce", "pool proj", "inception4e", "total" })
            Assert.Contains(column, output, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_model_lists_the_known_names_and_exits_with_2()
    {
        var (code, output, error) = Run("summary", "inception_v9");
        Assert.Equal(2, code);
        Assert.Empty(output);
        Assert.Contains("Unknown model 'inception_v9'", error, StringComparison.Ordinal);
        Assert.Contains("googlenet", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_too_small_input_size_is_one_line_and_exit_code_1()
    {
        var (code, _, error) = Run("summary", "googlenet", "--input-size", "8");
        Assert.Equal(1, code);
        Assert.Contains("at least 15", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public void A_native_load_failure_is_explained_with_its_real_cause()
    {
        var message = Incept.Runtime.TorchRuntime.Explain("/x/libLibTorchSharp.so: version `GLIBCXX_3.4.32' not found (required by /x/libLibTorchSharp.so)");
        Assert.Contains("libstdc++", message, StringComparison.Ordinal);
        Assert.Contains("GLIBCXX_3.4.32", message, StringComparison.Ordinal);
        Assert.Contains("libtorch-cpu-linux-x64", Incept.Runtime.TorchRuntime.Explain(null), StringComparison.Ordinal);
    }

    [Fact]
    public void Summary_takes_width_and_small_input_and_reports_them_in_json()
    {
        var (code, output, error) = Run("summary", "inception_v3", "--width", "0.25", "--small-input", "--format", "json");
        Assert.True(code == 0, error);
        var root = JsonDocument.Parse(output).RootElement;
        Assert.Equal(0.25, root.GetProperty("width").GetDouble());
        Assert.True(root.GetProperty("small_input").GetBoolean());
        Assert.Equal(28, root.GetProperty("input_size").GetInt32());
        var layers = root.GetProperty("layers").EnumerateArray().ToList();
        var mixed5b = layers.Single(l => l.GetProperty("name").GetString() == "Mixed_5b");
        Assert.Equal([1, 64, 14, 14], mixed5b.GetProperty("output_shape").EnumerateArray().Select(e => e.GetInt32()));

        (code, output, _) = Run("summary", "googlenet", "--format", "json");
        Assert.Equal(0, code);
        root = JsonDocument.Parse(output).RootElement;
        Assert.Equal(1.0, root.GetProperty("width").GetDouble());
        Assert.False(root.GetProperty("small_input").GetBoolean());
    }

    [Fact]
    public void A_width_out_of_range_is_one_line_and_exit_code_1()
    {
        var (code, _, error) = Run("summary", "googlenet", "--width", "2");
        Assert.Equal(1, code);
        Assert.Contains("between 0.25 and 1", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public void Incept_without_a_command_prints_the_help_with_every_command_and_exits_with_0()
    {
        var (code, output, error) = Run();
        Assert.Equal(0, code);
        Assert.Empty(error);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        foreach (var command in InceptCli.Build().Subcommands)
            Assert.Contains(command.Name, output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "predict", "photo.jpg" }, "Option '--weights' is required; see 'incept predict --help' for the options.")]
    [InlineData(new[] { "train", "--epochs", "abc" }, "'abc' is not a valid value for --epochs, which takes a whole number; see 'incept train --help'")]
    [InlineData(new[] { "train", "--lr", "fast" }, "'fast' is not a valid value for --lr, which takes a number;")]
    [InlineData(new[] { "trian" }, "Unrecognized command or argument 'trian'; see 'incept --help' for the options.")]
    [InlineData(new[] { "models", "--format", "xml" }, "Argument 'xml' not recognized. Must be one of: 'table', 'json'; see 'incept models --help'")]
    public void A_malformed_command_line_is_one_line_pointing_at_the_help_and_exit_code_2(string[] args, string expected)
    {
        var (code, output, error) = Run(args);
        Assert.Equal(InceptCli.Usage, code);
        Assert.Empty(output);
        Assert.Single(error.Trim().Split('\n'));
        Assert.StartsWith("error: ", error, StringComparison.Ordinal);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }
}
