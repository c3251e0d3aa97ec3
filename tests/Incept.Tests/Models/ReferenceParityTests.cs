using Incept.Models;
using Incept.Registry;
using Incept.Tests.Reference;
using Incept.Weights;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

/// <summary>Every model with a reference fixture has the reference's keys and shapes and computes its logits.</summary>
public class ReferenceParityTests
{
    public static TheoryData<string> WithReference() => ReferenceModels.WithReference();

    public static TheoryData<string> WithAuxReference() => ReferenceModels.WithAuxReference();

    [Theory]
    [MemberData(nameof(WithReference))]
    public void State_dict_keys_and_shapes_equal_the_reference(string name)
        => AssertKeysEqual(name, aux: false, ReferenceFixture.Open(ReferenceModels.Folders[name].Plain));

    [Theory]
    [MemberData(nameof(WithAuxReference))]
    public void State_dict_keys_and_shapes_with_aux_heads_equal_the_reference(string name)
        => AssertKeysEqual(name, aux: true, ReferenceFixture.Open(ReferenceModels.Folders[name].Aux!));

    [Theory]
    [MemberData(nameof(WithReference))]
    public void Formula_weights_reproduce_the_reference_logits(string name)
    {
        var fixture = ReferenceFixture.Open(ReferenceModels.Folders[name].Plain);
        using var model = ModelFactory.Create(name);
        StateDictLoader.Load(model, fixture.StateDict());
        model.eval();
        using var _ = no_grad();
        using var input = fixture.Input();
        using var expected = fixture.Logits();
        var output = model.call(input);
        AssertClose(expected, output.Logits, name, ReferenceModels.Tolerance(name));
    }

    [Theory]
    [MemberData(nameof(WithAuxReference))]
    public void A_checkpoint_with_aux_heads_gives_the_same_evaluation_logits(string name)
    {
        var (plain, aux) = ReferenceModels.Folders[name];
        var plainFixture = ReferenceFixture.Open(plain);
        var auxFixture = ReferenceFixture.Open(aux!);
        using var model = ModelFactory.Create(name, new ModelConfig { AuxLogits = true });
        StateDictLoader.Load(model, auxFixture.StateDict(statsFrom: plainFixture));
        model.eval();
        using var _ = no_grad();
        using var input = plainFixture.Input();
        using var expected = plainFixture.Logits();
        var output = model.call(input);
        Assert.Empty(output.Aux);
        AssertClose(expected, output.Logits, name, ReferenceModels.Tolerance(name));
    }

    internal static void AssertClose(Tensor expected, Tensor actual, string what, double tolerance = 1e-4)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = Math.Max(1.0, expected.abs().max().item<float>());
        double diff = (expected - actual).abs().max().item<float>();
        Assert.True(diff <= tolerance * scale, $"{what}: max |Δ| = {diff:G4} exceeds {tolerance:G2} × {scale:G4}");
    }

    private static void AssertKeysEqual(string name, bool aux, ReferenceFixture fixture)
    {
        using var model = ModelFactory.Create(name, new ModelConfig { AuxLogits = aux });
        var actual = model.state_dict().Select(kv => $"{kv.Key} {string.Join("x", kv.Value.shape)}").ToList();
        var expected = fixture.Keys.Select(k => $"{k.Key} {string.Join("x", k.Shape)}").ToList();
        var missing = expected.Except(actual).Take(10).ToList();
        var extra = actual.Except(expected).Take(10).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0,
            $"{name}: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", extra)}]");
        Assert.Equal(expected.Count, actual.Count);
        Assert.Equal(fixture.ParamCount, model.parameters().Sum(p => p.numel()));
    }
}
