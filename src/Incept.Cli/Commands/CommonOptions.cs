using System.CommandLine;
using System.Text.Json;
using Incept.Training;

namespace Incept.Cli.Commands;

/// <summary>Options and output helpers shared by the commands.</summary>
internal static class CommonOptions
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    /// <summary>Compact JSON on one line, for results a script reads from the last line of output.</summary>
    public static readonly JsonSerializerOptions JsonLine = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static Option<string> Format()
    {
        var option = new Option<string>("--format")
        {
            Description = "Output format: table or json.",
            DefaultValueFactory = _ => "table",
        };
        option.AcceptOnlyFromAmong("table", "json");
        return option;
    }

    /// <summary>The value of <see cref="Precision"/> that selects bfloat16.</summary>
    public const string BFloat16 = "bfloat16";

    /// <summary><c>--tta none|flip</c>: the views each image is scored over when evaluating.</summary>
    public static Option<string> Tta()
    {
        var option = new Option<string>("--tta")
        {
            Description = "Test-time augmentation: none, or flip (score each image as the mean of the class probabilities of it and its mirror image; twice the evaluation time).",
            DefaultValueFactory = _ => "none",
        };
        option.AcceptOnlyFromAmong([.. TestTimeAugmentationNames.Names]);
        return option;
    }

    /// <summary><c>--precision float32|bfloat16</c>: the number format the work is computed in, as <paramref name="description"/> says.</summary>
    public static Option<string> Precision(string description)
    {
        var option = new Option<string>("--precision")
        {
            Description = description,
            DefaultValueFactory = _ => "float32",
        };
        option.AcceptOnlyFromAmong("float32", BFloat16);
        return option;
    }

    public static string Giga(long value) => $"{value / 1e9:0.000} G";

    public static string Millions(long value) => $"{value / 1e6:0.000} M";
}
