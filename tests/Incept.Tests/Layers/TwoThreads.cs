using static TorchSharp.torch;

namespace Incept.Tests.Layers;

/// <summary>Runs a test with libtorch on two threads, whatever the machine's count, and puts the count back after.</summary>
internal static class TwoThreads
{
    public static void Run(Action test)
    {
        ArgumentNullException.ThrowIfNull(test);
        int before = get_num_threads();
        try
        {
            set_num_threads(2);
            test();
        }
        finally
        {
            set_num_threads(before);
        }
    }
}
