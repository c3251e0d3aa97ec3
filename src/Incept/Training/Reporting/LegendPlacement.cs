using ScottPlot;

namespace Incept.Training.Reporting;

/// <summary>
/// Chooses the corner of a chart for its legend: the one whose corner region holds the fewest data points, so that the
/// legend does not hide where curves end (rising accuracy curves end in the upper right, falling losses in the lower
/// right).
/// </summary>
internal static class LegendPlacement
{
    // A corner region spans this fraction of the data's width and height from that corner: about the size of a legend.
    private const double RegionWidth = 0.4;
    private const double RegionHeight = 0.35;

    // In this order, so that a tie (no points in several corners) keeps the usual upper-right place.
    private static readonly Alignment[] Corners = [Alignment.UpperRight, Alignment.LowerRight, Alignment.UpperLeft, Alignment.LowerLeft];

    /// <summary>The corner with the fewest of <paramref name="points"/> (non-finite ones ignored) in its region.</summary>
    public static Alignment Best(IEnumerable<(double X, double Y)> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        var finite = points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList();
        if (finite.Count == 0) return Alignment.UpperRight;
        double xMin = finite.Min(p => p.X), xMax = finite.Max(p => p.X);
        double yMin = finite.Min(p => p.Y), yMax = finite.Max(p => p.Y);
        double xSpan = Math.Max(xMax - xMin, double.Epsilon), ySpan = Math.Max(yMax - yMin, double.Epsilon);
        int Count(Alignment corner)
        {
            bool right = corner is Alignment.UpperRight or Alignment.LowerRight;
            bool upper = corner is Alignment.UpperRight or Alignment.UpperLeft;
            return finite.Count(p =>
            {
                double fx = (p.X - xMin) / xSpan, fy = (p.Y - yMin) / ySpan;
                bool inX = right ? fx >= 1 - RegionWidth : fx <= RegionWidth;
                bool inY = upper ? fy >= 1 - RegionHeight : fy <= RegionHeight;
                return inX && inY;
            });
        }

        return Corners.MinBy(Count);
    }
}
