"""RegNetX-400MF, as torchvision defines it (see families/__init__.py)."""
import math

import torch
from torch import nn

from .common import conv_bn


class RegNetBlock(nn.Module):
    """RegNet's residual bottleneck: 1x1, 3x3 grouped (group width fixed), 1x1; a 1x1
    strided projection on the shortcut where the shape changes; ReLU after the sum."""

    def __init__(self, c_in, c_out, stride, group_width, bottleneck=1.0):
        super().__init__()
        width = int(round(c_out * bottleneck))
        groups = width // min(group_width, width)
        self.proj = conv_bn(c_in, c_out, 1, stride) if c_in != c_out or stride != 1 else None
        self.f = nn.Sequential(conv_bn(c_in, width, 1, act=nn.ReLU),
                               conv_bn(width, width, 3, stride, groups=groups, act=nn.ReLU),
                               conv_bn(width, c_out, 1))
        self.act = nn.ReLU()

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        return self.act(shortcut + self.f(x))


class RegNetX(nn.Module):
    def __init__(self, stem=32, widths=(32, 64, 160, 400), depths=(1, 2, 7, 12), group_width=16,
                 bottleneck=1.0, num_classes=1000):
        super().__init__()
        self.stem = conv_bn(3, stem, 3, 2, act=nn.ReLU)
        stages, c_in = [], stem
        for width, depth in zip(widths, depths):
            stages.append(nn.Sequential(*[
                RegNetBlock(c_in if i == 0 else width, width, 2 if i == 0 else 1, group_width,
                            bottleneck) for i in range(depth)]))
            c_in = width
        self.trunk = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.trunk(self.stem(x))), 1))
