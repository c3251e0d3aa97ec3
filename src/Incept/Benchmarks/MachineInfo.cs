using System.Globalization;

namespace Incept.Benchmarks;

/// <summary>
/// The CPU a benchmark ran on, read from <c>/proc/cpuinfo</c>, and its theoretical float32 multiply-add peak.
/// </summary>
/// <param name="CpuModel">The processor's model name.</param>
/// <param name="Cores">Logical processors the process can use.</param>
/// <param name="Ghz">Clock in GHz as the kernel reports it (the nominal or current clock, not the turbo clock).</param>
/// <param name="Flags">The instruction-set flags of the first processor.</param>
public sealed record MachineInfo(string CpuModel, int Cores, double Ghz, IReadOnlySet<string> Flags)
{
    /// <summary>Whether the CPU reports AVX-512 Foundation (<c>avx512f</c>).</summary>
    public bool HasAvx512 => Flags.Contains("avx512f");

    /// <summary>Whether the CPU reports AVX-512 bfloat16 instructions (<c>avx512_bf16</c>).</summary>
    public bool HasAvx512Bf16 => Flags.Contains("avx512_bf16");

    /// <summary>Whether the CPU reports AMX tiles (<c>amx_tile</c>).</summary>
    public bool HasAmx => Flags.Contains("amx_tile");

    /// <summary>Whether the CPU reports AVX2 and FMA3.</summary>
    public bool HasAvx2Fma => Flags.Contains("avx2") && Flags.Contains("fma");

    /// <summary>float32 lanes of the widest vector unit the CPU reports: 16 with AVX-512, 8 with AVX2+FMA, else 4.</summary>
    public int Fp32Lanes => HasAvx512 ? 16 : HasAvx2Fma ? 8 : 4;

    /// <summary>The widest vector instruction set reported, as a short name (avx512, avx2, sse).</summary>
    public string VectorIsa => HasAvx512 ? "avx512" : HasAvx2Fma ? "avx2" : "sse";

    /// <summary>
    /// The theoretical float32 peak in GFLOP/s: cores × GHz × 2 FMA units per core × <see cref="Fp32Lanes"/> × 2
    /// FLOPs per fused multiply-add. The assumption of two FMA pipes per core holds for current server cores (Intel
    /// Skylake-SP and later Xeons with two AVX-512 units, AMD Zen 2–4); a CPU with one unit peaks at half of this,
    /// and a turbo clock above the reported one raises the real peak.
    /// </summary>
    public double PeakGflops => Cores * Ghz * 2 * Fp32Lanes * 2;

    /// <summary>The peak of <paramref name="threads"/> cores (at most all of them): what a run with that many threads can reach.</summary>
    public double PeakGflopsFor(int threads) => PeakGflops * Math.Clamp(threads, 1, Cores) / Cores;

    /// <summary>Reads <c>/proc/cpuinfo</c>; the core count is the processors this process may use.</summary>
    public static MachineInfo Detect()
    {
        string text = "";
        try
        {
            if (File.Exists("/proc/cpuinfo")) text = File.ReadAllText("/proc/cpuinfo");
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return Parse(text, Environment.ProcessorCount);
    }

    /// <summary>Parses the text of <c>/proc/cpuinfo</c>; <paramref name="cores"/> overrides the processor count in it.</summary>
    public static MachineInfo Parse(string cpuinfo, int? cores = null)
    {
        ArgumentNullException.ThrowIfNull(cpuinfo);
        string model = "unknown CPU";
        double mhz = 0;
        int processors = 0;
        HashSet<string>? flags = null;
        foreach (var line in cpuinfo.Split('\n'))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0) continue;
            var key = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "processor":
                    processors++;
                    break;
                case "model name" when model == "unknown CPU":
                    model = value;
                    break;
                case "cpu MHz" when mhz == 0:
                    double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out mhz);
                    break;
                case "flags" when flags is null:
                    flags = [.. value.Split(' ', StringSplitOptions.RemoveEmptyEntries)];
                    break;
            }
        }

        return new MachineInfo(model, cores ?? Math.Max(1, processors), mhz / 1000.0, flags ?? []);
    }
}
