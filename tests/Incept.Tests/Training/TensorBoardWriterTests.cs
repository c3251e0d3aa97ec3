using Incept.Training.Logging;

namespace Incept.Tests.Training;

public class TensorBoardWriterTests
{
    [Fact]
    public void Crc32c_matches_the_standard_check_value()
    {
        // The CRC-32C check value of the ASCII digits 1–9 (RFC 3720, iSCSI).
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }

    [Fact]
    public void Scalars_round_trip_through_framed_event_records()
    {
        var dir = Directory.CreateTempSubdirectory("incept-tb-").FullName;
        try
        {
            string path;
            using (var writer = new TensorBoardWriter(dir))
            {
                writer.AddScalar("train/loss", 2.5, 1);
                writer.AddScalar("train/loss", 1.25, 2);
                writer.AddScalar("test/top1", 0.875, 300);
                path = writer.FilePath;
            }

            Assert.StartsWith("events.out.tfevents.", Path.GetFileName(path), StringComparison.Ordinal);
            var scalars = TensorBoardWriter.ReadScalars(path);
            Assert.Equal([("train/loss", 1L, 2.5f), ("train/loss", 2L, 1.25f), ("test/top1", 300L, 0.875f)], scalars);

            var bytes = File.ReadAllBytes(path);
            bytes[^3] ^= 0xFF;
            File.WriteAllBytes(path, bytes);
            Assert.Throws<InvalidDataException>(() => TensorBoardWriter.ReadScalars(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
