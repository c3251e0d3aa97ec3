"""PyTorch stand-in for timm's `inception_resnet_v2` (timm 1.0.28), written from Incept's C# model
(src/Incept/Models/InceptionResNetV2) for benchmarking (torch.onnx export and PyTorch timing).

Its state_dict has the reference's keys, shapes and order, and fixture.check(build(), "timm_inception_resnet_v2")
verifies that it loads the reference fixture strictly and reproduces the reference logits.
"""
import torch
from torch import nn

from common import BasicConv2d, FactorisedResidual, seq


class Mixed5b(nn.Module):
    """End of the stem: 192 -> 96 + 64 + 96 + 64 = 320 channels at 35x35."""

    def __init__(self, in_ch=192):
        super().__init__()
        self.branch0 = BasicConv2d(in_ch, 96, 1)
        self.branch1 = seq(BasicConv2d(in_ch, 48, 1), BasicConv2d(48, 64, 5, padding=2))
        self.branch2 = seq(BasicConv2d(in_ch, 64, 1), BasicConv2d(64, 96, 3, padding=1),
                           BasicConv2d(96, 96, 3, padding=1))
        # The average pool counts only the valid pixels at the border.
        self.branch3 = seq(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), BasicConv2d(in_ch, 64, 1))

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class Block35(nn.Module):
    """Inception-ResNet-A (35x35, 320 channels)."""

    def __init__(self, scale, ch=320):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(ch, 32, 1)
        self.branch1 = seq(BasicConv2d(ch, 32, 1), BasicConv2d(32, 32, 3, padding=1))
        self.branch2 = seq(BasicConv2d(ch, 32, 1), BasicConv2d(32, 48, 3, padding=1),
                           BasicConv2d(48, 64, 3, padding=1))
        self.conv2d = nn.Conv2d(32 + 32 + 64, ch, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.conv2d(torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1))
        return self.relu(y * self.scale + x)


class Mixed6a(nn.Module):
    """Reduction-A (k, l, m, n = 256, 256, 384, 384): 35x35x320 -> 17x17x1088."""

    def __init__(self, in_ch=320):
        super().__init__()
        self.branch0 = BasicConv2d(in_ch, 384, 3, stride=2)
        self.branch1 = seq(BasicConv2d(in_ch, 256, 1), BasicConv2d(256, 256, 3, padding=1),
                           BasicConv2d(256, 384, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


def Block17(scale):
    """Inception-ResNet-B (17x17, 1088 channels)."""
    return FactorisedResidual(1088, 192, 128, 160, 192, 7, scale)


def Block8(scale, relu=True):
    """Inception-ResNet-C (8x8, 2080 channels)."""
    return FactorisedResidual(2080, 192, 192, 224, 256, 3, scale, relu)


class Mixed7a(nn.Module):
    """Reduction-B: 17x17x1088 -> 8x8x(384 + 288 + 320 + 1088 = 2080)."""

    def __init__(self, in_ch=1088):
        super().__init__()
        self.branch0 = seq(BasicConv2d(in_ch, 256, 1), BasicConv2d(256, 384, 3, stride=2))
        self.branch1 = seq(BasicConv2d(in_ch, 256, 1), BasicConv2d(256, 288, 3, stride=2))
        self.branch2 = seq(BasicConv2d(in_ch, 256, 1), BasicConv2d(256, 288, 3, padding=1),
                           BasicConv2d(288, 320, 3, stride=2))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class InceptionResNetV2(nn.Module):
    def __init__(self, num_classes=1000, drop_rate=0.0):
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)    # 299 -> 149
        self.conv2d_2a = BasicConv2d(32, 32, 3)             # -> 147
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)  # -> 147
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)         # -> 73
        self.conv2d_3b = BasicConv2d(64, 80, 1)             # -> 73
        self.conv2d_4a = BasicConv2d(80, 192, 3)            # -> 71
        self.maxpool_5a = nn.MaxPool2d(3, stride=2)         # -> 35
        self.mixed_5b = Mixed5b()
        self.repeat = nn.Sequential(*[Block35(0.17) for _ in range(10)])
        self.mixed_6a = Mixed6a()                           # -> 17
        self.repeat_1 = nn.Sequential(*[Block17(0.10) for _ in range(20)])
        self.mixed_7a = Mixed7a()                           # -> 8
        self.repeat_2 = nn.Sequential(*[Block8(0.20) for _ in range(9)])
        self.block8 = Block8(1.0, relu=False)
        self.conv2d_7b = BasicConv2d(2080, 1536, 1)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        self.classif = nn.Linear(1536, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x):
        x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))
        x = self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(x)))
        x = self.repeat(self.mixed_5b(self.maxpool_5a(x)))
        x = self.repeat_1(self.mixed_6a(x))
        x = self.block8(self.repeat_2(self.mixed_7a(x)))
        x = torch.flatten(self.global_pool(self.conv2d_7b(x)), 1)
        return self.classif(self.head_drop(x))


def build(num_classes=1000) -> nn.Module:
    return InceptionResNetV2(num_classes)
