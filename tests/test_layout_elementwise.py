"""Layers other than convolutions and pooling inside runs on channel blocks: a fused hardswish,
and two-operand add, sub and mul (a squeeze-and-excitation scale per channel, or a second map
of the same shape), against the reference interpreter and torch. The padding channels must
stay zero through them, which the channel counts below (not multiples of 16) would show."""
import pytest

import cnncompile
import cnncompile.nn as cnn
import torch
from helpers import assert_memory_plan_safe, check_against_reference, torch_twin


def inverted_residual(nn, F, channels=72, out=40, act="hardswish", se=True, scale_first=True):
    """1x1 -> depthwise (act) -> squeeze-and-excitation scale -> 1x1, then a second branch
    added and subtracted: MobileNetV3's block, with the arithmetic left unfused."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, channels, 3, stride=2, padding=1)
            self.dw = nn.Conv2d(channels, channels, 5, padding=2, groups=channels)
            self.fc1 = nn.Conv2d(channels, channels // 4, 1)
            self.fc2 = nn.Conv2d(channels // 4, channels, 1)
            self.pw = nn.Conv2d(channels, out, 1)
            self.pw2 = nn.Conv2d(out, out, 1)
            self.dw2 = nn.Conv2d(out, out, 3, padding=1, groups=out)

        def act(self, x):
            return {"hardswish": F.hardswish, "silu": F.silu, "relu": F.relu}[act](x)

        def forward(self, x):
            y = self.act(self.dw(self.act(self.stem(x))))
            if se:
                s = F.adaptive_avg_pool2d(y, 1)
                s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
                y = s * y if scale_first else y * s  # torchvision's SE: the scale first
            y = self.pw(y)
            z = self.dw2(self.act(self.pw2(y)))
            return F.relu(y + z) - z
    return Block()


def twins(**kwargs):
    cnncompile.manual_seed(0)
    model = inverted_residual(cnn, cnn.functional, **kwargs).eval()
    return model, torch_twin(model, inverted_residual(torch.nn, torch.nn.functional, **kwargs))


@pytest.mark.parametrize("shape,kwargs", [
    ((1, 3, 20, 20), {}),
    ((1, 3, 2, 2), dict(channels=24, out=20)),              # 1 x 1 after the stem
    ((1, 3, 17, 13), dict(channels=40, out=16, act="relu", scale_first=False)),
    ((1, 3, 16, 16), dict(channels=32, out=48, se=False)),  # channels filling their blocks
    ((1, 3, 20, 20), dict(act="silu")),                     # EfficientNet's activation
])
def test_hardswish_and_arithmetic_stay_on_blocks(shape, kwargs):
    model, twin = twins(**kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 3), torch_model=twin)
    g = compiled.graph
    for node in g.nodes():
        if node.op in ("mul", "add", "sub") or node.name in ("dw", "pw", "dw2"):
            assert node.meta.get("layout") == "blocks", node.name
    reorders = [n.name for n in g.nodes() if n.op == "reorder"]
    # the scale, one value per channel, into blocks; the result out of them
    assert len(reorders) == (2 if kwargs.get("se", True) else 1), reorders
    if kwargs.get("se", True):
        assert "each 16-channel vector * its block's vector" in compiled.c_source or \
            shape[2] <= 2
    assert_memory_plan_safe(g)


def test_division_and_constants_stay_on_planes():
    """x / y would turn the zero padding channels into NaN; a constant operand has no
    blocks: both run on planes, with reorders around them."""
    class Net(cnn.Module):
        def __init__(self):
            super().__init__()
            self.stem = cnn.Conv2d(3, 24, 3, padding=1)
            self.dw = cnn.Conv2d(24, 24, 3, padding=1, groups=24)
            self.pw = cnn.Conv2d(24, 24, 1)

        def forward(self, x):
            y = cnn.functional.relu(self.dw(self.stem(x)))
            return self.pw(y / (y * y + 1.0))
    cnncompile.manual_seed(0)
    model = Net().eval()
    compiled = check_against_reference(model, (1, 3, 8, 8), batches=(2,))
    g = compiled.graph
    assert "layout" not in g.node("div").meta and "layout" not in g.node("add").meta
    assert g.node("mul").meta["layout"] == "blocks"  # y * y, inside the run


def dense(channels=64, growth=32, layers=3, out=40):
    """DenseNet's block: each layer BatchNorm -> ReLU -> 1x1 -> BatchNorm -> ReLU -> 3x3 on the
    concatenation of all before it, then a transition (BatchNorm, ReLU, 1x1, 2x2 pool)."""
    nn = torch.nn

    class Dense(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, channels, 3, padding=1)
            self.layers = nn.ModuleList(nn.Sequential(
                nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 4 * growth, 1),
                nn.BatchNorm2d(4 * growth), nn.ReLU(), nn.Conv2d(4 * growth, growth, 3, padding=1))
                for c in range(channels, channels + layers * growth, growth))
            c = channels + layers * growth
            self.transition = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, out, 1),
                                            nn.AvgPool2d(2, 2))

        def forward(self, x):
            features = [self.stem(x)]
            for layer in self.layers:
                features.append(layer(torch.cat(features, 1)))
            return self.transition(torch.cat(features, 1))
    torch.manual_seed(0)
    model = Dense().eval()
    for m in model.modules():  # BatchNorm statistics other than the identity's
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model


@pytest.mark.parametrize("kwargs,on_blocks", [
    ({}, True),
    (dict(channels=48, growth=20, layers=1), True),    # the last part half a block
    (dict(channels=40, growth=16, layers=2), False),   # a first part of 40 channels
])
def test_concatenations_and_batch_norms_stay_on_blocks(kwargs, on_blocks):
    """Concatenated along channels, parts that fill their blocks (all but the last) are
    whole blocks of the result; BatchNorm scales each block's vector."""
    model = dense(**kwargs)
    compiled = check_against_reference(model, (1, 3, 12, 10), batches=(1, 2), torch_model=model)
    g = compiled.graph
    joins = [n for n in g.nodes() if n.op == "cat" and len(g.input_names(n.name)) > 1]
    assert joins and all((n.meta.get("layout") == "blocks") == on_blocks for n in joins)
    if on_blocks:
        assert all(n.meta.get("layout") == "blocks" for n in g.nodes() if n.op == "batch_norm")
    if on_blocks:  # one reorder: before the pool, which reads planes
        assert [n.op for n in g.nodes()].count("reorder") == 1
    assert_memory_plan_safe(g)
