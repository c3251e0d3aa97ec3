namespace Incept.Data;

/// <summary>A data set folder or file that does not exist; the message says where it was looked for and how to get it.</summary>
public sealed class DatasetNotFoundException : InceptException
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public DatasetNotFoundException(string message) : base(message) { }

    /// <summary>Creates the exception with a generic message.</summary>
    public DatasetNotFoundException() { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public DatasetNotFoundException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// A data file (IDX, CIFAR batch, image) that exists but cannot be read: corrupt, truncated or of the wrong
/// format. The message names the file.
/// </summary>
public sealed class DataFormatException : InceptException
{
    /// <summary>Creates the exception for the file at <paramref name="path"/>.</summary>
    public DataFormatException(string path, string message) : base(message)
    {
        FilePath = path;
    }

    /// <summary>Creates the exception for the file at <paramref name="path"/> with the underlying cause.</summary>
    public DataFormatException(string path, string message, Exception inner) : base(message, inner)
    {
        FilePath = path;
    }

    /// <summary>The file that could not be read.</summary>
    public string FilePath { get; } = "";

    /// <summary>Creates the exception with a generic message.</summary>
    public DataFormatException() { }

    /// <summary>Creates the exception with a message.</summary>
    public DataFormatException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public DataFormatException(string message, Exception inner) : base(message, inner) { }
}
