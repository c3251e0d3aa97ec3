using Incept.Reproduce.Claims;

namespace Incept.Reproduce;

/// <summary>The one explicit table of the papers' claims that <c>incept reproduce</c> checks.</summary>
public static class ClaimRegistry
{
    /// <summary>Every claim, in the order of the papers' arguments.</summary>
    public static IReadOnlyList<Claim> All { get; } =
    [
        FactorizationClaim.Create(),
        SparseModulesClaim.Create(),
        BatchNormClaim.Create(),
        LabelSmoothingClaim.Create(),
        AuxClassifiersClaim.Create(),
        ResidualClaim.Create(),
        ResidualScalingClaim.Create(),
    ];

    /// <summary>The claims' names.</summary>
    public static IEnumerable<string> Names => All.Select(c => c.Name);

    /// <summary>The claim called <paramref name="name"/> (case and '_' for '-' ignored); throws <see cref="UnknownClaimException"/> listing the names otherwise.</summary>
    public static Claim Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var wanted = name.Trim().Replace('_', '-');
        return All.FirstOrDefault(c => string.Equals(c.Name, wanted, StringComparison.OrdinalIgnoreCase))
            ?? throw new UnknownClaimException(name, Names);
    }
}
