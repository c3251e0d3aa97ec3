using Incept.Tests.Scripts;

namespace Incept.Tests.Benchmarks;

/// <summary>
/// bench/compare times bn_inception, inception_v4 and the Inception-ResNets against PyTorch stand-ins
/// (bench/compare/standins), since their reference code is not in Debian. These tests hold the stand-ins to
/// the reference fixtures: the same state_dict keys, shapes and order, and the reference logits.
/// </summary>
public class StandinTests
{
    private static readonly string[] Models = ["bn_inception", "inception_v4", "inception_resnet_v1", "inception_resnet_v2"];

    private static string StandinDir()
    {
        for (var dir = AppContext.BaseDirectory; dir is not null; dir = Path.GetDirectoryName(dir))
        {
            var candidate = Path.Combine(dir, "bench", "compare", "standins");
            if (File.Exists(Path.Combine(candidate, "check.py"))) return candidate;
        }

        throw new DirectoryNotFoundException("bench/compare/standins not found above " + AppContext.BaseDirectory);
    }

    [SkippableFact]
    public void Every_standin_loads_its_reference_fixture_strictly_and_reproduces_the_reference_logits()
    {
        PythonReference.Require("torch, numpy");
        var (code, stdout, stderr) = PythonReference.RunWithOutput(Path.Combine(StandinDir(), "check.py"));
        Assert.True(code == 0, $"check.py exited with {code}:\n{stdout}\n{stderr}");
        foreach (var model in Models)
            Assert.Contains($"{model}: matches ", stdout, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void The_fixture_check_rejects_a_standin_with_one_wrong_batchnorm_epsilon()
    {
        PythonReference.Require("torch, numpy");
        // The smallest porting mistake of the fixture README's sensitivity table: one network's BatchNorm eps.
        const string code = """
            import sys, torch
            sys.path.insert(0, sys.argv[1])
            import fixture, standins
            model = standins.build("inception_resnet_v1")
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eps = 1e-5
            try:
                fixture.check(model, standins.FIXTURE["inception_resnet_v1"])
            except AssertionError as e:
                print("rejected:", e)
                sys.exit(0)
            sys.exit("accepted")
            """;
        var (exit, stdout, stderr) = PythonReference.RunWithOutput("-c", code, StandinDir());
        Assert.True(exit == 0, $"{stdout}\n{stderr}");
        Assert.Contains("rejected: facenet_inception_resnet_v1: logits differ", stdout, StringComparison.Ordinal);
    }
}
