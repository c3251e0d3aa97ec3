using Incept.Data;
using Incept.Data.Transforms;
using static TorchSharp.torch;

namespace Incept.Tests.Data;

/// <summary>The loader: determinism whatever the worker count, coverage of each epoch, bounds, errors.</summary>
public class DataLoaderTests
{
    private static readonly ImagePipeline Augmenting = new(
        new RandomResizedCrop(8, Interpolation.Bicubic),
        new RandomHorizontalFlip(),
        new ColorJitter(0.4, 0.4, 0.4, 0.1),
        new Normalize([0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]));

    private static SyntheticDataset Data(int count = 37) => new(count, 12, 10, i => i % 3, 3);

    private static DataLoader Loader(IImageDataset data, int workers, bool dropLast = false, int seed = 7) =>
        new(data, Augmenting, new DataLoaderOptions { BatchSize = 5, Shuffle = true, Seed = seed, Workers = workers, DropLast = dropLast });

    [Fact]
    public void Batches_are_identical_bit_for_bit_with_zero_one_or_four_workers()
    {
        var data = Data();
        var runs = new[] { 0, 1, 4 }.Select(w => Collect(Loader(data, w), epoch: 2)).ToArray();

        foreach (var run in runs.Skip(1))
        {
            Assert.Equal(runs[0].Count, run.Count);
            for (int b = 0; b < run.Count; b++)
            {
                Assert.Equal(runs[0][b].Indices, run[b].Indices);
                Assert.Equal(runs[0][b].Labels, run[b].Labels);
                Assert.Equal(runs[0][b].Images, run[b].Images); // exact float equality
            }
        }
    }

    [Fact]
    public void Every_sample_is_seen_once_per_epoch_in_a_new_order_each_epoch()
    {
        var data = Data();
        var loader = Loader(data, workers: 2);
        Assert.Equal(8, loader.BatchCount);

        var epoch0 = Collect(loader, epoch: 0);
        var epoch1 = Collect(loader, epoch: 1);
        var seen0 = epoch0.SelectMany(b => b.Indices).ToArray();
        var seen1 = epoch1.SelectMany(b => b.Indices).ToArray();

        Assert.Equal(Enumerable.Range(0, 37), seen0.Order());
        Assert.Equal(Enumerable.Range(0, 37), seen1.Order());
        Assert.NotEqual(seen0, seen1);
        Assert.Equal(2, epoch0[^1].Indices.Length);
        Assert.All(epoch0, b => Assert.Equal(b.Indices.Select(i => (long)data.GetLabel(i)), b.Labels));

        var dropped = Loader(data, workers: 2, dropLast: true);
        Assert.Equal(7, dropped.BatchCount);
        var kept = Collect(dropped, epoch: 0).SelectMany(b => b.Indices).ToArray();
        Assert.Equal(35, kept.Distinct().Count());
        Assert.Equal(seen0[..35], kept);

        var ordered = new DataLoader(data, Augmenting, new DataLoaderOptions { BatchSize = 10, Workers = 1 });
        Assert.Equal(Enumerable.Range(0, 37), Collect(ordered, 0).SelectMany(b => b.Indices));
    }

    [Fact]
    public void Batches_are_float32_NCHW_images_and_int64_labels()
    {
        var loader = Loader(Data(), workers: 1);
        using var batch = loader.Epoch(0).First();
        Assert.Equal([5L, 3, 8, 8], batch.Images.shape);
        Assert.Equal(ScalarType.Float32, batch.Images.dtype);
        Assert.Equal([5L], batch.Labels.shape);
        Assert.Equal(ScalarType.Int64, batch.Labels.dtype);
    }

    [Fact]
    public void Workers_stay_within_the_prefetch_bound_and_stop_when_the_consumer_does()
    {
        var data = Data(200);
        var loader = new DataLoader(data, Augmenting, new DataLoaderOptions { BatchSize = 5, Workers = 2, PrefetchPerWorker = 2 });
        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
            {
                Thread.Sleep(300); // workers fill the queue meanwhile
                // The batch held here plus at most 2 x 2 in progress or waiting.
                Assert.InRange(data.Reads, 5, (1 + 2 * 2) * 5);
            }
            break;
        }
        int afterBreak = data.Reads;
        Thread.Sleep(100);
        Assert.Equal(afterBreak, data.Reads);
    }

    [Fact]
    public void A_failing_sample_surfaces_as_its_own_exception_at_its_batch()
    {
        var failing = new FailingDataset(Data(), badIndex: 13);
        var loader = new DataLoader(failing, Augmenting, new DataLoaderOptions { BatchSize = 5, Workers = 3 });
        int delivered = 0;
        var e = Assert.Throws<DataFormatException>(() =>
        {
            foreach (var batch in loader.Epoch(0))
            {
                batch.Dispose();
                delivered++;
            }
        });
        Assert.Equal("bad.png", e.FilePath);
        Assert.Equal(2, delivered); // batches 0 and 1; index 13 is in batch 2
    }

    [Fact]
    public void Images_of_different_sizes_without_a_crop_are_reported()
    {
        var mixed = new MixedSizes();
        var loader = new DataLoader(mixed, new ImagePipeline(), new DataLoaderOptions { BatchSize = 2, Workers = 0 });
        var e = Assert.Throws<InceptException>(() => loader.Epoch(0).First().Dispose());
        Assert.Contains("end the pipeline with a crop or resize", e.Message, StringComparison.Ordinal);
    }

    private sealed record CollectedBatch(int[] Indices, long[] Labels, float[] Images);

    private static List<CollectedBatch> Collect(DataLoader loader, int epoch)
    {
        var result = new List<CollectedBatch>();
        foreach (var batch in loader.Epoch(epoch))
        {
            using (batch)
                result.Add(new CollectedBatch([.. batch.Indices], batch.Labels.data<long>().ToArray(), batch.Images.data<float>().ToArray()));
        }
        return result;
    }

    private sealed class FailingDataset(IImageDataset inner, int badIndex) : IImageDataset
    {
        public int Count => inner.Count;

        public IReadOnlyList<string> ClassNames => inner.ClassNames;

        public LabeledImage Get(int index) =>
            index == badIndex ? throw new DataFormatException("bad.png", "Image 'bad.png' could not be decoded.") : inner.Get(index);

        public int GetLabel(int index) => inner.GetLabel(index);
    }

    private sealed class MixedSizes : IImageDataset
    {
        public int Count => 2;

        public IReadOnlyList<string> ClassNames { get; } = ["a"];

        public LabeledImage Get(int index) => new(new ByteImage(2 + index, 2, 1, new byte[(2 + index) * 2]), 0);

        public int GetLabel(int index) => 0;
    }
}
