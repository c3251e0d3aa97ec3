using System.Globalization;

namespace Incept.Benchmarks;

/// <summary>This process's memory as the Linux kernel counts it (<c>/proc/self/status</c>).</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size so far (<c>VmHWM</c>) in MiB, or null where the kernel does not report it.</summary>
    public static double? PeakRssMb() => Read("VmHWM:");

    /// <summary>
    /// Resident pages of mapped files now (<c>RssFile</c>: the libraries' code and data above all) in MiB, or null where
    /// the kernel does not report them. Part of <see cref="PeakRssMb"/>, and not set by the program alone: how much of a
    /// library the kernel maps in on a fault depends on how its file was last read and written (on the Zen 5 VM the same
    /// build read 112–116 MiB in one directory and 158–167 in another; docs/benchmarks.md, twenty-seventh session).
    /// </summary>
    public static double? FileRssMb() => Read("RssFile:");

    /// <summary>Current resident set size (<c>VmRSS</c>) in MiB, or null where the kernel does not report it.</summary>
    public static double? CurrentRssMb() => Read("VmRSS:");

    /// <summary>Reads a "Key:   1234 kB" line of a <c>/proc/*/status</c> text as MiB.</summary>
    public static double? ParseKb(string status, string key)
    {
        ArgumentNullException.ThrowIfNull(status);
        ArgumentNullException.ThrowIfNull(key);
        foreach (var line in status.Split('\n'))
        {
            if (!line.StartsWith(key, StringComparison.Ordinal)) continue;
            var parts = line[key.Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length > 0 && long.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long kb))
                return kb / 1024.0;
        }

        return null;
    }

    private static double? Read(string key)
    {
        try
        {
            return File.Exists("/proc/self/status") ? ParseKb(File.ReadAllText("/proc/self/status"), key) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
