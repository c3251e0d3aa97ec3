using Incept.Analysis;
using Incept.Models;
using Incept.Models.GoogLeNet;
using Incept.Registry;

namespace Incept.Reproduce.Claims;

/// <summary>GoogLeNet's 1×1 reductions: the network's cost with and without them.</summary>
internal static class SparseModulesClaim
{
    /// <summary>The paper's budget: 1.5 billion multiply-adds at inference.</summary>
    public const double PaperMacs = 1.5e9;

    /// <summary>Input side of the comparison (the paper's 224).</summary>
    public const int InputSize = 224;

    /// <summary>The "ops" column of the paper's Table 1 for each Inception module, in millions (the paper's rounding).</summary>
    public static readonly IReadOnlyDictionary<string, int> TableOneOps = new Dictionary<string, int>
    {
        ["inception3a"] = 128, ["inception3b"] = 304, ["inception4a"] = 73, ["inception4b"] = 88, ["inception4c"] = 100,
        ["inception4d"] = 119, ["inception4e"] = 170, ["inception5a"] = 54, ["inception5b"] = 71,
    };

    /// <summary>One Inception module's cost with and without the reductions.</summary>
    public sealed record ModuleCost(string Module, long WithReductions, long WithoutReductions)
    {
        /// <summary>How many times more the module costs without its reductions.</summary>
        public double Ratio => (double)WithoutReductions / WithReductions;
    }

    /// <summary>The comparison: per module and in total.</summary>
    public sealed record Comparison(ModelSummary With, ModelSummary Without, IReadOnlyList<ModuleCost> Modules);

    public static Claim Create() => new(
        name: "sparse-modules",
        paper: Papers.V1,
        source: "§4 (Figure 2) and §5",
        statement: "1×1 convolutions that reduce the channels before the expensive 3×3 and 5×5 convolutions keep the Inception network's cost near 1.5 billion multiply-adds at inference; without them the cost would blow up within a few stages.",
        paperFigure: "≈ 1.5 G multiply-adds",
        measures: "googlenet_paper's multiply-accumulates at 224×224, per Inception module and in total, as built (Figure 2b) and with the 3×3 and 5×5 convolutions reading the module's full input (no 1×1 reductions; output widths and pool projections unchanged)",
        quick: new Budget(),
        full: new Budget(),
        experiment: Run);

    /// <summary>Counts googlenet_paper with and without its reductions.</summary>
    public static Comparison Compare()
    {
        var spec = ModelRegistry.Get("googlenet_paper");
        var config = new ModelConfig();
        ModelSummary with, without;
        using (var model = ModelFactory.Create(spec, config)) with = ModelSummary.Create(model, spec.Name, InputSize);
        using (var model = new GoogLeNet(config, GoogLeNetArch.Paper with { Reductions = false }))
            without = ModelSummary.Create(model, spec.Name + " without reductions", InputSize);
        var modules = with.Layers.Where(l => l.Name.StartsWith("inception", StringComparison.Ordinal))
            .Select(l => new ModuleCost(l.Name, l.Macs, without.Layers.Single(w => w.Name == l.Name).Macs)).ToList();
        return new Comparison(with, without, modules);
    }

    private static ClaimOutcome Run(ExperimentContext ctx)
    {
        var c = Compare();
        double total = (double)c.Without.Macs / c.With.Macs;
        double off = c.With.Macs / PaperMacs - 1;
        var measurements = new List<Measurement>
        {
            new("total multiply-accumulates, with reductions", "≈ 1.5 G", $"{Fmt.Macs(c.With.Macs)} ({Fmt.SignedPct(off)} from 1.5 G)"),
            new("total multiply-accumulates, without reductions", "blows up", $"{Fmt.Macs(c.Without.Macs)} ({Fmt.Times(total)})"),
            new("parameters, with / without reductions", "", $"{Fmt.N(c.With.Params)} / {Fmt.N(c.Without.Params)}"),
        };
        foreach (var m in c.Modules)
            measurements.Add(new($"{m.Module}: with / without reductions", TableOneOps.TryGetValue(m.Module, out var ops) ? $"{ops} M (Table 1)" : "", $"{Fmt.Macs(m.WithReductions)} / {Fmt.Macs(m.WithoutReductions)} ({Fmt.Times(m.Ratio)})"));

        ctx.Plot("module_macs.png", path => ReproducePlots.Bars(path, "googlenet_paper at 224×224: multiply-accumulates per Inception module", "MACs (millions)",
            [.. c.Modules.Select(m => m.Module)],
            [("with 1×1 reductions", [.. c.Modules.Select(m => m.WithReductions / 1e6)]), ("without", [.. c.Modules.Select(m => m.WithoutReductions / 1e6)])]));

        bool near = Math.Abs(off) <= 0.10;
        bool blowsUp = total >= 1.5;
        var verdict = near && blowsUp ? Verdict.Supported : Verdict.NotSupported;
        var largest = c.Modules.MaxBy(m => m.Ratio)!;
        string reason = verdict == Verdict.Supported
            ? $"With its reductions the network costs {Fmt.Macs(c.With.Macs)}, within 10 % of the paper's 1.5 G; without them {Fmt.Macs(c.Without.Macs)}, {Fmt.Times(total)} as much ({largest.Module} {Fmt.Times(largest.Ratio)})."
            : $"With its reductions the network costs {Fmt.Macs(c.With.Macs)} and without them {Fmt.Macs(c.Without.Macs)} ({Fmt.Times(total)}): {(near ? "" : "not within 10 % of 1.5 G; ")}{(blowsUp ? "" : "the reductions save less than a third.")}";
        return new ClaimOutcome(
            MeasuredFigure: $"{Fmt.Macs(c.With.Macs)} with reductions, {Fmt.Macs(c.Without.Macs)} without ({Fmt.Times(total)})",
            Verdict: verdict,
            Reason: reason,
            Measurements: measurements,
            Setup:
            [
                "googlenet_paper is the paper's Table 1 network (real 5×5 convolutions, LRN, 1000 classes); the variant without reductions is the same network with GoogLeNetArch.Reductions = false, so every module keeps its input and output widths.",
                "Multiply-accumulates of every convolution and linear layer for one 224×224 image, counted by the library's summary (as `incept summary googlenet_paper`).",
            ],
            Notes:
            [
                "The paper's naive module (Figure 2a) concatenates the pooled input itself, so its width would also grow from module to module; the variant here keeps the pool projections, isolating the reductions' effect.",
                "Auxiliary heads are not counted: they do not run at inference.",
                "The per-module counts agree with the paper's Table 1 to its rounding except inception (5a), where Table 1 gives 54 M and the module as the table's widths define it costs 51.1 M.",
            ]);
    }
}
