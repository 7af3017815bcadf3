"""EfficientNet-B0, as torchvision defines it (see families/__init__.py)."""
import math

import torch
from torch import nn

from .common import conv_bn, init_weights, SqueezeExcite


class MBConv(nn.Module):
    """Inverted residual with squeeze-and-excitation (EfficientNet): 1x1 expansion, kxk
    depthwise, SE squeezed to a quarter of the block's input channels, 1x1 projection."""

    def __init__(self, c_in, c_out, expand, kernel, stride, eps=1e-5):
        super().__init__()
        hidden = c_in * expand
        layers = []
        if hidden != c_in:
            layers.append(conv_bn(c_in, hidden, 1, act=nn.SiLU, eps=eps))
        layers += [conv_bn(hidden, hidden, kernel, stride, groups=hidden, act=nn.SiLU, eps=eps),
                   SqueezeExcite(hidden, max(1, c_in // 4), act=nn.SiLU, gate=nn.Sigmoid),
                   conv_bn(hidden, c_out, 1, eps=eps)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y  # stochastic depth: the identity at inference


class EfficientNetB0(nn.Module):
    # expand ratio, kernel, stride, input channels, output channels, blocks
    STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
              (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
              (6, 3, 1, 192, 320, 1)]

    def __init__(self, num_classes=1000):
        super().__init__()
        layers = [conv_bn(3, 32, 3, 2, act=nn.SiLU)]
        for expand, kernel, stride, c_in, c_out, blocks in self.STAGES:
            layers.append(nn.Sequential(*[
                MBConv(c_in if i == 0 else c_out, c_out, expand, kernel, stride if i == 0 else 1)
                for i in range(blocks)]))
        layers.append(conv_bn(320, 1280, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))
        init_weights(self, lambda m: nn.init.uniform_(m.weight, -1.0 / math.sqrt(m.out_features),
                                                      1.0 / math.sqrt(m.out_features)))

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
