"""The patterns of today's torchvision and timm CNNs, written with torch only.

Each function takes (nn, F, T) and builds the pattern with either framework: torch.nn,
torch.nn.functional and torch; or cnncompile.nn, cnncompile.nn.functional and the `cnn`
namespace below. They follow the way torchvision and timm write these blocks (class names
and forward() code), with small sizes. PATTERNS maps a name to (function, input shapes,
whether cnncompile.nn can express it too).
"""
import types

import numpy as np

import cnncompile


def cnn_namespace():
    """What the patterns call from the `torch` namespace, for cnncompile.nn models."""
    return types.SimpleNamespace(cat=cnncompile.cat, _assert=lambda cond, msg: None,
                                 split=lambda x, size, dim=0: x.split(size, dim))


def bn_act(nn, F, T):
    class BatchNormAct2d(nn.BatchNorm2d):
        """timm's: BatchNorm with its activation, asserting a 4-D input."""
        def __init__(self, num_features, act=True):
            super().__init__(num_features)
            self.act = nn.SiLU() if act else nn.Identity()

        def forward(self, x):
            T._assert(x.ndim == 4, f"expected 4D input (got {x.ndim}D input)")
            x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             False, self.momentum, self.eps)
            return self.act(x)

    class ConvBnAct(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn1 = BatchNormAct2d(8)
            self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False)
            self.bn2 = BatchNormAct2d(8, act=False)

        def forward(self, x):
            return self.bn2(self.conv2(self.bn1(self.conv(x))))
    return ConvBnAct()


def squeeze_excite(nn, F, T):
    class SqueezeExcitation(nn.Module):
        """torchvision's (MobileNetV3, EfficientNet): mean over the map, two 1x1 convs."""
        def __init__(self, channels, squeeze, gate):
            super().__init__()
            self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)
            self.act, self.gate = nn.ReLU(), gate

        def forward(self, x):
            s = x.mean((2, 3), keepdim=True)
            return x * self.gate(self.fc2(self.act(self.fc1(s))))

    class InvertedResidual(nn.Module):
        def __init__(self):
            super().__init__()
            self.expand = nn.Sequential(nn.Conv2d(8, 24, 1), nn.Hardswish())
            self.dw = nn.Sequential(nn.Conv2d(24, 24, 5, padding=2, groups=24), nn.SiLU())
            self.se = SqueezeExcitation(24, 8, nn.Hardsigmoid())
            self.se2 = SqueezeExcitation(24, 6, nn.Sigmoid())
            self.project = nn.Conv2d(24, 8, 1)

        def forward(self, x):
            return x + self.project(self.se2(self.se(self.dw(self.expand(x)))))
    return InvertedResidual()


def channel_shuffle_unit(nn, F, T):
    def channel_shuffle(x, groups):
        batchsize, num_channels, height, width = x.size()
        x = x.view(batchsize, groups, num_channels // groups, height, width)
        x = x.transpose(1, 2).contiguous()
        return x.view(batchsize, -1, height, width)

    class ShuffleUnit(nn.Module):
        """torchvision's ShuffleNetV2 InvertedResidual, stride 1 then stride 2."""
        def __init__(self):
            super().__init__()
            self.branch2 = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU(),
                                         nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU())
            self.down1 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
            self.down2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)

        def forward(self, x):
            x1, x2 = x.chunk(2, dim=1)
            out = channel_shuffle(T.cat((x1, self.branch2(x2)), 1), 2)
            out = channel_shuffle(T.cat((self.down1(out), self.down2(out)), 1), 2)
            return out
    return ShuffleUnit()


def convnext_block(nn, F, T):
    class LayerNorm2d(nn.LayerNorm):
        """torchvision's: LayerNorm over channels of an NCHW map, through channels-last."""
        def forward(self, x):
            x = x.permute(0, 2, 3, 1)
            x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
            return x.permute(0, 3, 1, 2)

    class DropPath(nn.Module):
        """timm's stochastic depth: the identity at inference."""
        def __init__(self, p):
            super().__init__()
            self.drop_prob = p

        def forward(self, x):
            if self.drop_prob == 0.0 or not self.training:
                return x
            raise RuntimeError("training only")

    class CNBlock(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.pwconv1, self.act, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.GELU(), \
                nn.Linear(4 * dim, dim)
            self.layer_scale = nn.Parameter(np.full((dim, 1, 1), 0.5, np.float32)
                                            if nn.__name__.startswith("cnncompile")
                                            else T.full((dim, 1, 1), 0.5))
            self.drop_path = DropPath(0.1)

        def forward(self, x):
            y = self.dwconv(x).permute(0, 2, 3, 1)
            y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))).permute(0, 3, 1, 2)
            return x + self.drop_path(self.layer_scale * y)

    class ConvNeXtStage(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 2, stride=2), LayerNorm2d(8, eps=1e-6))
            self.block = CNBlock(8)
            self.down = nn.Sequential(LayerNorm2d(8), nn.Conv2d(8, 16, 2, stride=2))

        def forward(self, x):
            return self.down(self.block(self.stem(x)))
    return ConvNeXtStage()


def aspp_head(nn, F, T):
    class ASPPPooling(nn.Sequential):
        def __init__(self, cin, cout):
            super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU())

        def forward(self, x):
            size = x.shape[-2:]
            for mod in self:
                x = mod(x)
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    class DeepLabHead(nn.Module):
        """torchvision's DeepLabV3 ASPP on a stride-2 backbone, upsampled to the input."""
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
            self.convs = nn.ModuleList([
                nn.Sequential(nn.Conv2d(8, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU()),
                nn.Sequential(nn.Conv2d(8, 4, 3, padding=2, dilation=2, bias=False),
                              nn.BatchNorm2d(4), nn.ReLU()),
                ASPPPooling(8, 4)])
            self.project = nn.Conv2d(12, 5, 1)

        def forward(self, x):
            input_shape = x.shape[-2:]
            f = self.backbone(x)
            y = self.project(T.cat([conv(f) for conv in self.convs], dim=1))
            return F.interpolate(y, size=input_shape, mode="bilinear", align_corners=False)
    return DeepLabHead()


def res2net_split(nn, F, T):
    class Bottle2neck(nn.Module):
        """timm's Res2Net: split channels, a conv per split fed by the previous one."""
        def __init__(self, width=4, scale=3):
            super().__init__()
            self.width = width
            self.conv1 = nn.Conv2d(8, width * scale, 1)
            self.convs = nn.ModuleList([nn.Conv2d(width, width, 3, padding=1)
                                        for _ in range(scale - 1)])
            self.conv3 = nn.Conv2d(width * scale, 8, 1)

        def forward(self, x):
            spx = T.split(F.relu(self.conv1(x)), self.width, 1)
            spo, sp = [], None
            for i, conv in enumerate(self.convs):
                sp = spx[i] if i == 0 else sp + spx[i]
                sp = F.relu(conv(sp))
                spo.append(sp)
            spo.append(spx[-1])
            return F.relu(self.conv3(T.cat(spo, 1)) + x)
    return Bottle2neck()


def ghost_module(nn, F, T):
    class GhostModule(nn.Module):
        """timm's GhostNet: a primary conv, a cheap depthwise one, cat, keep `out` channels."""
        def __init__(self, cin=4, out=10):
            super().__init__()
            self.out = out
            self.primary = nn.Sequential(nn.Conv2d(cin, 6, 1, bias=False), nn.BatchNorm2d(6),
                                         nn.ReLU())
            self.cheap = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False),
                                       nn.BatchNorm2d(6), nn.ReLU())

        def forward(self, x):
            x1 = self.primary(x)
            out = T.cat([x1, self.cheap(x1)], dim=1)
            return out[:, :self.out, :, :]
    return GhostModule()


def hrnet_fuse(nn, F, T):
    class Fuse(nn.Module):
        """HRNet's exchange: the low-resolution branch upsampled (nearest) and added."""
        def __init__(self):
            super().__init__()
            self.high = nn.Conv2d(3, 4, 3, padding=1)
            self.low = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
            self.low_to_high = nn.Sequential(nn.Conv2d(8, 4, 1), nn.Upsample(scale_factor=2.0,
                                                                             mode="nearest"))
            self.high_to_low = nn.Conv2d(4, 8, 3, stride=2, padding=1)

        def forward(self, x):
            h, lo = self.high(x), self.low(x)
            return F.relu(h + self.low_to_high(lo)), F.relu(lo + self.high_to_low(h))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fuse = Fuse()

        def forward(self, x):
            h, lo = self.fuse(x)
            return T.cat([h, F.interpolate(lo, scale_factor=2, mode="bilinear",
                                           align_corners=True)], 1)
    return Net()


def unet(nn, F, T):
    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
            self.enc2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())
            self.up = nn.UpsamplingBilinear2d(scale_factor=2)
            self.dec = nn.Sequential(nn.Conv2d(12, 4, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(4, 2, 1))

        def forward(self, x):
            e1 = self.enc1(x)
            return self.dec(T.cat([e1, self.up(self.enc2(e1))], dim=1))
    return UNet()


def norms(nn, F, T):
    class Norms(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.gn = nn.GroupNorm(4, 8)
            self.inorm = nn.InstanceNorm2d(8, affine=True)
            self.shuffle = nn.PixelShuffle(2)
            self.unshuffle = nn.PixelUnshuffle(2)

        def forward(self, x):
            y = F.silu(self.gn(self.conv(x)))
            y = self.inorm(y)
            return self.unshuffle(self.shuffle(y)).amax(dim=(2,), keepdim=True) + y.sum(2, True)
    return Norms()


def elementwise(nn, F, T):
    class Elementwise(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)
            self.mish, self.softplus = nn.Mish(), nn.Softplus(beta=2.0, threshold=5.0)

        def forward(self, x):
            y = self.conv(x)
            a = y.abs().sqrt() + y.exp().clamp(max=4.0) * y.clamp(min=-0.5)
            b = (y * y + 1.0).rsqrt() + y.pow(2) - self.mish(y) * self.softplus(y)
            return a * b + (y ** 3).mean(dim=-1, keepdim=True)
    return Elementwise()


def video3d(nn, F, T):
    class Video(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 4, 3, padding=1)
            self.pool = nn.MaxPool3d(2)
            self.avg = nn.AvgPool3d((1, 2, 2), stride=1)
            self.gap = nn.AdaptiveAvgPool3d(1)
            self.fc = nn.Linear(4, 5)

        def forward(self, x):
            y = self.avg(self.pool(F.relu(self.conv(x))))
            return self.fc(self.gap(y).flatten(1))
    return Video()


def two_inputs_dict(nn, F, T):
    class TwoHeads(nn.Module):
        """Two inputs (an image and a side feature map), a dict of two outputs."""
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.side = nn.Conv2d(2, 4, 1)
            self.aux = nn.Conv2d(4, 3, 1)

        def forward(self, x, y):
            f = F.relu(self.conv(x) + self.side(y))
            return {"out": f.mean((2, 3)), "aux": self.aux(f)}
    return TwoHeads()


def shape_branch(nn, F, T):
    class ShapeBranch(nn.Module):
        """EfficientViT-style forward() that branches on sizes, which torch.export resolves."""
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.small = nn.Conv2d(4, 4, 1)
            self.large = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            B, C, H, W = y.shape
            y = self.large(y) if H * W > 16 else self.small(y)
            return y.reshape(B, C, H * W).transpose(1, 2)
    return ShapeBranch()


def attention(nn, F, T):
    class Attention(nn.Module):
        """EfficientViT (MSRA)-style attention over the pixels of a small map."""
        def __init__(self, dim=4):
            super().__init__()
            self.dim, self.scale = dim, dim ** -0.5
            self.qkv = nn.Conv2d(6, 3 * dim, 1)
            self.proj = nn.Sequential(nn.ReLU(), nn.Conv2d(dim, 6, 1))

        def forward(self, x):
            B, C, H, W = x.shape
            q, k, v = self.qkv(x).view(B, -1, H * W).split([self.dim] * 3, dim=1)
            attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)
            y = (v @ attn.transpose(-2, -1)).view(B, self.dim, H, W)
            return x + self.proj(y)
    return Attention()


# name -> (pattern, input shapes (one per forward() argument), cnncompile.nn can build it)
PATTERNS = {
    "bn_act": (bn_act, [(1, 3, 8, 8)], True),
    "squeeze_excite": (squeeze_excite, [(1, 8, 7, 7)], True),
    "channel_shuffle": (channel_shuffle_unit, [(1, 8, 6, 6)], True),
    "convnext_block": (convnext_block, [(1, 3, 12, 12)], True),
    "aspp_head": (aspp_head, [(1, 3, 13, 11)], True),
    "res2net_split": (res2net_split, [(1, 8, 6, 6)], True),
    "ghost_module": (ghost_module, [(1, 4, 6, 6)], True),
    "hrnet_fuse": (hrnet_fuse, [(1, 3, 8, 10)], True),
    "unet": (unet, [(1, 3, 8, 8)], True),
    "norms": (norms, [(1, 3, 6, 6)], True),
    "elementwise": (elementwise, [(1, 3, 5, 5)], True),
    "video3d": (video3d, [(1, 3, 4, 6, 6)], True),
    "two_inputs_dict": (two_inputs_dict, [(1, 3, 6, 6), (1, 2, 6, 6)], True),
    "shape_branch": (shape_branch, [(1, 3, 6, 6)], True),
    "attention": (attention, [(1, 6, 3, 5)], True),
}
