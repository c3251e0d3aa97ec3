using Incept.Training.Reporting;
using ScottPlot;

namespace Incept.Tests.Training;

public sealed class LegendPlacementTests
{
    private static IEnumerable<(double, double)> Curve(Func<double, double> f) =>
        Enumerable.Range(0, 50).Select(i => (i / 49.0, f(i / 49.0)));

    [Fact]
    public void A_rising_curve_keeps_the_legend_off_its_end()
    {
        // Accuracy-like: rises fast, then flattens near the top; the upper right and upper left are occupied.
        var corner = LegendPlacement.Best(Curve(x => 1 - Math.Exp(-6 * x)));
        Assert.Equal(Alignment.LowerRight, corner);
    }

    [Fact]
    public void A_falling_curve_leaves_the_upper_right_free()
    {
        var corner = LegendPlacement.Best(Curve(x => Math.Exp(-6 * x)));
        Assert.Equal(Alignment.UpperRight, corner);
    }

    [Fact]
    public void The_corner_with_fewest_points_wins_when_every_corner_is_used()
    {
        // A rising and a falling diagonal put as many points in each corner; flat segments then add points to every
        // corner but the upper left.
        var points = Curve(x => x).Concat(Curve(x => 1 - x))
            .Concat(Curve(_ => 0.95).Where(p => p.Item1 > 0.7))
            .Concat(Curve(_ => 0.05).Where(p => p.Item1 > 0.7 || p.Item1 < 0.3))
            .ToList();
        Assert.Equal(Alignment.UpperLeft, LegendPlacement.Best(points));
    }

    [Fact]
    public void No_finite_point_gives_the_usual_corner()
    {
        Assert.Equal(Alignment.UpperRight, LegendPlacement.Best([]));
        Assert.Equal(Alignment.UpperRight, LegendPlacement.Best([(double.NaN, 1), (1, double.PositiveInfinity)]));
    }
}
