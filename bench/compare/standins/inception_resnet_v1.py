"""PyTorch stand-in for facenet-pytorch's `InceptionResnetV1` (v2.5.3, classify=True), written from Incept's C#
model (src/Incept/Models/InceptionResNetV1) for benchmarking (torch.onnx export and PyTorch timing).

Its state_dict has the reference's keys, shapes and order, and fixture.check(build(), "facenet_inception_resnet_v1")
verifies that it loads the reference fixture strictly and reproduces the reference logits. The forward pass returns
the `logits` layer's output (not the normalised embedding).
"""
import torch
from torch import nn

from common import BasicConv2d, FactorisedResidual, seq


class Block35(nn.Module):
    """Inception-ResNet-A (17x17 at 160 pixels, 256 channels)."""

    def __init__(self, scale, ch=256):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(ch, 32, 1)
        self.branch1 = seq(BasicConv2d(ch, 32, 1), BasicConv2d(32, 32, 3, padding=1))
        self.branch2 = seq(BasicConv2d(ch, 32, 1), BasicConv2d(32, 32, 3, padding=1),
                           BasicConv2d(32, 32, 3, padding=1))
        self.conv2d = nn.Conv2d(3 * 32, ch, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.conv2d(torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1))
        return self.relu(y * self.scale + x)


class Mixed6a(nn.Module):
    """Reduction-A (k, l, m, n = 192, 192, 256, 384): 256 -> 384 + 256 + 256 = 896 channels, 17x17 -> 8x8."""

    def __init__(self, in_ch=256):
        super().__init__()
        self.branch0 = BasicConv2d(in_ch, 384, 3, stride=2)
        self.branch1 = seq(BasicConv2d(in_ch, 192, 1), BasicConv2d(192, 192, 3, padding=1),
                           BasicConv2d(192, 256, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


def Block17(scale):
    """Inception-ResNet-B (8x8 at 160 pixels, 896 channels)."""
    return FactorisedResidual(896, 128, 128, 128, 128, 7, scale)


def Block8(scale, relu=True):
    """Inception-ResNet-C (3x3 at 160 pixels, 1792 channels)."""
    return FactorisedResidual(1792, 192, 192, 192, 192, 3, scale, relu)


class Mixed7a(nn.Module):
    """Reduction-B: 896 -> 384 + 256 + 256 + 896 = 1792 channels, 8x8 -> 3x3."""

    def __init__(self, in_ch=896):
        super().__init__()
        self.branch0 = seq(BasicConv2d(in_ch, 256, 1), BasicConv2d(256, 384, 3, stride=2))
        self.branch1 = seq(BasicConv2d(in_ch, 256, 1), BasicConv2d(256, 256, 3, stride=2))
        self.branch2 = seq(BasicConv2d(in_ch, 256, 1), BasicConv2d(256, 256, 3, padding=1),
                           BasicConv2d(256, 256, 3, stride=2))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class InceptionResNetV1(nn.Module):
    def __init__(self, num_classes=1000, drop_rate=0.6):
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)    # 160 -> 79
        self.conv2d_2a = BasicConv2d(32, 32, 3)             # -> 77
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)  # -> 77
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)         # -> 38
        self.conv2d_3b = BasicConv2d(64, 80, 1)             # -> 38
        self.conv2d_4a = BasicConv2d(80, 192, 3)            # -> 36
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)  # -> 17
        self.repeat_1 = nn.Sequential(*[Block35(0.17) for _ in range(5)])
        self.mixed_6a = Mixed6a()                           # -> 8
        self.repeat_2 = nn.Sequential(*[Block17(0.10) for _ in range(10)])
        self.mixed_7a = Mixed7a()                           # -> 3
        self.repeat_3 = nn.Sequential(*[Block8(0.20) for _ in range(5)])
        self.block8 = Block8(1.0, relu=False)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.last_linear = nn.Linear(1792, 512, bias=False)
        self.last_bn = nn.BatchNorm1d(512, eps=1e-3)
        self.logits = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))
        x = self.conv2d_4b(self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(x))))
        x = self.repeat_2(self.mixed_6a(self.repeat_1(x)))
        x = self.block8(self.repeat_3(self.mixed_7a(x)))
        x = torch.flatten(self.dropout(self.avgpool_1a(x)), 1)
        return self.logits(self.last_bn(self.last_linear(x)))


def build(num_classes=1000) -> nn.Module:
    return InceptionResNetV1(num_classes)
