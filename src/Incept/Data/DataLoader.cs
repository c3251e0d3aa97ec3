using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Data;

/// <summary>Settings of a <see cref="DataLoader"/>.</summary>
public sealed record DataLoaderOptions
{
    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Whether each epoch visits the samples in a new seeded random order (otherwise in index order).</summary>
    public bool Shuffle { get; init; }

    /// <summary>Whether a last batch smaller than <see cref="BatchSize"/> is left out.</summary>
    public bool DropLast { get; init; }

    /// <summary>Run seed: with the epoch and sample index it determines the order and every augmentation.</summary>
    public int Seed { get; init; }

    /// <summary>Threads that decode and transform batches beside the consumer; 0 builds each batch on the consumer's thread when it is asked for.</summary>
    public int Workers { get; init; } = 2;

    /// <summary>Batches each worker may have ready or in progress ahead of the consumer.</summary>
    public int PrefetchPerWorker { get; init; } = 2;
}

/// <summary>One batch: images N × C × H × W float32, labels N int64, and the data set indices they came from.</summary>
/// <remarks>
/// The batch owns its two tensors, which are created on a worker thread outside any dispose scope: dispose the
/// batch (<c>using var batch = …</c>) or move the tensors into a scope of your own.
/// </remarks>
public sealed class Batch : IDisposable
{
    private readonly int[] _indices;

    internal Batch(int number, Tensor images, Tensor labels, int[] indices)
    {
        Number = number;
        Images = images;
        Labels = labels;
        _indices = indices;
    }

    /// <summary>Position of the batch in its epoch, from 0.</summary>
    public int Number { get; }

    /// <summary>Images, N × C × H × W, float32.</summary>
    public Tensor Images { get; }

    /// <summary>Class indices, N, int64.</summary>
    public Tensor Labels { get; }

    /// <summary>The data set index of each sample.</summary>
    public IReadOnlyList<int> Indices => _indices;

    /// <summary>Number of samples.</summary>
    public int Count => _indices.Length;

    /// <summary>Disposes the two tensors.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// Serves a data set in batches of tensors, decoding and transforming on worker threads while the caller
/// computes. Results depend only on the seed, the epoch and the data: each epoch's order is a seeded
/// permutation, and each sample's transforms draw from a <see cref="Random"/> seeded by
/// <see cref="SampleSeed"/>(seed, epoch, index), so batches are identical bit for bit whatever the number of
/// workers or their scheduling. At most <see cref="DataLoaderOptions.Workers"/> ×
/// <see cref="DataLoaderOptions.PrefetchPerWorker"/> batches are in progress or waiting at any time.
/// </summary>
public sealed class DataLoader
{
    private readonly IImageDataset _dataset;
    private readonly ImagePipeline _pipeline;

    /// <summary>Creates a loader over <paramref name="dataset"/> that prepares each image with <paramref name="pipeline"/>.</summary>
    public DataLoader(IImageDataset dataset, ImagePipeline pipeline, DataLoaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(pipeline);
        options ??= new DataLoaderOptions();
        if (options.BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "The batch size must be at least 1.");
        if (options.Workers < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.Workers, "The worker count cannot be negative.");
        if (options.PrefetchPerWorker < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.PrefetchPerWorker, "Each worker needs room for at least one batch.");
        _dataset = dataset;
        _pipeline = pipeline;
        Options = options;
    }

    /// <summary>The settings.</summary>
    public DataLoaderOptions Options { get; }

    /// <summary>The data set served.</summary>
    public IImageDataset Dataset => _dataset;

    /// <summary>Batches in one epoch.</summary>
    public int BatchCount => Options.DropLast
        ? _dataset.Count / Options.BatchSize
        : (_dataset.Count + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>
    /// The seed of sample <paramref name="index"/>'s transforms in <paramref name="epoch"/> of a run seeded with
    /// <paramref name="seed"/> (SplitMix64 of the three numbers); index −1 seeds the epoch's shuffle.
    /// </summary>
    public static int SampleSeed(int seed, int epoch, int index)
    {
        ulong z = Mix((ulong)(uint)seed);
        z = Mix(z ^ (ulong)(uint)epoch);
        z = Mix(z ^ (ulong)(uint)index);
        return (int)(z >> 33);
    }

    /// <summary>The order in which <paramref name="epoch"/> visits the data set's indices.</summary>
    public int[] EpochOrder(int epoch)
    {
        var order = Enumerable.Range(0, _dataset.Count).ToArray();
        if (Options.Shuffle) DatasetSplit.Shuffle(order, new Random(SampleSeed(Options.Seed, epoch, -1)));
        return order;
    }

    /// <summary>
    /// The batches of <paramref name="epoch"/>, in order. Workers start when enumeration starts and stop when it
    /// ends or is abandoned; batches prepared but not consumed are then disposed. A failure while reading or
    /// transforming a sample is thrown when its batch is reached.
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch)
    {
        var order = EpochOrder(epoch);
        return Options.Workers == 0 ? Sequential(order, epoch) : Parallel(order, epoch);
    }

    private IEnumerable<Batch> Sequential(int[] order, int epoch)
    {
        for (int b = 0; b < BatchCount; b++) yield return Build(order, epoch, b);
    }

    private IEnumerable<Batch> Parallel(int[] order, int epoch)
    {
        int count = BatchCount;
        var slots = new TaskCompletionSource<Batch>[count];
        for (int b = 0; b < count; b++) slots[b] = new TaskCompletionSource<Batch>(TaskCreationOptions.RunContinuationsAsynchronously);
        int capacity = Options.Workers * Options.PrefetchPerWorker;
        using var free = new SemaphoreSlim(capacity, capacity);
        using var stop = new CancellationTokenSource();
        int next = -1;

        void Work()
        {
            try
            {
                while (true)
                {
                    free.Wait(stop.Token);
                    int b = Interlocked.Increment(ref next);
                    if (b >= count) return;
                    try
                    {
                        slots[b].SetResult(Build(order, epoch, b));
                    }
#pragma warning disable CA1031 // Any failure belongs to the consumer, who sees it at this batch.
                    catch (Exception e)
#pragma warning restore CA1031
                    {
                        slots[b].SetException(e);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        var workers = new Task[Options.Workers];
        for (int w = 0; w < workers.Length; w++)
            workers[w] = Task.Factory.StartNew(Work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        int consumed = 0;
        try
        {
            for (; consumed < count; consumed++)
            {
                var batch = slots[consumed].Task.GetAwaiter().GetResult();
                yield return batch;
                free.Release();
            }
        }
        finally
        {
            stop.Cancel();
            Task.WaitAll(workers);
            for (int b = consumed + 1; b < count; b++)
            {
                if (slots[b].Task.IsCompletedSuccessfully) slots[b].Task.Result.Dispose();
            }
        }
    }

    private Batch Build(int[] order, int epoch, int number)
    {
        int start = number * Options.BatchSize;
        int n = Math.Min(Options.BatchSize, order.Length - start);
        var indices = order.AsSpan(start, n).ToArray();
        float[]? pixels = null;
        var labels = new long[n];
        int channels = 0, height = 0, width = 0;
        for (int k = 0; k < n; k++)
        {
            int index = indices[k];
            var sample = _dataset.Get(index);
            var image = _pipeline.Apply(sample.Image, new Random(SampleSeed(Options.Seed, epoch, index)));
            if (pixels is null)
            {
                (channels, height, width) = (image.Channels, image.Height, image.Width);
                pixels = new float[checked(n * channels * height * width)];
            }
            else if (image.Channels != channels || image.Height != height || image.Width != width)
            {
                throw new InceptException($"Sample {index} became a {image.Channels}x{image.Height}x{image.Width} image but sample {indices[0]} a {channels}x{height}x{width} one; end the pipeline with a crop or resize to a fixed size (and GrayscaleToRgb for mixed channels).");
            }
            image.Data.CopyTo(pixels.AsSpan(k * channels * height * width));
            labels[k] = sample.Label;
        }
        // The workers have no dispose scope of their own; one here holds any temporary TorchSharp makes inside these
        // calls until they return (outside a scope the garbage collector may finalise one while libtorch reads it).
        using var scope = torch.NewDisposeScope();
        var images = torch.tensor(pixels!, [n, channels, height, width], ScalarType.Float32);
        var labelTensor = torch.tensor(labels, [n], ScalarType.Int64);
        return new Batch(number, images.DetachFromDisposeScope(), labelTensor.DetachFromDisposeScope(), indices);
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
