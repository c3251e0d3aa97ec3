namespace Incept.Reproduce;

/// <summary>
/// One claim of the Inception papers that Incept can check: the paper, its statement and figure, what the
/// experiment measures, and a quick and a full budget. <see cref="ClaimRegistry"/> lists them; <see cref="Reproduction"/>
/// runs one.
/// </summary>
public sealed class Claim
{
    internal Claim(string name, string paper, string source, string statement, string paperFigure, string measures,
        Budget quick, Budget full, Func<ExperimentContext, ClaimOutcome> experiment)
    {
        Name = name;
        Paper = paper;
        Source = source;
        Statement = statement;
        PaperFigure = paperFigure;
        Measures = measures;
        Quick = quick;
        Full = full;
        Experiment = experiment;
    }

    /// <summary>The claim's name on the command line (such as <c>batchnorm</c>).</summary>
    public string Name { get; }

    /// <summary>The paper that makes the claim.</summary>
    public string Paper { get; }

    /// <summary>Where in the paper: section, table or figure.</summary>
    public string Source { get; }

    /// <summary>The paper's statement, in its words where they are short enough.</summary>
    public string Statement { get; }

    /// <summary>The paper's figure, in a few words (such as <c>14× fewer steps</c>).</summary>
    public string PaperFigure { get; }

    /// <summary>What the experiment measures.</summary>
    public string Measures { get; }

    /// <summary>The budget of <c>--quick</c>: at most about 15 minutes on 2 CPU cores.</summary>
    public Budget Quick { get; }

    /// <summary>The budget of the full run.</summary>
    public Budget Full { get; }

    /// <summary>Whether the experiment trains models (otherwise it only counts, and its budgets do not matter).</summary>
    public bool Trains => Full.EstimatedMinutes > 0;

    internal Func<ExperimentContext, ClaimOutcome> Experiment { get; }
}

/// <summary>What a claim's experiment concludes; the runner adds the runs, plots and settings.</summary>
/// <param name="MeasuredFigure">The measured figure, in a few words, beside the paper's.</param>
/// <param name="Verdict">The verdict.</param>
/// <param name="Reason">Why.</param>
/// <param name="Measurements">Every measured quantity.</param>
/// <param name="Setup">How the experiment was set up.</param>
/// <param name="Notes">Where it differs from the paper's.</param>
internal sealed record ClaimOutcome(
    string MeasuredFigure, Verdict Verdict, string Reason, IReadOnlyList<Measurement> Measurements,
    IReadOnlyList<string> Setup, IReadOnlyList<string> Notes);

/// <summary>A claim name that <see cref="ClaimRegistry"/> does not know.</summary>
public sealed class UnknownClaimException : InceptException
{
    /// <summary>Creates the exception for <paramref name="name"/>, listing the known claims.</summary>
    public UnknownClaimException(string name, IEnumerable<string> known)
        : base($"Unknown claim '{name}'. Known claims: {string.Join(", ", known)} (see 'incept reproduce --list').")
    {
        Name = name;
    }

    /// <summary>Creates the exception with a generic message.</summary>
    public UnknownClaimException() { }

    /// <summary>Creates the exception with a message.</summary>
    public UnknownClaimException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public UnknownClaimException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The name that was asked for.</summary>
    public string Name { get; } = "";
}
