namespace Incept.Training;

/// <summary>
/// A training setting that cannot work: an unknown or mistyped recipe field, or a value out of its range
/// (a negative learning rate, a decay outside [0, 1)). The message names the setting and the accepted values.
/// </summary>
public sealed class TrainingSettingException : InceptException
{
    /// <summary>Creates the exception for the setting <paramref name="setting"/> with a user-facing message.</summary>
    public TrainingSettingException(string setting, string message) : base(message)
    {
        Setting = setting;
    }

    /// <summary>Creates the exception for the setting <paramref name="setting"/> with a user-facing message and the cause.</summary>
    public TrainingSettingException(string setting, string message, Exception inner) : base(message, inner)
    {
        Setting = setting;
    }

    /// <summary>Creates the exception with a user-facing message.</summary>
    public TrainingSettingException(string message) : base(message) { }

    /// <summary>Creates the exception with a user-facing message and the cause.</summary>
    public TrainingSettingException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception with a generic message.</summary>
    public TrainingSettingException() { }

    /// <summary>The setting at fault (a recipe field name such as <c>learning_rate</c>), or empty.</summary>
    public string Setting { get; } = "";

    /// <summary>Throws unless <paramref name="value"/> is finite and at least <paramref name="min"/> (and, when given, below <paramref name="maxExclusive"/>).</summary>
    internal static void CheckRange(string setting, double value, double min, double maxExclusive = double.PositiveInfinity)
    {
        if (!double.IsFinite(value) || value < min || value >= maxExclusive)
        {
            var range = double.IsPositiveInfinity(maxExclusive) ? $"{min} or more" : $"in [{min}, {maxExclusive})";
            throw new TrainingSettingException(setting, $"The setting {setting} must be {range}; got {value}.");
        }
    }

    /// <summary>Throws unless <paramref name="value"/> is finite and above zero.</summary>
    internal static void CheckPositive(string setting, double value)
    {
        if (!double.IsFinite(value) || value <= 0)
            throw new TrainingSettingException(setting, $"The setting {setting} must be above 0; got {value}.");
    }
}
