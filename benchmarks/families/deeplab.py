"""DeepLabV3, as torchvision defines it (see families/__init__.py)."""
import torch
import torch.nn.functional as F
from torch import nn

from .common import conv_bn


class DilatedBasicBlock(nn.Module):
    """ResNet's basic block with dilated 3x3 convolutions (the first at ``first_dilation``,
    the dilation of the layer before, as torchvision does where a stride becomes a dilation)."""

    def __init__(self, c_in, c_out, stride=1, dilation=1, first_dilation=1):
        super().__init__()
        self.conv1 = conv_bn(c_in, c_out, 3, stride, dilation=first_dilation, act=nn.ReLU)
        self.conv2 = conv_bn(c_out, c_out, 3, dilation=dilation)
        self.downsample = (conv_bn(c_in, c_out, 1, stride)
                           if stride != 1 or c_in != c_out else None)
        self.relu = nn.ReLU()

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(shortcut + self.conv2(self.conv1(x)))


class DilatedResNet(nn.Module):
    """A ResNet-18-shaped backbone at half width (32..256 channels); at output stride 16 the
    last layer keeps the resolution and dilates by 2 instead of striding."""

    def __init__(self, widths=(32, 64, 128, 256), blocks=(2, 2, 2, 2), output_stride=16):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, widths[0], 7, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1))
        layers, c_in, stride_so_far, dilation = [], widths[0], 4, 1
        for i, (width, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            previous = dilation
            if stride_so_far * stride > output_stride:
                dilation, stride = dilation * stride, 1
            stride_so_far *= stride
            layers.append(nn.Sequential(
                DilatedBasicBlock(c_in, width, stride, dilation, previous),
                *[DilatedBasicBlock(width, width, 1, dilation, dilation) for _ in range(n - 1)]))
            c_in = width
        self.layers = nn.Sequential(*layers)
        self.out_channels = c_in

    def forward(self, x):
        return self.layers(self.stem(x))


class ASPPPooling(nn.Module):
    """The image-level branch: global average, 1x1 conv, BN, ReLU, bilinear back to the map."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = conv_bn(c_in, c_out, 1, act=nn.ReLU)

    def forward(self, x):
        y = self.conv(self.pool(x))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 branch, one dilated 3x3 branch per rate and the
    image pooling branch, concatenated and projected by a 1x1 conv."""

    def __init__(self, c_in, rates=(6, 12, 18), c_out=128):
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_bn(c_in, c_out, 1, act=nn.ReLU)]
            + [conv_bn(c_in, c_out, 3, dilation=r, act=nn.ReLU) for r in rates]
            + [ASPPPooling(c_in, c_out)])
        self.project = nn.Sequential(conv_bn(c_out * (len(rates) + 2), c_out, 1, act=nn.ReLU),
                                     nn.Dropout(0.5))

    def forward(self, x):
        return self.project(torch.cat([b(x) for b in self.branches], dim=1))


class DeepLabV3(nn.Module):
    def __init__(self, num_classes=21, output_stride=16, head=128):
        super().__init__()
        self.backbone = DilatedResNet(output_stride=output_stride)
        rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        self.classifier = nn.Sequential(ASPP(self.backbone.out_channels, rates, head),
                                        conv_bn(head, head, 3, act=nn.ReLU),
                                        nn.Conv2d(head, num_classes, 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        y = self.classifier(self.backbone(x))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
