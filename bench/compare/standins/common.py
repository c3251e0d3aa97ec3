"""Building blocks shared by the stand-ins: the references' conv unit and the factorised residual block."""
import torch
from torch import nn


class BasicConv2d(nn.Module):
    """Convolution without bias -> BatchNorm (eps 1e-3) -> ReLU, as `conv`, `bn` (and `relu`)."""

    def __init__(self, in_ch, out_ch, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=1e-3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


def seq(*units):
    return nn.Sequential(*units)


class FactorisedResidual(nn.Module):
    """Inception-ResNet-B and -C: a 1x1 branch (`branch0`) beside 1x1 -> 1xk -> kx1 (`branch1`), joined by a 1x1
    convolution with bias (`conv2d`) back to `ch` channels, scaled, added to the input, then a ReLU unless relu=False
    (the last block of both networks)."""

    def __init__(self, ch, b0, reduce, mid, out, k, scale, relu=True):
        super().__init__()
        self.scale = scale
        self.use_relu = relu
        self.branch0 = BasicConv2d(ch, b0, 1)
        self.branch1 = seq(BasicConv2d(ch, reduce, 1), BasicConv2d(reduce, mid, (1, k), padding=(0, k // 2)),
                           BasicConv2d(mid, out, (k, 1), padding=(k // 2, 0)))
        self.conv2d = nn.Conv2d(b0 + out, ch, 1)

    def forward(self, x):
        y = self.conv2d(torch.cat([self.branch0(x), self.branch1(x)], 1)) * self.scale + x
        if self.use_relu:
            y = torch.relu(y)
        return y
