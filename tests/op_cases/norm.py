"""LayerNorm, GroupNorm and InstanceNorm (a group_norm, or a batch_norm with running
statistics): over 1 to 3 trailing dimensions, with and without affine parameters, and on
inputs whose mean is far from 0."""
import numpy as np

OFFSET = 30.0  # torch's own float rounding grows with the mean: 30 keeps it within 1e-5


def _randomise(nn, model, seed=0):
    """Affine parameters and running statistics that are not the defaults (torch's twin gets
    them from the cnncompile model's state_dict)."""
    if not nn.__name__.startswith("cnncompile"):
        return model
    rng = np.random.default_rng(seed)
    for key, value in model.state_dict(keep_vars=True).items():
        if value.dtype != np.float32:
            continue
        low, high = (0.5, 1.5) if key.endswith(("weight", "running_var")) else (-0.5, 0.5)
        value[...] = rng.uniform(low, high, value.shape)
    return model


def offset_layer_norm(nn, F, cat):
    """LayerNorm(C) over the last dimension of an (N, H, W, C)-shaped tensor, as ConvNeXt
    applies it channels-last, with a mean far from 0."""
    class ChannelsLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.norm = nn.Conv2d(3, 8, 1), nn.LayerNorm(8, eps=1e-6)

        def forward(self, x):
            y = self.conv(x) + OFFSET
            return self.norm(y.reshape(y.shape[0], 4, 5, 8))
    return _randomise(nn, ChannelsLast())


def offset_group_norm(nn, F, cat):
    class Offset(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm, self.inst = nn.GroupNorm(3, 6), nn.InstanceNorm2d(6, affine=True)

        def forward(self, x):
            return self.norm(x + OFFSET) + self.inst(x * 2.0 - OFFSET)
    return _randomise(nn, Offset())


def running_stats(nn, F, cat):
    return _randomise(nn, nn.Sequential(nn.InstanceNorm2d(3, affine=True,
                                                          track_running_stats=True)))


def functional_norms(nn, F, cat):
    """F.layer_norm, F.group_norm and F.instance_norm with constant arrays."""
    rng = np.random.default_rng(5)
    consts = dict(w=rng.uniform(0.5, 1.5, (5, 6)), b=rng.uniform(-0.5, 0.5, (5, 6)),
                  g=rng.uniform(0.5, 1.5, 4), c=rng.uniform(-0.5, 0.5, 4),
                  mean=rng.uniform(-0.5, 0.5, 4), var=rng.uniform(0.5, 1.5, 4))

    class Functional(nn.Module):
        def forward(self, x):
            as_t = (lambda a: a) if nn.__name__.startswith("cnncompile") else (
                lambda a: __import__("torch").from_numpy(a))
            k = {name: as_t(v.astype(np.float32)) for name, v in consts.items()}
            y = F.layer_norm(x, (5, 6), k["w"], k["b"], eps=1e-3)
            y = F.layer_norm(y, [6], bias=k["b"][0]) + F.layer_norm(y, (6,))
            y = F.group_norm(y, 2, k["g"], k["c"]) - F.group_norm(y, 4, eps=1e-2)
            y = F.instance_norm(y, weight=k["g"]) * F.instance_norm(y)
            return F.instance_norm(y, k["mean"], k["var"], k["g"], k["c"], use_input_stats=False)
    return Functional()


def channels_last_norm(channels, conv=False, offset=0.0, rank=2):
    """LayerNorm over the channels between permutes, as ConvNeXt's LayerNorm2d writes it (the
    cancel_permutes pass makes it a channel_norm); after a conv, on its channel blocks."""
    to_last, back = ((0, 2, 3, 1), (0, 3, 1, 2)) if rank == 2 else ((0, 2, 1), (0, 2, 1))

    def make(nn, F, cat):
        class ChannelsLastNorm(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(channels, channels, 3, padding=1) if conv else None
                self.norm = nn.LayerNorm(channels, eps=1e-6)

            def forward(self, x):
                y = (self.conv(x) if conv else x) + offset
                return self.norm(y.permute(*to_last)).permute(*back)
        return _randomise(nn, ChannelsLastNorm())
    return make


CASES = {
    "channel_norm": [
        (channels_last_norm(6), (1, 6, 5, 7)),
        (channels_last_norm(20, conv=True), (1, 20, 9, 11)),   # on blocks, padding lanes
        (channels_last_norm(8, offset=OFFSET), (1, 8, 4, 5)),
        (channels_last_norm(5, rank=1), (1, 5, 9)),
    ],
    "layer_norm": [
        ([("LayerNorm", (5,), {})], (1, 3, 5)),
        ([("LayerNorm", ((4, 5),), {})], (1, 3, 4, 5)),
        ([("LayerNorm", ((3, 4, 5),), dict(elementwise_affine=False))], (1, 3, 4, 5)),
        ([("LayerNorm", (7,), dict(bias=False, eps=1e-3))], (1, 2, 3, 7)),
        ([("Linear", (10, 96), {}), ("LayerNorm", (96,), {}), ("GELU", (), {})], (1, 10)),
        ([("LayerNorm", (1,), {})], (1, 4, 1)),  # one value per row: the output is the bias
        (offset_layer_norm, (1, 3, 4, 5)),
        (functional_norms, (1, 4, 5, 6)),
    ],
    "group_norm": [
        ([("GroupNorm", (2, 6), {})], (1, 6, 5, 5)),
        ([("GroupNorm", (1, 4), {})], (1, 4, 3, 3)),
        ([("GroupNorm", (6, 6), dict(affine=False))], (1, 6, 4)),
        ([("GroupNorm", (3, 12), dict(eps=1e-3))], (1, 12, 2, 3, 4)),
        ([("GroupNorm", (4, 8), {})], (1, 8)),
        ([("GroupNorm", (2, 4), dict(bias=False))], (1, 4, 3, 2)),
        ([("InstanceNorm2d", (3,), dict(affine=True, bias=False))], (1, 3, 2, 3)),
        ([("Conv2d", (3, 32, 3), dict(padding=1)), ("GroupNorm", (8, 32), {}), ("SiLU", (), {})],
         (1, 3, 9, 9)),
        ([("InstanceNorm1d", (4,), {})], (1, 4, 9)),
        ([("InstanceNorm2d", (3,), dict(affine=True))], (1, 3, 5, 6)),
        ([("InstanceNorm2d", (3,), dict(eps=1e-3, momentum=None))], (1, 3, 1, 2)),
        ([("InstanceNorm3d", (2,), {})], (1, 2, 3, 4, 5)),
        (offset_group_norm, (1, 6, 4, 5)),
    ],
    "batch_norm": [
        ([("InstanceNorm1d", (4,), dict(track_running_stats=True))], (1, 4, 6)),
        (running_stats, (1, 3, 5, 5)),
    ],
}
