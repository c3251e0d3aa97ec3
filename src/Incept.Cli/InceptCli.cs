using System.CommandLine;
using System.CommandLine.Invocation;
using Incept.Cli.Commands;
using Incept.Runtime;
using Spectre.Console;

namespace Incept.Cli;

/// <summary>The <c>incept</c> command line: parses arguments, calls the library, renders results.</summary>
public static class InceptCli
{
    /// <summary>Exit code for a user's mistake in a file, a value or a shape.</summary>
    public const int BadInput = 1;

    /// <summary>Exit code for an unknown name or malformed command line.</summary>
    public const int Usage = 2;

    /// <summary>Exit code when libtorch cannot be loaded.</summary>
    public const int NativeFailure = 3;

    /// <summary>Builds the root command with every subcommand.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand("Incept: the Inception family of convolutional networks for .NET.");
        root.Subcommands.Add(ModelsCommand.Create());
        root.Subcommands.Add(SummaryCommand.Create());
        root.Subcommands.Add(WeightsCommand.Create());
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(PredictCommand.Create());
        root.Subcommands.Add(FeaturesCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(CamCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(ReproduceCommand.Create());
        return root;
    }

    /// <summary>Runs the command line and returns the process exit code.</summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= System.Console.Out;
        error ??= System.Console.Error;
        var config = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        TorchRuntime.Warning = message => error.WriteLine($"warning: {message}");
        try
        {
            TorchRuntime.OneDnn = OneDnnPolicyFrom(Environment.GetEnvironmentVariable(OneDnnSwitch));
            TorchRuntime.MklAvx512 = MklPolicyFrom(Environment.GetEnvironmentVariable(MklSwitch));
            // A bare "incept" shows what it can do, as "incept --help" does, rather than a one-line error.
            var parsed = Build().Parse(args.Length == 0 ? ["--help"] : args);
            if (parsed.Action is ParseErrorAction)
            {
                foreach (var line in ParseErrors.Describe(parsed)) error.WriteLine(line);
                return Usage;
            }

            return parsed.Invoke(config);
        }
        catch (NativeLibraryException e)
        {
            error.WriteLine($"error: {e.Message}");
            return NativeFailure;
        }
        catch (Exception e) when (e is UnknownModelException or Reproduce.UnknownClaimException or UsageException)
        {
            error.WriteLine($"error: {e.Message}");
            return Usage;
        }
        catch (InceptException e)
        {
            error.WriteLine($"error: {e.Message}");
            return BadInput;
        }
    }

    /// <summary>
    /// The environment variable that chooses <see cref="TorchRuntime.OneDnn"/>: <c>auto</c> (the default: oneDNN unless
    /// the start-up convolution check fails), <c>on</c> (oneDNN unchecked) or <c>off</c>.
    /// </summary>
    public const string OneDnnSwitch = "INCEPT_ONEDNN";

    internal static OneDnnPolicy OneDnnPolicyFrom(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => OneDnnPolicy.Auto,
        "on" or "1" => OneDnnPolicy.On,
        "off" or "0" => OneDnnPolicy.Off,
        _ => throw new UsageException($"{OneDnnSwitch}={value} is not a setting: use auto, on or off."),
    };

    /// <summary>
    /// The environment variable that chooses <see cref="TorchRuntime.MklAvx512"/>: <c>auto</c> (the default: MKL's
    /// AVX-512 code path on non-Intel CPUs that have AVX-512, kept if its matrix products pass a check) or <c>off</c>.
    /// </summary>
    public const string MklSwitch = "INCEPT_MKL_AVX512";

    internal static MklPolicy MklPolicyFrom(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => MklPolicy.Auto,
        "off" or "0" => MklPolicy.Off,
        _ => throw new UsageException($"{MklSwitch}={value} is not a setting: use auto or off."),
    };

    /// <summary>A Spectre console that writes to <paramref name="writer"/>.</summary>
    internal static IAnsiConsole Console(TextWriter writer)
    {
        bool terminal = writer == System.Console.Out && !System.Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
        // Tables written to a file or pipe keep their rows on one line.
        if (!terminal) console.Profile.Width = 240;
        return console;
    }
}
