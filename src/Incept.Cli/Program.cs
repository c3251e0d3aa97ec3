Console.WriteLine(Incept.Registry.ModelRegistry.All.Count + " " + TorchSharp.torch.ones(2).sum().item<float>());
