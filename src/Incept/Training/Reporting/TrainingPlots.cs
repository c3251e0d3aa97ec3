using ScottPlot;

namespace Incept.Training.Reporting;

/// <summary>One point of a training curve: the epoch (fractional within an epoch) and its value.</summary>
public readonly record struct CurvePoint(double Epoch, double Value);

/// <summary>PNG plots of a training run: loss and accuracy curves, and a confusion matrix.</summary>
public static class TrainingPlots
{
    /// <summary>
    /// Draws named curves on one chart and writes it to <paramref name="path"/> (written through a
    /// temporary file, so a failure leaves no partial image).
    /// </summary>
    public static void Curves(string path, string title, string yLabel, IReadOnlyDictionary<string, IReadOnlyList<CurvePoint>> series)
    {
        ArgumentNullException.ThrowIfNull(series);
        var plot = new Plot();
        foreach (var (name, points) in series)
        {
            if (points.Count == 0) continue;
            var line = plot.Add.Scatter(points.Select(p => p.Epoch).ToArray(), points.Select(p => p.Value).ToArray());
            line.LegendText = name;
            line.MarkerSize = points.Count > 40 ? 0 : 4;
        }

        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel(yLabel);
        plot.ShowLegend(LegendPlacement.Best(series.Values.SelectMany(points => points.Select(p => (p.Epoch, p.Value)))));
        Save(plot, path, 800, 500);
    }

    /// <summary>
    /// Draws <paramref name="matrix"/> (rows: true class, columns: predicted class) as a heat map of row-normalised
    /// rates with the class names on both axes.
    /// </summary>
    public static void ConfusionMatrix(string path, long[,] matrix, IReadOnlyList<string> classNames, string title)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(classNames);
        int k = matrix.GetLength(0);
        if (matrix.GetLength(1) != k || classNames.Count != k)
            throw new ArgumentException($"A confusion matrix of {k} classes needs a {k}×{k} matrix and {k} names.", nameof(matrix));
        var rates = new double[k, k];
        for (int i = 0; i < k; i++)
        {
            double total = 0;
            for (int j = 0; j < k; j++) total += matrix[i, j];
            for (int j = 0; j < k; j++) rates[i, j] = total > 0 ? matrix[i, j] / total : 0;
        }

        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(rates);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        plot.Add.ColorBar(heatmap);
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                if (matrix[i, j] == 0) continue;
                var text = plot.Add.Text($"{matrix[i, j]}", j, k - 1 - i);
                text.LabelFontSize = k > 12 ? 8 : 11;
                text.LabelFontColor = rates[i, j] > 0.5 ? Colors.Black : Colors.White;
                text.LabelAlignment = Alignment.MiddleCenter;
            }
        }

        var positions = Enumerable.Range(0, k).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(positions, classNames.ToArray());
        plot.Axes.Left.SetTicks(positions, classNames.Reverse().ToArray());
        if (k > 10) plot.Axes.Bottom.TickLabelStyle.FontSize = 9;
        plot.Axes.Bottom.Label.Text = "predicted";
        plot.Axes.Left.Label.Text = "true";
        plot.Title(title);
        Save(plot, path, 900, 800);
    }

    private static void Save(Plot plot, string path, int width, int height)
    {
        var bytes = plot.GetImageBytes(width, height, ImageFormat.Png);
        Weights.AtomicFile.Write(path, s => s.Write(bytes));
    }
}
