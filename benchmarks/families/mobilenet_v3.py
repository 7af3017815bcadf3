"""MobileNetV3-Large, as torchvision defines it (see families/__init__.py)."""
import torch
from torch import nn

from .common import _divisible, conv_bn, init_weights, SqueezeExcite


class MobileV3Block(nn.Module):
    """MobileNetV3's inverted residual: optional 1x1 expansion, kxk depthwise, optional SE
    (ReLU, hardsigmoid gate) on the expanded channels, 1x1 projection."""

    def __init__(self, c_in, kernel, hidden, c_out, se, act, stride):
        super().__init__()
        eps = 1e-3
        layers = []
        if hidden != c_in:
            layers.append(conv_bn(c_in, hidden, 1, act=act, eps=eps))
        layers.append(conv_bn(hidden, hidden, kernel, stride, groups=hidden, act=act, eps=eps))
        if se:
            layers.append(SqueezeExcite(hidden, _divisible(hidden // 4), act=nn.ReLU,
                                        gate=nn.Hardsigmoid))
        layers.append(conv_bn(hidden, c_out, 1, eps=eps))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV3Large(nn.Module):
    RE, HS = nn.ReLU, nn.Hardswish
    # input channels, kernel, expanded channels, output channels, SE, activation, stride
    BLOCKS = [(16, 3, 16, 16, False, RE, 1), (16, 3, 64, 24, False, RE, 2),
              (24, 3, 72, 24, False, RE, 1), (24, 5, 72, 40, True, RE, 2),
              (40, 5, 120, 40, True, RE, 1), (40, 5, 120, 40, True, RE, 1),
              (40, 3, 240, 80, False, HS, 2), (80, 3, 200, 80, False, HS, 1),
              (80, 3, 184, 80, False, HS, 1), (80, 3, 184, 80, False, HS, 1),
              (80, 3, 480, 112, True, HS, 1), (112, 3, 672, 112, True, HS, 1),
              (112, 5, 672, 160, True, HS, 2), (160, 5, 960, 160, True, HS, 1),
              (160, 5, 960, 160, True, HS, 1)]

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 16, 3, 2, act=nn.Hardswish, eps=1e-3),
            *[MobileV3Block(*b) for b in self.BLOCKS],
            conv_bn(160, 960, 1, act=nn.Hardswish, eps=1e-3))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(960, 1280), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(1280, num_classes))
        init_weights(self, lambda m: nn.init.normal_(m.weight, 0, 0.01))

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
