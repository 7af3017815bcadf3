"""Models written channels-last between permutes (ConvNeXt) run in their own layout: the
cancel_permutes pass, the channel_norm op it produces, and a constant per-channel scale folded
into the conv before it (fold_batch_norm). Each rewrite: the graph after it, and the numbers
unchanged by it."""
import numpy as np
import pytest
import torch

import cnncompile
import cnncompile.nn as cnn
from cnncompile import reference
from cnncompile.passes import cancel_permutes, eliminate_identity, fold_batch_norm, infer_shapes
from cnncompile.trace import trace
from helpers import assert_close, check_against_reference, random_input, run_torch, torch_twin


def block(nn, dim=8, layer_scale=True):
    """ConvNeXt's block: 7x7 depthwise; LayerNorm, Linear, GELU, Linear on channels-last
    pixels; a layer scale of shape (C, 1, 1); the residual."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
            scale = np.linspace(0.1, 1.0, dim, dtype=np.float32).reshape(dim, 1, 1)
            self.scale = nn.Parameter(torch.from_numpy(scale) if nn is torch.nn else scale)

        def forward(self, x):
            y = self.dw(x).permute(0, 2, 3, 1)
            y = self.fc2(self.act(self.fc1(self.norm(y)))).permute(0, 3, 1, 2)
            return x + (self.scale * y if layer_scale else y)
    return Block()


def norm2d(nn, dim):
    """ConvNeXt's LayerNorm2d: LayerNorm over the channels of NCHW, between permutes."""
    class Norm2d(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(dim, eps=1e-6)

        def forward(self, x):
            return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return Norm2d()


def structure(graph):
    return [(n.name, n.op, graph.input_names(n.name)) for n in graph.nodes()]


def perturbed(model):
    """``model`` (cnncompile.nn) with its parameters moved off their defaults (a LayerNorm's
    1 and 0), so that a weight applied to the wrong channel shows."""
    for i, p in enumerate(model.parameters()):
        p[...] += np.linspace(-.3, .3, p.size, dtype=np.float32).reshape(p.shape) * (1 + i % 3)
    return model.eval()


# -- cancel_permutes ------------------------------------------------------------------------
def test_convnext_block_runs_without_permutes():
    cnncompile.manual_seed(0)
    g = infer_shapes(eliminate_identity(trace(block(cnn).eval(), (1, 8, 9, 11))))
    x = random_input((2, 8, 9, 11))
    before = reference.run(g, x)
    assert [n.op for n in g.nodes()].count("permute") == 6
    g = cancel_permutes(g).lint()
    assert structure(g) == [
        ("input", "input", []), ("dw", "conv2d", ["input"]), ("norm", "channel_norm", ["dw"]),
        ("fc1.conv2d", "conv2d", ["norm"]), ("act", "gelu", ["fc1.conv2d"]),
        ("fc2.conv2d", "conv2d", ["act"]), ("mul", "mul", ["fc2.conv2d"]),
        ("add", "add", ["input", "mul"])]
    assert g.node("norm").attrs == {"eps": 1e-6} and g.node("act").meta["shape"] == (1, 32, 9, 11)
    assert_close(reference.run(g, x), before, "after cancel_permutes", rtol=1e-6, atol=1e-6)


def _permute_graph(*perms_and_ops, shape=(1, 4, 3, 5)):
    """input -> each of ``perms_and_ops`` in turn: a tuple is a permute, a string an op
    (layer_norm over the last dimension, or an activation)."""
    from cnncompile.ir import Graph, Node
    g, prev, last = Graph("t"), "x", shape[-1]
    g.add(Node("x", "input", {"shape": shape}))
    for i, step in enumerate(perms_and_ops):
        if isinstance(step, tuple):
            node = Node(f"p{i}", "permute", {"perm": step})
            last = shape[step[-1]]
        elif step == "layer_norm":
            node = Node(f"n{i}", "layer_norm", {"normalized_shape": (last,), "eps": 1e-5},
                        {"weight": np.linspace(.5, 1.5, last, dtype=np.float32)})
        else:
            node = Node(f"a{i}", step)
        g.add(node, [prev])
        prev = node.name
    g.inputs, g.outputs = ["x"], [prev]
    return infer_shapes(g)


@pytest.mark.parametrize("steps,expected", [
    # inverse permutes meet: both go
    (("relu", (0, 2, 3, 1), (0, 3, 1, 2)), ["relu"]),
    # ... but the model's output is not its input
    (((0, 2, 3, 1), (0, 3, 1, 2)), ["permute"]),
    # two permutes in a row compose into one
    (((0, 2, 3, 1), (0, 2, 1, 3)), ["permute"]),
    # across an activation and a LayerNorm over the channels
    (((0, 2, 3, 1), "layer_norm", "gelu", (0, 3, 1, 2)), ["channel_norm", "gelu"]),
    # a permute that is its own inverse
    (((0, 3, 2, 1), "gelu", (0, 3, 2, 1)), ["gelu"]),
    # the LayerNorm would normalise another dimension than the channels: kept as it is
    (((0, 1, 3, 2), "layer_norm", (0, 1, 3, 2)), ["permute", "layer_norm", "permute"]),
    # no inverse after the chain: nothing moves
    (((0, 2, 3, 1), "relu", "layer_norm"), ["permute", "relu", "layer_norm"]),
    # the identity permute goes
    (((0, 1, 2, 3), "relu"), ["relu"]),
])
def test_cancel_permutes_rules(steps, expected):
    shape = (1, 4, 3, 5)
    g = _permute_graph(*steps, shape=shape)
    x = random_input((2,) + shape[1:])
    before = reference.run(g, x)
    g = infer_shapes(cancel_permutes(g).lint())
    assert [n.op for n in g.nodes()][1:] == expected
    assert_close(reference.run(g, x), before, "after cancel_permutes", rtol=1e-6, atol=1e-6)


def test_permutes_with_other_users_stay():
    """The channels-last value is also an output: the permute must stay, and so its inverse."""
    g = _permute_graph((0, 2, 3, 1), "relu", (0, 3, 1, 2))
    g.outputs = ["p0", "p2"]
    cancel_permutes(g).lint()
    assert [n.op for n in g.nodes()][1:] == ["permute", "relu", "permute"]


# -- channel_norm ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 8, 9, 11), (1, 24, 10, 13), (1, 5, 8, 8), (1, 16, 1, 1),
                                   (1, 3, 7)])
def test_channel_norm_matches_torch(shape):
    """Positions not a multiple of the 64 a step takes (99, 130), exactly one step, one
    position, and a 1-D map."""
    dim, make = shape[1], (norm2d if len(shape) == 4 else norm1d)
    cnncompile.manual_seed(0)
    model = perturbed(cnn.Sequential(make(cnn, dim)))
    twin = torch_twin(model, torch.nn.Sequential(make(torch.nn, dim)))
    compiled = check_against_reference(model, shape, torch_model=twin)
    ops = [n.op for n in compiled.graph.nodes()]
    assert "channel_norm" in ops and "permute" not in ops, ops


def norm1d(nn, dim):
    """LayerNorm over the channels of (N, C, L)."""
    class Norm1d(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(dim)

        def forward(self, x):
            return self.norm(x.permute(0, 2, 1)).permute(0, 2, 1)
    return Norm1d()


def test_channel_norm_far_from_zero_keeps_float_accuracy():
    """A mean of 1000 and a spread of 1, as for layer_norm: the C centres each position's
    values on its first channel before it sums them."""
    compiled = cnncompile.compile(cnn.Sequential(norm2d(cnn, 64)).eval(), (1, 64, 9, 9), werror=True)
    assert "channel_norm" in [n.op for n in compiled.graph.nodes()]
    x = random_input((3, 64, 9, 9)) + 1000.0
    assert_close(compiled(x), reference.run(compiled.graph, x), atol=1e-5, rtol=1e-5)


# -- a constant per-channel scale folds into the conv before it -----------------------------
def _conv_mul(other):
    from cnncompile.ir import Graph, Node
    g = Graph("t")
    g.add(Node("x", "input", {"shape": (1, 3, 5, 6)}))
    conv = dict(in_channels=3, out_channels=4, kernel_size=(1, 1), stride=(1, 1), padding=(0, 0),
                dilation=(1, 1), groups=1, padding_mode="zeros")
    rng = np.random.default_rng(0)
    g.add(Node("c", "conv2d", conv, {"weight": rng.standard_normal((4, 3, 1, 1)).astype(np.float32),
                                     "bias": rng.standard_normal(4).astype(np.float32)}), ["x"])
    g.add(Node("m", "mul", {}, {"other": np.asarray(other, np.float32)}), ["c"])
    g.inputs, g.outputs = ["x"], ["m"]
    return infer_shapes(g)


@pytest.mark.parametrize("other,folds", [
    (np.linspace(.1, 1, 4).reshape(4, 1, 1), True),         # ConvNeXt's layer scale
    (np.full((1, 1, 1), 2.5), True),                         # a scalar
    (np.linspace(.1, 1, 6).reshape(1, 1, 6), False),         # one value per column
    (np.linspace(.1, 1, 20).reshape(4, 5, 1), False),        # varies along the rows
])
def test_constant_scale_folds_into_the_conv(other, folds):
    g = _conv_mul(other)
    x = random_input((2, 3, 5, 6))
    before = reference.run(g, x)
    g = fold_batch_norm(g).lint()
    assert ("m" not in g) == folds
    if folds:
        assert g.node("c").meta["fused"] == [{"layer": "m", "op": "mul"}]
    assert_close(reference.run(infer_shapes(g), x), before, "after folding", rtol=1e-6, atol=1e-6)


# -- the whole block ------------------------------------------------------------------------
@pytest.mark.parametrize("layer_scale", [True, False])
def test_convnext_block_matches_torch_with_its_layers_fused(layer_scale):
    cnncompile.manual_seed(0)
    model = perturbed(block(cnn, 16, layer_scale))
    twin = torch_twin(model, block(torch.nn, 16, layer_scale))
    compiled = check_against_reference(model, (1, 16, 14, 14), torch_model=twin)
    ops = [n.op for n in compiled.graph.nodes()]
    assert "permute" not in ops and "gelu" not in ops and "mul" not in ops, ops
    assert {"layer": "add", "op": "add"} in compiled.graph.node("fc2.conv2d").meta["fused"]


def conv_norm_conv(nn, dim):
    """A channel_norm between two convolutions: it runs on their channel blocks."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
            self.norm2d = norm2d(nn, dim)
            self.pw = nn.Conv2d(dim, 2 * dim, 1)

        def forward(self, x):
            return self.pw(self.norm2d(self.dw(x)))
    return Net()


@pytest.mark.parametrize("shape", [(1, 20, 9, 11), (1, 32, 4, 4), (1, 40, 1, 3), (1, 7, 5, 5)])
def test_channel_norm_on_channel_blocks_matches_torch(shape):
    """Channels filling their blocks (32) or not (20, 40, 7: the padding lanes must stay out
    of the statistics and stay zero); positions not a multiple of the 8 a step takes."""
    cnncompile.manual_seed(0)
    model = perturbed(conv_norm_conv(cnn, shape[1]))
    twin = torch_twin(model, conv_norm_conv(torch.nn, shape[1]))
    compiled = check_against_reference(model, shape, torch_model=twin)
    norm = compiled.graph.node("norm2d.norm")
    assert norm.op == "channel_norm" and norm.meta["layout"] == "blocks"
    x = random_input((2,) + shape[1:]) + 1000.0  # far from 0: centred before it sums
    assert_close(compiled(x), reference.run(compiled.graph, x), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("extra", [[], ["-DCNN_NO_VECTOR_EXTENSIONS"]], ids=["portable", "no-vector-extensions"])
def test_channel_norm_on_channel_blocks_in_portable_c(extra, tmp_path):
    from cnncompile.build import PORTABLE_FLAGS
    cnncompile.manual_seed(0)
    model = perturbed(conv_norm_conv(cnn, 20))
    twin = torch_twin(model, conv_norm_conv(torch.nn, 20))
    compiled = cnncompile.compile(model, (1, 20, 9, 11), flags=PORTABLE_FLAGS + extra, werror=True,
                                  cache_dir=tmp_path)
    assert compiled.graph.node("norm2d.norm").meta["layout"] == "blocks"
    x = random_input((2, 20, 9, 11))
    assert_close(compiled(x), run_torch(twin, x))
