"""ShuffleNetV2 x1.0, as torchvision defines it (see families/__init__.py)."""
import torch
from torch import nn

from .common import conv_bn


def channel_shuffle(x, groups):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, -1, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit: stride 1 splits the channels in two and transforms one half; stride
    2 transforms the whole input along two branches. Halves concatenated, then shuffled."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.stride = stride
        half = c_out // 2
        if stride > 1:
            self.branch1 = nn.Sequential(conv_bn(c_in, c_in, 3, stride, groups=c_in),
                                         conv_bn(c_in, half, 1, act=nn.ReLU))
        self.branch2 = nn.Sequential(conv_bn(c_in if stride > 1 else half, half, 1, act=nn.ReLU),
                                     conv_bn(half, half, 3, stride, groups=half),
                                     conv_bn(half, half, 1, act=nn.ReLU))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats=(4, 8, 4), channels=(24, 116, 232, 464, 1024), num_classes=1000):
        super().__init__()
        self.conv1 = conv_bn(3, channels[0], 3, 2, act=nn.ReLU)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        for blocks, c_in, c_out in zip(repeats, channels[:3], channels[1:4]):
            stages.append(nn.Sequential(ShuffleUnit(c_in, c_out, 2),
                                        *[ShuffleUnit(c_out, c_out, 1) for _ in range(blocks - 1)]))
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = conv_bn(channels[3], channels[4], 1, act=nn.ReLU)
        self.fc = nn.Linear(channels[4], num_classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))
