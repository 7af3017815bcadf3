"""permute and slice, alone and in the compositions CNNs write: ShuffleNetV2's unit (chunk,
channel shuffle, cat), pixel shuffle/unshuffle, x[:, a:b], unbind, negative dims."""


def _model(forward, *convs):
    """A module whose forward(self, x) is ``forward``, with 1x1 convolutions self.c0, ...
    given as (in, out) channel pairs; built with either framework."""
    def build(nn, F, cat):
        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                for i, (a, b) in enumerate(convs):
                    setattr(self, f"c{i}", nn.Conv2d(a, b, 1))

        Model.forward = lambda self, x: forward(self, x, F, cat)
        Model.__name__ = forward.__name__
        return Model()
    build.__name__ = forward.__name__
    return build


def nchw_to_nhwc(self, x, F, cat):
    return x.permute(0, 2, 3, 1) * 2.0


def nhwc_to_nchw(self, x, F, cat):
    return self.c0(x.permute(0, 3, 1, 2))


def transposes(self, x, F, cat):
    y = x.transpose(1, -1) + 1.0            # (N, W, H, C)
    z = y.permute([0, 2, 1, 3]).flatten(1)  # list form, then a view of the copy
    return z + x.swapaxes(-1, -2).transpose(2, 1).flatten(1)


def shuffle_by_hand(self, x, F, cat):
    """ShuffleNetV2's channel_shuffle as torchvision writes it."""
    n, c, h, w = x.size()
    y = self.c0(x)
    y = y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)
    return y


def shufflenet_unit(self, x, F, cat):
    """ShuffleNetV2's stride-1 unit: half the channels pass, half go through a branch."""
    x1, x2 = x.chunk(2, dim=1)
    out = cat((x1, F.relu(self.c0(x2))), 1)
    n, c, h, w = out.size()
    return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)


def shuffle_layers(self, x, F, cat):
    return F.channel_shuffle(self.c0(x), 3)


def channel_slices(self, x, F, cat):
    a = x[:, 1:3]
    b = x[:, :, ::2]
    c = x[..., 1:]
    d = x[:, -2:, 1:-1:2, None]
    return a.flatten(1) + 0.0, b * 1.0, c * 1.0, d * 1.0


def channel_slices_sum(self, x, F, cat):
    a, b, c, d = channel_slices(self, x, F, cat)
    return cat((a, b.flatten(1), c.flatten(1), d.flatten(1)), 1)


def selects_and_unbind(self, x, F, cat):
    r, g, b = x.unbind(1)             # (N, H, W) each
    y = x[:, 0] - x.select(-3, 2)    # negative dim
    z = (r * 0.3 + g * 0.6 + b * 0.1).unsqueeze(1)
    return cat((z, y.unsqueeze(-3), x.narrow(1, -2, 1)), dim=1).squeeze(2)


def splits(self, x, F, cat):
    a, b, c = x.split(3, dim=1)       # 3, 3, 1
    d, e = x.split([2, 5], -3)
    f = x.chunk(3, dim=-1)            # width 5: 2, 2, 1
    return cat([c, a, b], 1) + cat([e, d], 1) + cat([f[2], f[1], f[0]], -1)


def planes(self, x, F, cat):
    """Tiled transposes: large enough for TILE x TILE blocks, sizes not multiples of it."""
    return x.permute(0, 2, 3, 1).flatten(1) * 1.0


def five_dims(self, x, F, cat):
    n, c, h, w = x.shape
    y = x.view(n, 2, c // 2, h, w).permute(0, 3, 1, 4, 2)
    return y.reshape(n, -1, w, c // 2)[:, :, 1:, ::2]


CASES = {
    "permute": [
        ([("Conv2d", (3, 4, 1), {}), ("ChannelShuffle", (2,), {})], (1, 3, 5, 5)),
        (_model(nchw_to_nhwc), (1, 3, 4, 5)),
        (_model(nhwc_to_nchw, (6, 3)), (1, 5, 4, 6)),
        (_model(transposes), (1, 3, 4, 5)),
        (_model(shuffle_by_hand, (4, 4)), (1, 4, 3, 3)),
        (_model(shufflenet_unit, (4, 4)), (1, 8, 5, 5)),
        (_model(shuffle_layers, (6, 6)), (1, 6, 3, 4)),
        (_model(planes), (1, 35, 17, 3)),
        (_model(planes), (1, 32, 16, 2)),
        (_model(five_dims), (1, 4, 3, 5)),
        ([("PixelShuffle", (2,), {})], (1, 8, 3, 5)),
        ([("Conv2d", (3, 18, 3), dict(padding=1)), ("PixelShuffle", (3,), {})], (1, 3, 4, 4)),
        ([("PixelUnshuffle", (2,), {})], (1, 3, 4, 6)),
        ([("PixelUnshuffle", (3,), {}), ("Conv2d", (18, 4, 1), {})], (1, 2, 6, 9)),
    ],
    "slice": [
        (_model(channel_slices_sum), (1, 4, 5, 6)),
        (_model(selects_and_unbind), (1, 3, 4, 5)),
        (_model(splits), (1, 7, 3, 5)),
        (_model(shufflenet_unit, (4, 4)), (1, 8, 4, 3)),
        (_model(five_dims), (1, 6, 2, 4)),
    ],
}


def shufflenet_v2_stage(nn, F, cat):
    """A stage of torchvision's ShuffleNetV2 (its InvertedResidual, as written there): one
    stride-2 unit and two stride-1 units, wide enough for the channel-block kernels."""
    def conv_bn(a, b, k, stride=1, groups=1, relu=True):
        layers = [nn.Conv2d(a, b, k, stride, k // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(b)]
        return nn.Sequential(*layers, *([nn.ReLU(inplace=True)] if relu else []))

    def channel_shuffle(x, groups):
        batchsize, num_channels, height, width = x.size()
        channels_per_group = num_channels // groups
        x = x.view(batchsize, groups, channels_per_group, height, width)
        x = x.transpose(1, 2).contiguous()
        return x.view(batchsize, num_channels, height, width)

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride):
            super().__init__()
            self.stride, branch = stride, oup // 2
            if stride > 1:
                self.branch1 = nn.Sequential(conv_bn(inp, inp, 3, stride, inp, relu=False),
                                             conv_bn(inp, branch, 1))
            self.branch2 = nn.Sequential(conv_bn(inp if stride > 1 else branch, branch, 1),
                                         conv_bn(branch, branch, 3, stride, branch, relu=False),
                                         conv_bn(branch, branch, 1))

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = cat((x1, self.branch2(x2)), dim=1)
            else:
                out = cat((self.branch1(x), self.branch2(x)), dim=1)
            return channel_shuffle(out, 2)

    return nn.Sequential(InvertedResidual(24, 64, 2), InvertedResidual(64, 64, 1),
                         InvertedResidual(64, 64, 1))


CASES["slice"].append((shufflenet_v2_stage, (1, 24, 14, 14)))
