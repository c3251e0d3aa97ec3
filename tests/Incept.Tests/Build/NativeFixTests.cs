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

    private static bool Contains(byte[] hay, byte[] needle) => hay.AsSpan().IndexOf(needle) >= 0;

    /// <summary>The vna_flags of the named version requirement in .gnu.version_r, or null.</summary>
    private static ushort? VersionNeedFlags(byte[] b, string version)
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
                    if (Encoding.ASCII.GetString(b, (int)name, end - (int)name) == version) return BitConverter.ToUInt16(b, (int)aux + 4);
                    aux += BitConverter.ToUInt32(b, (int)aux + 12);
                }

                vn += BitConverter.ToUInt32(b, (int)vn + 12);
            }
        }

        return null;
    }
}
