using Incept.Weights;
using ScottPlot;

namespace Incept.Reproduce;

/// <summary>The PNG plots of the reports: curves over training steps and grouped bars.</summary>
internal static class ReproducePlots
{
    /// <summary>Named series of (step, value) on one chart, with optional dashed horizontal reference lines.</summary>
    public static void Curves(string path, string title, string yLabel, IReadOnlyList<(string Name, IReadOnlyList<StepValue> Points)> series,
        IReadOnlyList<(string Name, double Value)>? lines = null, string xLabel = "step")
    {
        var plot = new Plot();
        foreach (var (name, points) in series)
        {
            var finite = points.Where(p => double.IsFinite(p.Value)).ToList();
            if (finite.Count == 0) continue;
            var line = plot.Add.Scatter(finite.Select(p => (double)p.Step).ToArray(), finite.Select(p => p.Value).ToArray());
            line.LegendText = name;
            line.MarkerSize = finite.Count > 40 ? 0 : 4;
        }

        foreach (var (name, value) in lines ?? [])
        {
            if (!double.IsFinite(value)) continue;
            var h = plot.Add.HorizontalLine(value);
            h.LinePattern = LinePattern.Dashed;
            h.LegendText = name;
        }

        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        // Reference lines span the chart: their levels count at both ends.
        var occupied = series.SelectMany(s => s.Points.Select(p => ((double)p.Step, p.Value))).ToList();
        if (occupied.Count > 0)
        {
            double first = occupied.Min(p => p.Item1), last = occupied.Max(p => p.Item1);
            foreach (var (_, value) in lines ?? []) occupied.AddRange([(first, value), (last, value)]);
        }

        plot.ShowLegend(Training.Reporting.LegendPlacement.Best(occupied));
        Save(plot, path, 900, 550);
    }

    /// <summary>Bars grouped by category: one bar per series in each category.</summary>
    public static void Bars(string path, string title, string yLabel, IReadOnlyList<string> categories, IReadOnlyList<(string Name, IReadOnlyList<double> Values)> series)
    {
        var plot = new Plot();
        int k = series.Count;
        double width = 0.8 / Math.Max(1, k);
        var palette = new ScottPlot.Palettes.Category10();
        for (int s = 0; s < k; s++)
        {
            var bars = series[s].Values.Select((v, i) => new Bar
            {
                Position = i - 0.4 + width * (s + 0.5),
                Value = v,
                Size = width * 0.95,
                FillColor = palette.GetColor(s),
            }).ToList();
            plot.Add.Bars(bars);
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = series[s].Name, FillColor = palette.GetColor(s) });
        }

        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, categories.Count).Select(i => (double)i)], [.. categories]);
        if (categories.Count > 10) plot.Axes.Bottom.TickLabelStyle.FontSize = 9;
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.YLabel(yLabel);
        plot.ShowLegend(Alignment.UpperLeft);
        Save(plot, path, 1000, 560);
    }

    private static void Save(Plot plot, string path, int width, int height)
    {
        var bytes = plot.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}
