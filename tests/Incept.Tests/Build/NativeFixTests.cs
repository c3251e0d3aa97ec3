using System.Diagnostics;
using System.Text;

namespace Incept.Tests.Build;

/// <summary>The build makes TorchSharp's native library loadable where libstdc++ lacks GLIBCXX_3.4.32.</summary>
public class NativeFixTests
{
    [Fact]
    public void Copied_libLibTorchSharp_marks_GLIBCXX_3_4_32_weak_exactly_when_the_system_lacks_it()
    {
        var systemLib = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/libstdc++.so.6" }.FirstOrDefault(File.Exists);
        var copies = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories);
        Assert.NotEmpty(copies);
        Assert.NotNull(systemLib);
        bool systemHasIt = Contains(File.ReadAllBytes(systemLib), Encoding.ASCII.GetBytes("GLIBCXX_3.4.32\0"));
        foreach (var copy in copies)
        {
            var flags = VersionNeedFlags(File.ReadAllBytes(copy), "GLIBCXX_3.4.32");
            Assert.NotNull(flags);
            Assert.Equal(!systemHasIt, (flags!.Value & 2) != 0);
        }

        // The library really loads: this test process uses it.
        Assert.Equal(6f, TorchSharp.torch.ones(2, 3).sum().item<float>());
    }

    [SkippableFact]
    public void An_unloadable_libtorch_gives_exit_code_3_and_the_loaders_reason_in_one_line()
    {
        var systemLib = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/libstdc++.so.6" }.FirstOrDefault(File.Exists);
        Skip.If(systemLib is null || Contains(File.ReadAllBytes(systemLib), Encoding.ASCII.GetBytes("GLIBCXX_3.4.32\0")),
            "this system's libstdc++ has GLIBCXX_3.4.32, so the unpatched library loads");
        // A copy of the program whose libLibTorchSharp.so has the strict (non-weak) version requirement, as
        // TorchSharp ships it. Large native libraries are linked, not copied.
        var app = Directory.CreateTempSubdirectory("incept-native-").FullName;
        try
        {
            var from = AppContext.BaseDirectory;
            foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
                Directory.CreateDirectory(Path.Combine(app, Path.GetRelativePath(from, dir)));
            foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(app, Path.GetRelativePath(from, file));
                if (new FileInfo(file).Length > 10_000_000) File.CreateSymbolicLink(target, file);
                else File.Copy(file, target);
            }

            foreach (var lib in Directory.GetFiles(app, "libLibTorchSharp.so", SearchOption.AllDirectories))
            {
                var bytes = File.ReadAllBytes(lib);
                var offset = VersionNeedFlagsOffset(bytes, "GLIBCXX_3.4.32")!.Value;
                bytes[offset] = (byte)(bytes[offset] & ~2);
                File.WriteAllBytes(lib, bytes);
            }

            var psi = new ProcessStartInfo("dotnet", [Path.Combine(app, "incept.dll"), "summary", "googlenet"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.Equal(3, process.ExitCode);
            Assert.Equal("", stdout.Result);
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.Contains("GLIBCXX_3.4.32", stderr, StringComparison.Ordinal);
            Assert.Contains("libstdc++", stderr, StringComparison.Ordinal);
            Assert.False(Directory.Exists(Path.Combine(app, "cpu")) && Directory.GetFiles(Path.Combine(app, "cpu")).Length > 1,
                "TorchSharp's fallback copied the package cache next to the program");
        }
        finally
        {
            Directory.Delete(app, recursive: true);
        }
    }

    private static bool Contains(byte[] hay, byte[] needle) => hay.AsSpan().IndexOf(needle) >= 0;

    /// <summary>The vna_flags of the named version requirement in .gnu.version_r, or null.</summary>
    private static ushort? VersionNeedFlags(byte[] b, string version)
        => VersionNeedFlagsOffset(b, version) is { } at ? BitConverter.ToUInt16(b, at) : null;

    /// <summary>The file offset of the vna_flags of the named version requirement, or null.</summary>
    private static int? VersionNeedFlagsOffset(byte[] b, string version)
    {
        long shoff = BitConverter.ToInt64(b, 0x28);
        int entSize = BitConverter.ToUInt16(b, 0x3A), count = BitConverter.ToUInt16(b, 0x3C);
        for (int s = 0; s < count; s++)
        {
            int sh = (int)(shoff + s * entSize);
            if (BitConverter.ToUInt32(b, sh + 4) != 0x6ffffffe) continue;
            long off = BitConverter.ToInt64(b, sh + 24);
            int link = BitConverter.ToInt32(b, sh + 40), needCount = BitConverter.ToInt32(b, sh + 44);
            long strOff = BitConverter.ToInt64(b, (int)(shoff + link * entSize) + 24);
            long vn = off;
            for (int n = 0; n < needCount; n++)
            {
                long aux = vn + BitConverter.ToUInt32(b, (int)vn + 8);
                for (int a = 0; a < BitConverter.ToUInt16(b, (int)vn + 2); a++)
                {
                    long name = strOff + BitConverter.ToUInt32(b, (int)aux + 8);
                    int end = Array.IndexOf(b, (byte)0, (int)name);
                    if (Encoding.ASCII.GetString(b, (int)name, end - (int)name) == version) return (int)aux + 4;
                    aux += BitConverter.ToUInt32(b, (int)aux + 12);
                }

                vn += BitConverter.ToUInt32(b, (int)vn + 12);
            }
        }

        return null;
    }
}
