"""Benchmark models of six further architecture families, as plain torch modules.

Each follows the published architecture as torchvision defines it (layer sizes, strides,
activations, where the residuals and squeeze-and-excitation sit), written here so that the
harness needs no torchvision. Weights are random (seeded, the same in every process) and
BatchNorm statistics are drawn away from the defaults, as for torchvision:<name> models.
Nothing here trains: dropout and stochastic depth are left out (they are identities in eval).

They are not in models.MODELS: the test suites run every model of MODELS against torch in
every CI run. tests/test_families.py checks these at reduced input sizes, and the harness
takes their names like any other:

    python benchmarks/run.py --models efficientnet_b0,convnext_tiny --threads 1

FAMILIES maps each name to its benchmark input shape; ``build(name)`` returns the module.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

# name -> batch-1 input shape
FAMILIES = {
    "efficientnet_b0": (1, 3, 224, 224),
    "mobilenet_v3_large": (1, 3, 224, 224),
    "shufflenet_v2": (1, 3, 224, 224),
    "convnext_tiny": (1, 3, 224, 224),
    "regnet_x_400mf": (1, 3, 224, 224),
    "deeplabv3": (1, 3, 224, 224),
}


def _divisible(value, divisor=8):
    """``value`` rounded to a multiple of ``divisor``, never more than 10% below it (the
    channel rounding of the MobileNet family)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(c_in, c_out, kernel=1, stride=1, groups=1, act=None, dilation=1, eps=1e-5):
    """Conv (no bias) + BatchNorm (+ activation): the unit most of these networks are made of."""
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, dilation * (kernel - 1) // 2,
                        dilation=dilation, groups=groups, bias=False),
              nn.BatchNorm2d(c_out, eps=eps)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel gates from the pooled input: 1x1 conv, act, 1x1 conv, gate, times the input."""

    def __init__(self, channels, squeezed, act=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


# -- EfficientNet-B0 -------------------------------------------------------------------------

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
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# -- MobileNetV3-Large -----------------------------------------------------------------------

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
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# -- ShuffleNetV2 x1.0 -----------------------------------------------------------------------

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


# -- ConvNeXt-Tiny ---------------------------------------------------------------------------

class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW value (permuted to channels-last and back)."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """7x7 depthwise conv; then, on channels-last pixels, LayerNorm, Linear to 4x the
    channels, GELU, Linear back; a learnt per-channel layer scale; the residual."""

    def __init__(self, dim, layer_scale=1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.fc2(self.act(self.fc1(self.norm(y)))).permute(0, 3, 1, 2)
        return x + self.layer_scale * y  # stochastic depth: the identity at inference


class ConvNeXt(nn.Module):
    def __init__(self, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), num_classes=1000):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            layers.append(nn.Sequential(*[ConvNeXtBlock(dim) for _ in range(depth)]))
            if i + 1 < len(dims):
                layers.append(nn.Sequential(LayerNorm2d(dim, eps=1e-6),
                                            nn.Conv2d(dim, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1),
                                        nn.Linear(dims[-1], num_classes))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


# -- RegNetX-400MF ---------------------------------------------------------------------------

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


# -- DeepLabV3 -------------------------------------------------------------------------------

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


CONSTRUCTORS = {
    "efficientnet_b0": EfficientNetB0,
    "mobilenet_v3_large": MobileNetV3Large,
    "shufflenet_v2": ShuffleNetV2,
    "convnext_tiny": ConvNeXt,
    "regnet_x_400mf": RegNetX,
    "deeplabv3": DeepLabV3,
}


def build(name, seed=0):
    """The model ``name`` in eval mode, with weights drawn from ``seed`` (the same module in
    every process), BatchNorm statistics and affine parameters away from their defaults, and
    ConvNeXt's layer scales drawn from [0.1, 1] instead of 1e-6, so that every block counts
    in the output that is compared."""
    from models import randomise_torch_batch_norm
    torch.manual_seed(seed)
    model = CONSTRUCTORS[name]()
    randomise_torch_batch_norm(model, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ConvNeXtBlock):
                m.layer_scale.uniform_(0.1, 1.0, generator=g)
            elif isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.1, 0.1, generator=g)
    return model.eval()
