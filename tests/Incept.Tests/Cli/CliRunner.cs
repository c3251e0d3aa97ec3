using Incept.Cli;

namespace Incept.Tests.Cli;

/// <summary>Runs the <c>incept</c> command line in-process and captures what it writes.</summary>
internal static class CliRunner
{
    /// <summary>The exit code, standard output and standard error of <c>incept <paramref name="args"/></c>.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = InceptCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
