namespace Incept.Weights;

/// <summary>A weights file that cannot be read: truncated, corrupt, or of an unsupported kind.</summary>
public sealed class CheckpointFormatException : InceptException
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public CheckpointFormatException(string message) : base(message) { }

    /// <summary>Creates the exception with a user-facing message and the cause.</summary>
    public CheckpointFormatException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception with a generic message.</summary>
    public CheckpointFormatException() { }
}

/// <summary>A state dict whose keys or shapes do not match the model's.</summary>
public sealed class CheckpointMismatchException : InceptException
{
    /// <summary>Creates the exception from the three lists of differences.</summary>
    public CheckpointMismatchException(string model, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> shapeMismatches)
        : base(Describe(model, missing, unexpected, shapeMismatches))
    {
        Missing = missing;
        Unexpected = unexpected;
        ShapeMismatches = shapeMismatches;
    }

    /// <summary>Creates the exception with a user-facing message.</summary>
    public CheckpointMismatchException(string message) : base(message) { }

    /// <summary>Creates the exception with a user-facing message and the cause.</summary>
    public CheckpointMismatchException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception with a generic message.</summary>
    public CheckpointMismatchException() { }

    /// <summary>Model keys the checkpoint lacks.</summary>
    public IReadOnlyList<string> Missing { get; } = [];

    /// <summary>Checkpoint keys the model lacks.</summary>
    public IReadOnlyList<string> Unexpected { get; } = [];

    /// <summary>Keys present in both with different shapes, described as <c>key: checkpoint [a, b] vs model [c, d]</c>.</summary>
    public IReadOnlyList<string> ShapeMismatches { get; } = [];

    private static string Describe(string model, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> shapes)
    {
        static string List(string what, IReadOnlyList<string> items) => items.Count == 0 ? "" :
            $" {items.Count} {what}: {string.Join(", ", items.Take(10))}{(items.Count > 10 ? $", … ({items.Count - 10} more)" : "")}.";
        return $"The checkpoint does not match {model}." + List("missing keys", missing) + List("unexpected keys", unexpected)
            + List("shape mismatches", shapes)
            + " Check the model name and settings (classes, aux heads), or load with non-strict matching or without the classifier.";
    }
}
