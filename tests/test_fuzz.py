"""Differential fuzzing: random valid models, compiled, against the numpy reference and torch.

A hypothesis strategy draws a model spec: an input (batch 1-3, 1-8 channels, 1-13 pixels a
side, not square) and up to five stages of convolutions (kernel, stride, padding, dilation,
groups, depthwise, padding modes), poolings (max/avg, ceil_mode, count_include_pad),
BatchNorm, activations, residual blocks and channel concatenations, and an optional
flatten + linear head. The same spec is built twice, with cnncompile.nn and with torch.nn,
and torch gets the cnncompile weights. Each model is compiled once with every pass and once
with a drawn set of optional passes switched off; both must match the reference and torch.

CNNCOMPILE_FUZZ_EXAMPLES sets the number of models (default 25, a minute or two); a failure
hypothesis finds is to be copied into REGRESSIONS below as a plain test. A few more drawn
models run as C programs under AddressSanitizer and UndefinedBehaviorSanitizer.
"""
import os

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncompile
import cnncompile.nn as cnn
from cnncompile import reference
from helpers import assert_close, tolerance

EXAMPLES = int(os.environ.get("CNNCOMPILE_FUZZ_EXAMPLES", "25"))
OPTIONAL_PASSES = ["eliminate_dead_code", "eliminate_identity", "fold_batch_norm",
                   "fuse_residual", "fuse_activation"]
ACTIVATIONS = ["ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "Hardswish", "ELU", "SiLU",
               "GELU", "Hardsigmoid"]


def _out(size, k, s, p, d, ceil=False):
    span = size + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:  # the last window must start inside (torch's rule)
        out -= 1
    return out


def channels(draw, low=1):
    """Mostly few channels; sometimes enough for the GEMM, Winograd and im2row kernels."""
    return draw(st.one_of(st.integers(low, 6), st.sampled_from([16, 24, 64, 72])))


@st.composite
def conv_stage(draw, c, h, w):
    k = draw(st.integers(1, 5))
    d = draw(st.integers(1, 2)) if k > 1 else 1
    p = draw(st.integers(0, k // 2 * d))
    s = draw(st.integers(1, 3))
    if _out(h, k, s, p, d) < 1 or _out(w, k, s, p, d) < 1:
        return None
    depthwise = draw(st.booleans()) and c > 1
    if depthwise:
        groups, out_c = c, c * draw(st.sampled_from([1, 2]))
    else:
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
        out_c = channels(draw) if groups == 1 else groups * draw(st.integers(1, 6))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    if mode != "zeros" and (p >= min(h, w) or p == 0):
        mode = "zeros"
    return dict(kind="conv", args=(c, out_c, k), kwargs=dict(
        stride=s, padding=p, dilation=d, groups=groups, bias=draw(st.booleans()),
        padding_mode=mode)), (out_c, _out(h, k, s, p, d), _out(w, k, s, p, d))


@st.composite
def pool_stage(draw, c, h, w):
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2))
    ceil = draw(st.booleans())
    oh, ow = _out(h, k, s, p, 1, ceil), _out(w, k, s, p, 1, ceil)
    if oh < 1 or ow < 1:
        return None
    if draw(st.booleans()):
        return dict(kind="MaxPool2d", args=(k,), kwargs=dict(stride=s, padding=p,
                                                             ceil_mode=ceil)), (c, oh, ow)
    return dict(kind="AvgPool2d", args=(k,), kwargs=dict(
        stride=s, padding=p, ceil_mode=ceil,
        count_include_pad=draw(st.booleans()))), (c, oh, ow)


@st.composite
def model_spec(draw):
    c, h, w = channels(draw), draw(st.integers(1, 13)), draw(st.integers(1, 13))
    spec = dict(input=(draw(st.integers(1, 3)), c, h, w), stages=[], head=None,
                scale=draw(st.sampled_from([1.0, 8.0])))  # input magnitude: reach 6 in ReLU6
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "act", "bn", "residual", "concat"]))
        if kind == "conv" or kind == "pool":
            drawn = draw(conv_stage(c, h, w) if kind == "conv" else pool_stage(c, h, w))
            if drawn is None:
                continue
            stage, (c, h, w) = drawn
        elif kind == "act":
            stage = dict(kind=draw(st.sampled_from(ACTIVATIONS)), args=(), kwargs={})
        elif kind == "bn":
            stage = dict(kind="BatchNorm2d", args=(c,), kwargs={})
        elif kind == "residual":  # x + conv(x) (same shape), then maybe an activation
            k = draw(st.sampled_from([1, 3]))
            stage = dict(kind="residual", args=(c, c, k), kwargs=dict(padding=k // 2),
                         act=draw(st.sampled_from([None] + ACTIVATIONS)))
        else:  # cat([x, conv1x1(x)], dim=1)
            extra = draw(st.integers(1, 4))
            stage = dict(kind="concat", args=(c, extra, 1), kwargs={})
            c += extra
        spec["stages"].append(stage)
    if draw(st.booleans()):
        spec["head"] = (c * h * w, draw(st.integers(1, 10)))
    return spec


def build(spec, nn):
    """The model of ``spec`` written with ``nn`` (cnncompile.nn or torch.nn)."""
    import cnncompile.nn.functional as CF
    cat = CF.cat if nn is cnn else torch.cat

    class Fuzzed(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList()
            for st_ in spec["stages"]:
                kind = st_["kind"]
                if kind in ("conv", "residual", "concat"):
                    layer = nn.Conv2d(*st_["args"], **st_["kwargs"])
                    if kind == "residual" and st_["act"]:
                        layer = nn.Sequential(layer, getattr(nn, st_["act"])())
                else:
                    layer = getattr(nn, kind)(*st_["args"], **st_["kwargs"])
                self.layers.append(layer)
            self.head = nn.Linear(*spec["head"]) if spec["head"] else None

        def forward(self, x):
            for st_, layer in zip(spec["stages"], self.layers):
                if st_["kind"] == "residual":
                    x = layer(x) + x
                elif st_["kind"] == "concat":
                    x = cat([x, layer(x)], 1)
                else:
                    x = layer(x)
            if self.head is not None:
                x = self.head(x.view(x.size(0), -1))
            return x

    return Fuzzed()


def check_spec(spec, skip_passes=()):
    from helpers import randomise_batch_norm, run_torch, torch_twin
    cnncompile.manual_seed(len(str(spec)))
    model = build(spec, cnn).eval()
    randomise_batch_norm(model)
    twin = torch_twin(model, build(spec, torch.nn))
    x = (np.random.default_rng(0).standard_normal(spec["input"]) * spec["scale"]).astype(np.float32)
    expected = run_torch(twin, x)
    for skip in ((), tuple(skip_passes)) if skip_passes else ((),):
        compiled = cnncompile.compile(model, spec["input"], skip_passes=skip, werror=True)
        y = compiled(x)
        rtol, atol = tolerance(compiled, expected)
        assert_close(y, reference.run(compiled.graph, x), f"vs reference, skipping {skip}",
                     rtol, atol)
        assert_close(y, expected, f"vs torch, skipping {skip}", rtol, atol)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=model_spec(), skip=st.lists(st.sampled_from(OPTIONAL_PASSES), unique=True,
                                        min_size=1))
def test_random_models_match_reference_and_torch(spec, skip):
    check_spec(spec, skip)


@settings(max_examples=max(3, EXAMPLES // 5), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(spec=model_spec())
def test_random_models_run_clean_under_sanitizers(spec, tmp_path_factory):
    from test_sanitizers import run_sanitized
    cnncompile.manual_seed(len(str(spec)))
    model = build(spec, cnn).eval()
    compiled = cnncompile.compile(model, spec["input"], num_threads=2)
    x = (np.random.default_rng(1).standard_normal(spec["input"]) * spec["scale"]).astype(np.float32)
    y = run_sanitized(compiled, tmp_path_factory.mktemp("fuzz-asan"), x)
    expected = reference.run(compiled.graph, x)
    assert_close(y, expected, "under sanitizers", *tolerance(compiled, expected))
