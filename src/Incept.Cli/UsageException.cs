namespace Incept.Cli;

/// <summary>A command line whose options contradict each other or are out of range: exit code <see cref="InceptCli.Usage"/>.</summary>
internal sealed class UsageException(string message) : InceptException(message);
