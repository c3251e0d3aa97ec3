"""PyTorch stand-in for Cadene's BN-Inception (pretrainedmodels 0.7.4 `bninception`), written from Incept's C# model
(src/Incept/Models/BNInception).

Every module sits on the model itself under Cadene's flat Caffe-style names (`inception_3a_double_3x3_1`,
`inception_3a_double_3x3_1_bn`, ...), in the reference's order, so the state_dict has its keys, shapes and order;
fixture.check(build(), "cadene_bninception") verifies that it reproduces the reference logits. The forward pass looks
the modules up by name, so TorchScript traces it rather than scripting it. Used for ONNX export and PyTorch timing only.
"""
import torch
from torch import nn

# (name, 1x1, 3x3 reduce, 3x3, double 3x3 reduce, double 3x3, pool projection, branch pool) of each Inception module;
# a stride-2 module has no 1x1 and no pool projection (None) and passes its max-pooled input through instead.
BLOCKS = [
    ("inception_3a", 64, 64, 64, 64, 96, 32, "avg"),
    ("inception_3b", 64, 64, 96, 64, 96, 64, "avg"),
    ("inception_3c", None, 128, 160, 64, 96, None, "reduce"),
    ("inception_4a", 224, 64, 96, 96, 128, 128, "avg"),
    ("inception_4b", 192, 96, 128, 96, 128, 128, "avg"),
    ("inception_4c", 160, 128, 160, 128, 160, 128, "avg"),
    ("inception_4d", 96, 128, 192, 160, 192, 128, "avg"),
    ("inception_4e", None, 128, 192, 192, 256, None, "reduce"),
    ("inception_5a", 352, 192, 320, 160, 224, 128, "avg"),
    ("inception_5b", 352, 192, 320, 192, 224, 128, "max"),
]


class BNInception(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self._unit("conv1_7x7_s2", 3, 64, 7, stride=2, padding=3)
        self.pool1_3x3_s2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self._unit("conv2_3x3_reduce", 64, 64, 1)
        self._unit("conv2_3x3", 64, 192, 3, padding=1)
        self.pool2_3x3_s2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        channels = 192
        for name, c1, r3, c3, rd, cd, proj, pool in BLOCKS:
            stride = 2 if pool == "reduce" else 1
            if c1 is not None:
                self._unit(f"{name}_1x1", channels, c1, 1)
            self._unit(f"{name}_3x3_reduce", channels, r3, 1)
            self._unit(f"{name}_3x3", r3, c3, 3, stride=stride, padding=1)
            self._unit(f"{name}_double_3x3_reduce", channels, rd, 1)
            self._unit(f"{name}_double_3x3_1", rd, cd, 3, padding=1)
            self._unit(f"{name}_double_3x3_2", cd, cd, 3, stride=stride, padding=1)
            if pool == "avg":
                setattr(self, f"{name}_pool", nn.AvgPool2d(3, stride=1, padding=1, ceil_mode=True, count_include_pad=True))
            elif pool == "max":
                setattr(self, f"{name}_pool", nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True))
            else:
                setattr(self, f"{name}_pool", nn.MaxPool2d(3, stride=2, ceil_mode=True))
            if proj is not None:
                self._unit(f"{name}_pool_proj", channels, proj, 1)
            channels = (c1 or 0) + c3 + cd + (proj if proj is not None else channels)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.last_linear = nn.Linear(channels, num_classes)

    def _unit(self, name, cin, cout, kernel, stride=1, padding=0):
        """Convolution with bias as `name`, BatchNorm (eps 1e-5) as `name`_bn; the ReLU is applied in forward."""
        setattr(self, name, nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding))
        setattr(self, name + "_bn", nn.BatchNorm2d(cout, eps=1e-5, momentum=0.9))

    def _run(self, name, x):
        return torch.relu_(getattr(self, name + "_bn")(getattr(self, name)(x)))

    def _block(self, name, has_1x1, x):
        branches = [self._run(f"{name}_1x1", x)] if has_1x1 else []
        branches.append(self._run(f"{name}_3x3", self._run(f"{name}_3x3_reduce", x)))
        y = self._run(f"{name}_double_3x3_reduce", x)
        branches.append(self._run(f"{name}_double_3x3_2", self._run(f"{name}_double_3x3_1", y)))
        pooled = getattr(self, f"{name}_pool")(x)
        branches.append(self._run(f"{name}_pool_proj", pooled) if has_1x1 else pooled)
        return torch.cat(branches, 1)

    def forward(self, x):
        x = self.pool1_3x3_s2(self._run("conv1_7x7_s2", x))
        x = self._run("conv2_3x3", self._run("conv2_3x3_reduce", x))
        x = self.pool2_3x3_s2(x)
        for name, c1, *_ in BLOCKS:
            x = self._block(name, c1 is not None, x)
        return self.last_linear(torch.flatten(self.global_pool(x), 1))


def build(num_classes=1000):
    return BNInception(num_classes)
