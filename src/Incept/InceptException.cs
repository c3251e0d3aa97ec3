namespace Incept;

/// <summary>
/// A problem caused by the caller's input (a model name, a file, a shape) whose message says what is
/// wrong and how to fix it. Front ends show the message alone, without a stack trace.
/// </summary>
public class InceptException : Exception
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public InceptException(string message) : base(message) { }

    /// <summary>Creates the exception with a user-facing message and the underlying cause.</summary>
    public InceptException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception with a generic message.</summary>
    public InceptException() : base("Incept could not complete the request.") { }
}

/// <summary>A model name that the registry does not know.</summary>
public sealed class UnknownModelException : InceptException
{
    /// <summary>Creates the exception for <paramref name="name"/>, listing the known names.</summary>
    public UnknownModelException(string name, IEnumerable<string> known)
        : base($"Unknown model '{name}'. Known models: {string.Join(", ", known)}.")
    {
        Name = name;
    }

    /// <summary>The name that was asked for.</summary>
    public string Name { get; } = "";

    /// <summary>Creates the exception with a generic message.</summary>
    public UnknownModelException() { }

    /// <summary>Creates the exception with a message.</summary>
    public UnknownModelException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public UnknownModelException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>An input tensor whose shape the model cannot take.</summary>
public sealed class InputShapeException : InceptException
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public InputShapeException(string message) : base(message) { }

    /// <summary>Creates the exception with a generic message.</summary>
    public InputShapeException() { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public InputShapeException(string message, Exception inner) : base(message, inner) { }
}
