using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace Incept.Cli;

/// <summary>
/// Command-line mistakes as one line each, naming the mistake and where the options are listed, in place of
/// System.CommandLine's whole help text.
/// </summary>
internal static partial class ParseErrors
{
    /// <summary>The lines to print for the errors of <paramref name="parsed"/>.</summary>
    public static IReadOnlyList<string> Describe(ParseResult parsed)
    {
        string help = $"see '{CommandPath(parsed.CommandResult)} --help' for the options.";
        var messages = parsed.Errors.Select(e => Plain(e.Message)).ToList();
        // "incept trian" reports the unknown word and the missing command; the unknown word says it all.
        if (messages.Count > 1) messages.RemoveAll(m => m.StartsWith("Required command was not provided", StringComparison.Ordinal));
        return [.. messages.Select(m => $"error: {m}; {help}")];
    }

    /// <summary>The message on one line, with .NET type names replaced by what the value should look like.</summary>
    internal static string Plain(string message)
    {
        var m = CannotParse().Match(message);
        if (m.Success)
        {
            string type = m.Groups["type"].Value;
            string kind = type.Contains("Int32", StringComparison.Ordinal) || type.Contains("Int64", StringComparison.Ordinal) ? "a whole number"
                : type.Contains("Double", StringComparison.Ordinal) || type.Contains("Single", StringComparison.Ordinal) ? "a number"
                : "a value of another kind";
            return $"'{m.Groups["value"].Value}' is not a valid value for {m.Groups["option"].Value}, which takes {kind}";
        }

        // "Must be one of:\n\t'table'\n\t'json'" becomes "Must be one of: 'table', 'json'".
        string flat = Choices().Replace(message, "', '");
        flat = ListStart().Replace(flat, ": ");
        return flat.Trim().TrimEnd('.');
    }

    /// <summary>"incept" followed by the names of the subcommands that <paramref name="command"/> is under.</summary>
    private static string CommandPath(CommandResult command)
    {
        var names = new List<string>();
        for (SymbolResult? r = command; r is CommandResult c && c.Parent is not null; r = c.Parent) names.Add(c.Command.Name);
        names.Add("incept");
        names.Reverse();
        return string.Join(' ', names);
    }

    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for option '(?<option>[^']*)' as expected type '(?<type>[^']*)'")]
    private static partial Regex CannotParse();

    [GeneratedRegex(@"'\s*\n\s*'")]
    private static partial Regex Choices();

    [GeneratedRegex(@":\s*\n\s*")]
    private static partial Regex ListStart();
}
