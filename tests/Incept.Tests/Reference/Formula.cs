using System.Text;

namespace Incept.Tests.Reference;

/// <summary>The deterministic formula weights of the reference fixtures (see Fixtures/reference/README.md).</summary>
internal static class Formula
{
    public static uint Fnv1a32(string key)
    {
        uint h = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(key)) h = unchecked((h ^ b) * 16777619u);
        return h;
    }

    public static float[] Values(string key, long[] shape, string rule)
    {
        long n = shape.Aggregate(1L, (a, d) => a * d);
        uint h = Fnv1a32(key);
        double bound = rule == "he_uniform" ? Math.Sqrt(6.0 / (n / shape[0])) : 0.0;
        var v = new float[n];
        for (long i = 0; i < n; i++)
        {
            uint x = unchecked(h + (uint)i * 2654435761u);
            double u = x / 4294967296.0;
            v[i] = (float)(rule switch
            {
                "he_uniform" => (u - 0.5) * 2 * bound,
                "bias" or "bn_bias" => (u - 0.5) * 0.2,
                "bn_weight" => 1 + (u - 0.5) * 0.4,
                "input" => (u - 0.5) * 4,
                _ => throw new ArgumentException($"no formula for rule {rule}", nameof(rule)),
            });
        }

        return v;
    }
}
