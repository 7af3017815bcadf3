"""Channel-blocked layout (passes/select_layout.py, ops/blocked.py, runtime/cnn_nchwc.h):
which layers run on blocks, where the reorders go, and the numbers of the blocked kernels
against the reference and torch on awkward shapes."""
import numpy as np
import pytest
import torch

import cnncompile
import cnncompile.nn as cnn
from cnncompile.api import build_graph
from cnncompile.build import PORTABLE_FLAGS
from cnncompile.ops import blocked
from helpers import (assert_close, assert_memory_plan_safe, check_against_reference, random_input,
                     run_torch, torch_twin)


def separable(nn, F, channels=24, mid=40, stride=2, kernel=3, dilation=1, bias=True):
    """stem -> depthwise -> 1x1 (ReLU6) -> depthwise (no bias) -> 1x1 + skip -> depthwise +
    skip (ReLU) -> global pool, and two more heads reading the blocked value on planes."""
    class Separable(nn.Module):
        def __init__(self):
            super().__init__()
            pad = dilation * (kernel - 1) // 2
            self.stem = nn.Conv2d(3, channels, 3, padding=1)
            self.dw = nn.Conv2d(channels, channels, kernel, stride=stride, padding=pad,
                                dilation=dilation, groups=channels, bias=bias)
            self.pw = nn.Conv2d(channels, mid, 1)
            self.dw2 = nn.Conv2d(mid, mid, 5, padding=2, groups=mid, bias=False)
            self.pw2 = nn.Conv2d(mid, mid, 1, bias=bias)
            self.dw3 = nn.Conv2d(mid, mid, 3, padding=1, groups=mid)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Conv2d(mid, mid, 3, padding=1)

        def forward(self, x):
            y = F.relu6(self.pw(F.relu(self.dw(self.stem(x)))))
            z = self.pw2(self.dw2(y)) + y
            z = F.relu(self.dw3(z) + z)
            return self.pool(z) + F.adaptive_max_pool2d(self.head(z), 1) + \
                F.adaptive_avg_pool2d(F.sigmoid(z), 1)
    return Separable()


def pair(**kwargs):
    cnncompile.manual_seed(0)
    model = separable(cnn, cnn.functional, **kwargs).eval()
    return model, torch_twin(model, separable(torch.nn, torch.nn.functional, **kwargs))


@pytest.mark.parametrize("shape,kwargs,stem", [
    ((1, 3, 17, 13), {}, "shifted_nchwc"),
    ((1, 3, 17, 13), {}, "shifted_gemm"),  # then a reorder into blocks
    ((1, 3, 9, 9), dict(channels=1, mid=3, stride=1), "shifted_nchwc"),
    ((1, 3, 1, 1), dict(channels=16, mid=33), "shifted_gemm"),
    ((1, 3, 2, 3), dict(channels=17, mid=32, kernel=5), "shifted_nchwc"),
    ((1, 3, 12, 7), dict(channels=33, mid=17, stride=1, dilation=2, bias=False), "shifted_gemm"),
    ((1, 3, 30, 30), dict(channels=48, mid=96, stride=2), "shifted_nchwc"),
])
def test_blocked_runs_match_the_reference_and_torch(shape, kwargs, stem):
    model, twin = pair(**kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 3), torch_model=twin,
                                       kernels={"stem": stem})
    g = compiled.graph
    assert g.node("stem").meta["kernel"] == stem
    assert [g.node(n).meta["kernel"] for n in ("dw", "pw", "dw2", "pw2", "dw3")] == \
        ["depthwise_nchwc", "pointwise_nchwc", "depthwise_nchwc", "pointwise_nchwc",
         "depthwise_nchwc"]
    assert g.node("pool").meta.get("reads") == "blocks"


def test_reorders_sit_at_the_edges_of_a_run():
    model, _ = pair()
    g = build_graph(model, (1, 3, 17, 13))
    reorders = {n.name: (g.input_names(n.name), n.attrs["to"]) for n in g.nodes()
                if n.op == "reorder"}
    # the stem writes blocks; back to planes once, for the two readers on planes
    assert reorders == {"dw3.to_planes": (["dw3"], "planes")}
    assert g.node("stem").meta["kernel"] == "shifted_nchwc"
    assert g.input_names("dw") == ["stem"]
    assert g.input_names("pw2") == ["dw2", "pw"]  # the residuals stay blocked
    assert g.input_names("dw3") == ["pw2", "pw2"]
    assert g.input_names("pool") == ["dw3"]       # global average pooling reads blocks
    assert set(g.users("dw3.to_planes")) == {"head", "sigmoid"}
    assert g.node("pw").meta["layout"] == "blocks"
    # a stem kept on planes gets a reorder into blocks, shared by both its readers
    g = build_graph(model, (1, 3, 17, 13), kernels={"stem": "shifted_gemm"})
    assert g.input_names("dw") == ["stem.to_blocks"] and g.users("stem") == ["stem.to_blocks"]


def test_a_lone_depthwise_layer_and_overrides_stay_on_planes():
    class Lone(cnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = cnn.Conv2d(3, 8, 3)
            self.dw = cnn.Conv2d(8, 8, 3, groups=8)

        def forward(self, x):
            return self.dw(self.conv(x))
    g = build_graph(Lone(), (1, 3, 9, 9))
    assert g.node("dw").meta["kernel"] in ("depthwise", "depthwise_planes")
    assert not any(n.op == "reorder" for n in g.nodes())
    # an override to a planes kernel keeps that layer out of the run
    model, _ = pair()
    g = build_graph(model, (1, 3, 17, 13), kernels={"dw": "depthwise", "pw2": "gemm_1x1"})
    assert g.node("dw").meta["kernel"] == "depthwise" and "layout" not in g.node("dw").meta
    assert g.node("pw").meta["kernel"] == "pointwise_nchwc"
    assert g.node("pw2").meta["kernel"] == "gemm_1x1"
    # ... and one to a blocked kernel puts a lone layer on blocks
    g = build_graph(Lone(), (1, 3, 9, 9), kernels={"dw": "depthwise_nchwc"})
    assert [n.op for n in g.nodes()] == ["input", "conv2d", "conv2d", "reorder"]
    assert g.node("conv").meta["kernel"] == "shifted_nchwc"  # writes the blocks dw reads
    assert g.outputs == ["dw.to_planes"]
    g = build_graph(Lone(), (1, 3, 9, 9), kernels={"conv": "shifted_nchwc"})
    assert [n.op for n in g.nodes()] == ["input", "conv2d", "reorder", "conv2d"]
    assert g.input_names("dw") == ["conv.to_planes"]


def test_blocked_kernels_refuse_what_they_cannot_compute():
    model, _ = pair()
    with pytest.raises(ValueError, match="kernel 'pointwise_nchwc' cannot compute"):
        build_graph(model, (1, 3, 17, 13), kernels={"stem": "pointwise_nchwc"})
    with pytest.raises(ValueError, match="kernel 'depthwise_nchwc' cannot compute"):
        build_graph(model, (1, 3, 17, 13), kernels={"pw": "depthwise_nchwc"})


def test_blocked_buffers_hold_whole_blocks():
    """17 and 33 channels take 2 and 3 blocks of 16: the memory plan sizes them so."""
    model, twin = pair(channels=17, mid=33)
    g = build_graph(model, (1, 3, 6, 6))
    assert blocked.floats(g.node("pw").shape) == 48 * 3 * 3  # stride 2: 3x3 pixels
    assert_memory_plan_safe(g)
    x = random_input((2, 3, 6, 6))
    assert_close(cnncompile.compile(model, (1, 3, 6, 6))(x), run_torch(twin, x))


@pytest.mark.parametrize("flags", [PORTABLE_FLAGS, PORTABLE_FLAGS + ["-DCNN_NO_VECTOR_EXTENSIONS"]],
                         ids=["portable", "no-vector-extensions"])
def test_blocked_kernels_in_portable_c(flags, tmp_path):
    model, twin = pair(channels=20, mid=36)
    compiled = cnncompile.compile(model, (1, 3, 11, 10), flags=flags, werror=True,
                                  cache_dir=tmp_path)
    x = random_input((2, 3, 11, 10), seed=5)
    assert_close(compiled(x), run_torch(twin, x))
    assert np.isfinite(compiled(x)).all()
