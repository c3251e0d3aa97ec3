using System.Globalization;

namespace Incept.Reproduce;

/// <summary>How the reports write numbers (invariant culture).</summary>
internal static class Fmt
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>A fraction as a percentage with one decimal: 0.28 → "28.0 %".</summary>
    public static string Pct(double fraction, int decimals = 1) => double.IsFinite(fraction) ? (fraction * 100).ToString("F" + decimals, Inv) + " %" : "n/a";

    /// <summary>A difference of fractions in percentage points, signed: 0.004 → "+0.40 pt".</summary>
    public static string Points(double difference) => double.IsFinite(difference) ? (difference * 100).ToString("+0.00;−0.00;0.00", Inv) + " pt" : "n/a";

    /// <summary>A relative change as a signed percentage: 0.055 → "+5.5 %".</summary>
    public static string SignedPct(double fraction) => double.IsFinite(fraction) ? (fraction * 100).ToString("+0.0;−0.0;0.0", Inv) + " %" : "n/a";

    /// <summary>An accuracy or error with four decimals.</summary>
    public static string Acc(double value) => double.IsFinite(value) ? value.ToString("0.0000", Inv) : "n/a";

    /// <summary>A step count, or "not reached".</summary>
    public static string Steps(long? steps) => steps is { } s ? s.ToString(Inv) : "not reached";

    /// <summary>A ratio: 3.24 → "3.2×".</summary>
    public static string Times(double ratio) => double.IsFinite(ratio) ? ratio.ToString("0.0#", Inv) + "×" : "n/a";

    /// <summary>Multiply-accumulates in millions or billions.</summary>
    public static string Macs(long macs) => macs >= 1_000_000_000 ? (macs / 1e9).ToString("0.000", Inv) + " G" : (macs / 1e6).ToString("0.0", Inv) + " M";

    /// <summary>A whole number with thousands separators.</summary>
    public static string N(long value) => value.ToString("N0", Inv);

    /// <summary>A learning rate.</summary>
    public static string Lr(double value) => value.ToString("G4", Inv);

    /// <summary>A number with the given format.</summary>
    public static string F(double value, string format = "0.###") => value.ToString(format, Inv);
}
