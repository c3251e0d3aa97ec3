using static TorchSharp.torch;

namespace Incept.Tests.Training;

public class TensorBoardEventsTests
{
    [Fact]
    public void Crc32c_matches_the_standard_check_value()
    {
        // The CRC-32C check value of the ASCII digits 1–9 (RFC 3720, iSCSI).
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }

    [Fact]
    public void Scalars_written_by_torchsharps_summary_writer_read_back_with_valid_framing()
    {
        var dir = Directory.CreateTempSubdirectory("incept-tb-").FullName;
        try
        {
            var writer = utils.tensorboard.SummaryWriter(dir);
            writer.add_scalar("train/loss", 2.5f, 1);
            writer.add_scalar("train/loss", 1.25f, 2);
            writer.add_scalar("test/top1", 0.875f, 300);
            var path = Directory.GetFiles(dir, "events.out.tfevents.*", SearchOption.AllDirectories).Single();
            Assert.Equal([("train/loss", 1L, 2.5f), ("train/loss", 2L, 1.25f), ("test/top1", 300L, 0.875f)], TensorBoardEvents.ReadScalars(path));

            var bytes = File.ReadAllBytes(path);
            bytes[^3] ^= 0xFF;
            File.WriteAllBytes(path, bytes);
            Assert.Throws<InvalidDataException>(() => TensorBoardEvents.ReadScalars(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
