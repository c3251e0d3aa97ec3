using Incept.Models;
using Incept.Models.InceptionResNetV1;
using Incept.Registry;
using Incept.Tests.Reference;
using Incept.Weights;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

/// <summary>facenet-pytorch's Inception-ResNet-v1: the face embedding, the optional classifier, the input sizes.</summary>
public class InceptionResNetV1Tests
{
    private const string Name = "inception_resnet_v1";

    private static ReferenceFixture Fixture => ReferenceFixture.Open("facenet_inception_resnet_v1");

    [Fact]
    public void Without_classes_the_output_is_the_reference_embedding()
    {
        var fixture = Fixture;
        using var model = ModelFactory.Create(Name, new ModelConfig { NumClasses = 0 });
        var sd = fixture.StateDict().Where(kv => !kv.Key.StartsWith("logits.", StringComparison.Ordinal)).ToDictionary();
        StateDictLoader.Load(model, sd);
        model.eval();
        using var _ = no_grad();
        using var input = fixture.Input();
        using var expected = fixture.Embeddings();
        ReferenceParityTests.AssertClose(expected, model.call(input).Logits, Name + " embedding");
    }

    [Fact]
    public void Pre_logits_head_gives_the_reference_embedding_when_the_model_has_classes()
    {
        var fixture = Fixture;
        using var model = ModelFactory.Create(Name);
        StateDictLoader.Load(model, fixture.StateDict());
        model.eval();
        using var _ = no_grad();
        using var input = fixture.Input();
        using var expected = fixture.Embeddings();
        var embedding = model.ForwardHead(model.ForwardFeatures(input), preLogits: true);
        ReferenceParityTests.AssertClose(expected, embedding, Name + " pre-logits");
        var norms = embedding.norm(1);
        Assert.True(norms.Minus(1).abs().max().item<float>() < 1e-5, "the embedding is L2-normalised");
    }

    [Fact]
    public void Without_classes_there_is_no_logits_module()
    {
        using var model = ModelFactory.Create(Name, new ModelConfig { NumClasses = 0 });
        var keys = model.state_dict().Keys.ToList();
        Assert.DoesNotContain(keys, k => k.StartsWith("logits", StringComparison.Ordinal));
        Assert.Equal(23_482_624, model.parameters().Sum(p => p.numel()));
        Assert.Equal(InceptionResNetV1.EmbeddingSize, model.NumFeatures);
    }

    [Fact]
    public void Reset_classifier_replaces_removes_and_restores_the_logits_layer()
    {
        using var model = ModelFactory.Create(Name);
        model.eval();
        using var _ = no_grad();
        using var x = randn(2, 3, model.MinInputSize, model.MinInputSize);

        model.ResetClassifier(10);
        Assert.Equal([2L, 10], model.call(x).Logits.shape);
        Assert.Equal(10, model.NumClasses);
        Assert.Equal([10L, 512], model.state_dict()["logits.weight"].shape);

        model.ResetClassifier(0);
        var embedding = model.call(x).Logits;
        Assert.Equal([2L, 512], embedding.shape);
        Assert.True(embedding.norm(1).Minus(1).abs().max().item<float>() < 1e-5);
        Assert.DoesNotContain(model.state_dict().Keys, k => k.StartsWith("logits", StringComparison.Ordinal));

        model.ResetClassifier(7);
        Assert.Equal([2L, 7], model.call(x).Logits.shape);
        Assert.Equal("logits", model.named_children().Last().name);
    }

    [Fact]
    public void The_minimum_input_size_works_and_one_pixel_less_is_rejected()
    {
        using var model = ModelFactory.Create(Name);
        Assert.Equal(ModelRegistry.Get(Name).MinInputSize, model.MinInputSize);
        model.eval();
        using var _ = no_grad();
        int min = model.MinInputSize;
        Assert.Equal([1L, 1792, 1, 1], model.ForwardFeatures(randn(1, 3, min, min)).shape);
        Assert.Throws<InputShapeException>(() => model.call(randn(1, 3, min - 1, min - 1)));
        Assert.Throws<InputShapeException>(() => model.call(randn(1, 3, min, min - 1)));
    }

    [Fact]
    public void Training_at_the_minimum_size_runs_forward_and_backward()
    {
        using var model = ModelFactory.Create(Name, new ModelConfig { NumClasses = 10 });
        model.train();
        int min = model.MinInputSize;
        using var x = randn(2, 3, min, min);
        var output = model.call(x);
        Assert.Equal([2L, 10], output.Logits.shape);
        Assert.Empty(output.Aux);
        var loss = nn.functional.cross_entropy(output.Logits, tensor(new long[] { 1, 7 }));
        loss.backward();
        var grad = model.get_parameter("conv2d_1a.conv.weight")!.grad;
        Assert.NotNull(grad);
        Assert.True(grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Feature_info_matches_the_feature_maps()
    {
        using var model = ModelFactory.Create(Name);
        model.eval();
        using var _ = no_grad();
        var children = model.named_children().ToDictionary(c => c.name, c => c.module);
        var x = randn(1, 3, 160, 160);
        var seen = new Dictionary<string, long[]>();
        foreach (var (name, module) in model.Stages())
        {
            if (name == "avgpool_1a") break;
            x = ((nn.Module<Tensor, Tensor>)module).call(x);
            seen[name] = x.shape;
        }

        foreach (var f in model.FeatureInfo)
        {
            Assert.True(children.ContainsKey(f.Module), f.Module);
            Assert.Equal(f.NumChannels, seen[f.Module][1]);
            // Unpadded convolutions trim the maps a little: the side lies between 160 / (2 × reduction) and 160 / reduction.
            Assert.InRange(seen[f.Module][2], 160 / (2 * f.Reduction) + 1, 160 / f.Reduction);
        }
    }
}
