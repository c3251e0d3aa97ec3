using System.Runtime.InteropServices;
using Incept.Export;
using Incept.Runtime;
using Microsoft.ML.OnnxRuntime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;
using static TorchSharp.torch;

namespace Incept.Inference;

/// <summary>How <see cref="OnnxEngine"/> sets up ONNX Runtime.</summary>
public sealed record OnnxEngineOptions
{
    /// <summary>Threads one run may use; 0 lets ONNX Runtime choose (one per physical core).</summary>
    public int Threads { get; init; }

    /// <summary>Let ONNX Runtime rewrite the graph (fuse BatchNorms and activations into convolutions, …).</summary>
    public bool Optimize { get; init; } = true;

    /// <summary>
    /// ONNX Runtime's memory pattern: one block planned ahead for all of a run's intermediate tensors. Off by default
    /// here: measured on inception_v3 at batch 16 it raised the peak memory by 150–180 MiB at the same speed
    /// (docs/benchmarks.md); the arena still reuses the blocks between runs.
    /// </summary>
    public bool MemoryPattern { get; init; }
}

/// <summary>
/// Runs an ONNX file, such as one written by <see cref="OnnxExporter"/>, with ONNX Runtime on the CPU.
/// </summary>
public sealed class OnnxEngine : IInferenceEngine
{
    private readonly InferenceSession session;
    private readonly RunOptions runOptions = new();
    private readonly string[] inputNames;
    private readonly string[] outputNames;

    private OnnxEngine(InferenceSession session, OnnxModelInfo info)
    {
        this.session = session;
        Info = info;
        inputNames = [info.InputName];
        outputNames = [info.OutputName];
    }

    /// <inheritdoc/>
    public string Name => "onnx";

    /// <summary>The file's input, output and metadata (model, classes, preprocessing).</summary>
    public OnnxModelInfo Info { get; }

    /// <summary>Loads the ONNX file at <paramref name="path"/>.</summary>
    /// <exception cref="InceptException">The file is missing, or not an ONNX image classifier ONNX Runtime can load.</exception>
    /// <exception cref="NativeLibraryException">ONNX Runtime's native library cannot be loaded.</exception>
    public static OnnxEngine Open(string path, OnnxEngineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        OnnxModelInfo.CheckExists(path);
        return Create(path, sessionOptions => new InferenceSession(path, sessionOptions), options);
    }

    /// <summary>
    /// Exports <paramref name="model"/> (BatchNorm folded, batch size open) and loads the result into ONNX Runtime: the
    /// model runs as <c>incept export</c> followed by <see cref="Open"/> would run it. The export goes through a
    /// temporary file, deleted once the session is built, so that no second copy of the weights is held in memory while
    /// ONNX Runtime reads them.
    /// </summary>
    /// <param name="model">The model, in any mode; the export is of its inference pass.</param>
    /// <param name="export">Input size, name, preprocessing and class names for the graph and its metadata; batch and folding are set here.</param>
    /// <param name="options">ONNX Runtime's settings.</param>
    /// <param name="releaseModel">
    /// Dispose <paramref name="model"/> once it is written and before ONNX Runtime reads it, so that its weights and
    /// ONNX Runtime's are never in memory together; the model must not be used afterwards. Off by default.
    /// </param>
    /// <exception cref="Export.OnnxExportException">The model or a setting cannot be exported exactly.</exception>
    /// <exception cref="NativeLibraryException">ONNX Runtime's native library cannot be loaded.</exception>
    /// <exception cref="InceptException">The temporary folder cannot be written.</exception>
    public static OnnxEngine FromModel(Models.InceptionModel model, OnnxExportOptions export, OnnxEngineOptions? options = null, bool releaseModel = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(export);
        var built = OnnxExporter.Build(model, export with { DynamicBatch = true, FoldBatchNorm = true });
        string folder = Path.GetTempPath();
        string file = Path.Combine(folder, $"incept-export-{Environment.ProcessId}-{Guid.NewGuid():N}.onnx");
        try
        {
            try
            {
                using var stream = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
                built.WriteTo(stream);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InceptException($"Could not write the exported model to the temporary folder '{folder}' ({e.Message}); free space there or point TMPDIR at a writable folder.", e);
            }

            string name = $"{export.ModelName ?? model.GetName()} (exported on the fly)";
            if (releaseModel) model.Dispose();
            return Create(name, sessionOptions => new InferenceSession(file, sessionOptions), options);
        }
        finally
        {
            try
            {
                File.Delete(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A leftover temporary file is harmless; the engine does not read it again.
            }
        }
    }

    private static OnnxEngine Create(string name, Func<SessionOptions, InferenceSession> open, OnnxEngineOptions? options)
    {
        options ??= new OnnxEngineOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.Threads);
        InferenceSession? session = null;
        try
        {
            using var sessionOptions = new SessionOptions
            {
                IntraOpNumThreads = options.Threads,
                InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = options.Optimize ? GraphOptimizationLevel.ORT_ENABLE_ALL : GraphOptimizationLevel.ORT_DISABLE_ALL,
                EnableMemoryPattern = options.MemoryPattern,
            };
            session = open(sessionOptions);
            if (session.InputMetadata.Count != 1 || session.OutputMetadata.Count < 1)
                throw OnnxModelInfo.NotAModel(name, $"it has {session.InputMetadata.Count} inputs and {session.OutputMetadata.Count} outputs instead of one image input and a logits output");
            var (inputName, input) = session.InputMetadata.First();
            var (outputName, output) = session.OutputMetadata.First();
            if (input.ElementDataType != TensorElementType.Float || output.ElementDataType != TensorElementType.Float)
                throw OnnxModelInfo.NotAModel(name, "its input or output is not float32");
            var info = OnnxModelInfo.From(name, session.ModelMetadata.CustomMetadataMap, inputName, Dims(input), outputName, Dims(output));
            var engine = new OnnxEngine(session, info);
            session = null;
            return engine;
        }
        catch (OnnxRuntimeException e)
        {
            throw OnnxModelInfo.NotAModel(name, e.Message, e);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException or BadImageFormatException)
        {
            throw new NativeLibraryException($"ONNX Runtime's native library (libonnxruntime) could not be loaded: {e.GetBaseException().Message}. Reinstall Incept, or use --engine torch.", e);
        }
        finally
        {
            session?.Dispose();
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A file exported with a fixed batch size runs batches of any size: in chunks of that size, the last one padded
    /// with zeros.
    /// </remarks>
    /// <exception cref="InputShapeException">The batch does not have the file's channels and image size.</exception>
    public Tensor Run(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckShape(input);
        using var scope = NewDisposeScope();
        var x = input.to(float32, CPU).contiguous();
        long n = x.shape[0];
        if (Info.BatchSize is not { } fixedBatch || fixedBatch == n) return RunBatch(x).MoveToOuterDisposeScope();
        var chunks = new List<Tensor>();
        for (long start = 0; start < n; start += fixedBatch)
        {
            var chunk = x[TensorIndex.Slice(start, Math.Min(n, start + fixedBatch))];
            long rows = chunk.shape[0];
            if (rows < fixedBatch) chunk = cat([chunk, zeros([fixedBatch - rows, .. chunk.shape[1..]], float32)], 0);
            chunks.Add(RunBatch(chunk.contiguous())[TensorIndex.Slice(0, rows)]);
        }

        return cat(chunks, 0).MoveToOuterDisposeScope();
    }

    private Tensor RunBatch(Tensor x)
    {
        using var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Float, x.shape);
        x.bytes.CopyTo(value.GetTensorMutableRawData());
        using var outputs = session.Run(runOptions, inputNames, [value], outputNames);
        var result = outputs[0];
        var logits = empty(result.GetTensorTypeAndShape().Shape, float32);
        MemoryMarshal.AsBytes(result.GetTensorDataAsSpan<float>()).CopyTo(logits.bytes);
        return logits;
    }

    private void CheckShape(Tensor input)
    {
        var i = Info;
        if (input.dim() == 4 && input.shape[1] == i.InChannels && input.shape[2] == i.Height && input.shape[3] == i.Width) return;
        throw new InputShapeException($"'{Path.GetFileName(i.Path)}' takes batches shaped N×{i.InChannels}×{i.Height}×{i.Width}; got [{string.Join(", ", input.shape)}]. "
            + "Preprocess the images to the file's input size (see its metadata), or export it again with --input-size.");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        runOptions.Dispose();
        session.Dispose();
    }

    private static long?[] Dims(NodeMetadata metadata)
        => [.. metadata.Dimensions.Select(d => d > 0 ? d : (long?)null)];
}
