namespace Incept.Data.Transforms;

/// <summary>
/// One step of image preparation on float CHW images. Random transforms draw only from the
/// <see cref="Random"/> they are given, so that a seeded generator per sample makes the result independent
/// of threads and order; deterministic transforms ignore it. Implementations must be safe to call from
/// several threads at once (they hold no mutable state).
/// </summary>
public interface IImageTransform
{
    /// <summary>Returns the transformed image (a new one, or <paramref name="image"/> itself when nothing changes).</summary>
    FloatImage Apply(FloatImage image, Random random);
}
