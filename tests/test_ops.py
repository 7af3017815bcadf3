"""Every registered op, swept over its options: compiled C vs numpy reference vs torch.

A case is one layer built with the same arguments in cnncompile.nn and torch.nn. The registry
test below fails when an op has no cases, or a template has no op.
"""
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import pytest
import torch

import cnncompile
import cnncompile.nn as cnn
from cnncompile import ops, reference
from cnncompile.api import build_graph
from cnncompile import kernels
from cnncompile.kernels.conv_winograd import WinogradF2x2, WinogradF4x4
from cnncompile.resources import templates_dir
import op_cases
from helpers import (assert_close, check_against_reference, random_input, randomise_batch_norm,
                     run_torch, torch_twin)

def residual(nn, F, cat):
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return F.relu(self.conv(x) + x)
    return Residual()


def arithmetic(nn, F, cat):
    class Arithmetic(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 4, 1), nn.Conv2d(2, 4, 3, padding=1)

        def forward(self, x):
            a, b = self.a(x), self.b(x)
            y = (a - b) * 2.0 + 1.0
            y = y / (a * a + 1.0) - 0.5 * b
            return -(3.0 - y) / 4.0 + (1.0 / (b * b + 2.0))
    return Arithmetic()


def broadcast(nn, F, cat):
    class SqueezeExcite(nn.Module):
        """x * sigmoid(fc(pool(x))): a (N, C, 1, 1) scale times a (N, C, H, W) map."""
        def __init__(self):
            super().__init__()
            self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 4, 1)
            self.row = nn.Conv2d(4, 4, (5, 1))

        def forward(self, x):
            s = F.sigmoid(self.fc(self.pool(x)))
            r = self.row(x)  # (N, 4, 1, 5): broadcast along H
            return x * s + r - s / (r + 5.0)
    return SqueezeExcite()


def concat(nn, F, cat):
    class Concat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 5, 3, padding=1)

        def forward(self, x):
            y = cat([self.a(x), self.b(x), x], dim=1)
            z = cat((y.flatten(2), y.flatten(2)), 2)
            return cat([z, z], dim=-1)
    return Concat()


# op -> [(layers as [(class name, args, kwargs)], or a model function (nn, F, cat), input shape)]
CASES = {
    "conv2d": [
        ([("Conv2d", (3, 8, 3), dict(padding=1))], (1, 3, 8, 8)),
        ([("Conv2d", (3, 8, (3, 5)), dict(stride=(2, 1), padding=(1, 2)))], (1, 3, 9, 7)),
        ([("Conv2d", (4, 6, 2), dict(stride=2))], (1, 4, 9, 9)),
        ([("Conv2d", (4, 8, 3), dict(dilation=2, padding=2))], (1, 4, 10, 10)),
        ([("Conv2d", (4, 8, 3), dict(groups=2, padding=1))], (1, 4, 6, 6)),
        ([("Conv2d", (8, 8, 3), dict(groups=8, padding=1))], (1, 8, 7, 7)),
        ([("Conv2d", (3, 5, 4), dict(padding="same"))], (1, 3, 7, 6)),
        ([("Conv2d", (3, 5, 3), dict(padding="same", dilation=2))], (1, 3, 8, 8)),
        ([("Conv2d", (3, 5, 3), dict(padding="valid", bias=False))], (1, 3, 6, 6)),
        ([("Conv2d", (1, 4, 1), {})], (1, 1, 5, 5)),
        ([("Conv2d", (3, 4, 5), dict(stride=3, padding=2))], (1, 3, 11, 7)),
        ([("Conv2d", (2, 3, 3), dict(padding=1))], (1, 2, 1, 1)),
        ([("Conv2d", (16, 4, 3), dict(stride=2))], (1, 16, 9, 9)),
        ([("Conv2d", (6, 4, (1, 3)), dict(groups=2, dilation=(1, 2)))], (1, 6, 4, 9)),
        ([("Conv2d", (3, 2, 5), {})], (1, 3, 5, 5)),
        ([("Conv2d", (3, 6, 3), dict(stride=2, padding=1)), ("ReLU", (), {})], (1, 3, 8, 8)),
        ([("Conv2d", (16, 40, 3), dict(padding=1)), ("ReLU", (), {})], (1, 16, 13, 11)),
        ([("Conv2d", (5, 33, 3), dict(padding=(2, 0)))], (1, 5, 1, 6)),
        ([("Conv2d", (24, 8, 3), dict(padding="same", bias=False))], (1, 24, 17, 16)),
        ([("Conv2d", (96, 20, 3), dict(padding=1)), ("ReLU", (), {})], (1, 96, 30, 34)),
        # 1x1 on 63 and 35 pixels: the last column block overlaps the one before it; K = 300
        # takes two passes over K, 20 channels leave edge rows
        ([("Conv2d", (300, 20, 1), {}), ("ReLU6", (), {})], (1, 300, 7, 9)),
        ([("Conv2d", (12, 16, 1), {})], (1, 12, 5, 7)),
        # strided 1x1: nchw.gemm_1x1 gathers the pixels it reads (6 x 7, and 3 x 4 in groups)
        ([("Conv2d", (20, 40, 1), dict(stride=2)), ("ReLU", (), {})], (1, 20, 11, 14)),
        ([("Conv2d", (6, 9, 1), dict(stride=(3, 2), groups=3))], (1, 6, 7, 8)),
    ],
    "conv1d": [
        ([("Conv1d", (3, 5, 3), dict(padding=1))], (1, 3, 10)),
        ([("Conv1d", (4, 6, 4), dict(stride=2, dilation=2, groups=2, bias=False))], (1, 4, 17)),
        ([("Conv1d", (2, 3, 4), dict(padding="same", padding_mode="reflect"))], (1, 2, 9)),
        ([("Conv1d", (2, 2, 3), dict(padding=2, padding_mode="circular")), ("ReLU", (), {})], (1, 2, 5)),
        ([("Conv1d", (4, 6, 1), dict(stride=3))], (1, 4, 10)),
        # depthwise (with a channel multiplier of 2), as MobileNet-style 1-D models have
        ([("Conv1d", (5, 10, 3), dict(padding=1, groups=5)), ("ReLU6", (), {})], (1, 5, 11)),
    ],
    "conv3d": [
        ([("Conv3d", (2, 4, 3), dict(padding=1))], (1, 2, 5, 6, 4)),
        ([("Conv3d", (4, 4, (2, 3, 1)), dict(stride=(1, 2, 2), groups=4))], (1, 4, 4, 7, 5)),
        ([("Conv3d", (2, 3, 3), dict(dilation=(2, 1, 1), padding=(2, 0, 1)))], (1, 2, 6, 4, 4)),
        ([("Conv3d", (2, 3, 3), dict(padding=1, padding_mode="replicate"))], (1, 2, 3, 4, 5)),
    ],
    "pad": [
        ([("ZeroPad2d", ((1, 2, 0, 3),), {})], (1, 2, 4, 5)),
        ([("ConstantPad1d", (2, 3.5), {})], (1, 2, 5)),
        ([("ReflectionPad2d", (2,), {})], (1, 3, 4, 5)),
        ([("ReplicationPad2d", ((3, 0, 1, 2),), {})], (1, 2, 3, 3)),
        ([("CircularPad2d", ((2, 1, 3, 3),), {})], (1, 2, 3, 4)),
        ([("ReflectionPad3d", (1,), {})], (1, 2, 3, 3, 3)),
        ([("Conv2d", (3, 4, 3), dict(padding=1, padding_mode="reflect"))], (1, 3, 6, 5)),
        ([("Conv2d", (3, 4, (2, 4)), dict(padding="same", padding_mode="replicate"))], (1, 3, 6, 7)),
        ([("Conv2d", (3, 4, 3), dict(stride=2, padding=(3, 1), padding_mode="circular"))],
         (1, 3, 7, 6)),
    ],
    "conv_transpose2d": [
        ([("ConvTranspose2d", (3, 4, 2), dict(stride=2))], (1, 3, 4, 5)),
        ([("ConvTranspose2d", (3, 4, 3), dict(stride=2, padding=1, output_padding=1))], (1, 3, 4, 4)),
        ([("ConvTranspose2d", (4, 6, (3, 2)), dict(stride=(1, 3), groups=2, bias=False))], (1, 4, 3, 3)),
        ([("ConvTranspose2d", (2, 3, 3), dict(dilation=2, padding=2, output_padding=(1, 0),
                                              stride=(2, 1)))], (1, 2, 5, 4)),
        ([("ConvTranspose2d", (2, 2, 1), {}), ("Sigmoid", (), {})], (1, 2, 1, 1)),
        ([("ConvTranspose2d", (3, 2, 4), dict(stride=3, padding=3))], (1, 3, 3, 3)),
        # kernel == stride (nchw.gemm_interleave): groups, an activation, a 1-pixel input
        ([("ConvTranspose2d", (4, 6, (2, 3)), dict(stride=(2, 3), groups=2)), ("ReLU", (), {})],
         (1, 4, 3, 5)),
        ([("ConvTranspose2d", (5, 3, 3), dict(stride=3, bias=False)), ("Sigmoid", (), {})],
         (1, 5, 1, 1)),
    ],
    "unfold": [
        ([("Unfold", (3,), {})], (1, 2, 5, 5)),
        ([("Unfold", ((2, 3),), dict(dilation=(1, 2), padding=1, stride=(2, 1)))], (1, 3, 6, 7)),
    ],
    "fold": [
        ([("Unfold", (3,), dict(padding=1)), ("Fold", ((5, 4), 3), dict(padding=1))], (1, 2, 5, 4)),
        ([("Unfold", ((2, 3),), dict(dilation=(1, 2), padding=1, stride=(2, 1))),
          ("Fold", ((6, 7), (2, 3)), dict(dilation=(1, 2), padding=1, stride=(2, 1)))], (1, 3, 6, 7)),
        ([("Fold", (4, 2), dict(stride=2))], (1, 12, 4)),
    ],
    "max_pool2d": [
        ([("MaxPool2d", (2,), {})], (1, 3, 8, 8)),
        ([("MaxPool2d", (3, 2), {})], (1, 3, 9, 9)),
        ([("MaxPool2d", (3, 1, 1), {})], (1, 2, 5, 5)),
        ([("MaxPool2d", (2, 2), dict(ceil_mode=True))], (1, 2, 7, 7)),
        ([("MaxPool2d", (3, 2, 1), dict(ceil_mode=True))], (1, 2, 8, 8)),
        ([("MaxPool2d", ((2, 3), (1, 2)), {})], (1, 2, 6, 9)),
        ([("MaxPool2d", (3,), dict(stride=1, dilation=2))], (1, 2, 9, 9)),
        ([("MaxPool2d", (3, 3, 1), dict(ceil_mode=True))], (1, 1, 10, 10)),
        ([("MaxPool2d", (5,), {})], (1, 2, 5, 5)),
        # ceil_mode's last window would start in the padding: torch drops it
        ([("MaxPool2d", (2, 2, 1), dict(ceil_mode=True))], (1, 2, 5, 5)),
        ([("MaxPool2d", (2,), {}), ("ReLU", (), {})], (1, 3, 6, 6)),
    ],
    "avg_pool2d": [
        ([("AvgPool2d", (2,), {})], (1, 3, 8, 8)),
        ([("AvgPool2d", (3, 2, 1), {})], (1, 2, 7, 7)),
        ([("AvgPool2d", (3, 2, 1), dict(count_include_pad=False))], (1, 2, 7, 7)),
        ([("AvgPool2d", (3, 2, 1), dict(ceil_mode=True))], (1, 2, 8, 8)),
        ([("AvgPool2d", (3, 2, 1), dict(ceil_mode=True, count_include_pad=False))], (1, 2, 8, 8)),
        ([("AvgPool2d", (2, 2, 1), dict(ceil_mode=True))], (1, 2, 5, 5)),
        ([("AvgPool2d", ((2, 3), (1, 2)), dict(divisor_override=5))], (1, 2, 6, 9)),
        ([("AvgPool2d", (3, 3, 1), dict(ceil_mode=True, divisor_override=2))], (1, 1, 10, 10)),
        ([("AvgPool2d", (2,), {}), ("Hardswish", (), {})], (1, 3, 6, 6)),
    ],
    "adaptive_avg_pool2d": [
        ([("AdaptiveAvgPool2d", (1,), {})], (1, 4, 7, 7)),
        ([("AdaptiveAvgPool2d", ((3, 2),), {})], (1, 2, 7, 5)),
        ([("AdaptiveAvgPool2d", ((None, 3),), {})], (1, 2, 4, 10)),
        ([("AdaptiveAvgPool2d", (5,), {})], (1, 2, 3, 3)),  # larger than the input: overlaps
        ([("AdaptiveAvgPool2d", (1,), {}), ("Flatten", (), {}), ("Linear", (4, 3), {})], (1, 4, 5, 5)),
    ],
    "adaptive_max_pool2d": [
        ([("AdaptiveMaxPool2d", (1,), {})], (1, 4, 7, 7)),
        ([("AdaptiveMaxPool2d", ((3, 4),), {})], (1, 2, 10, 7)),
        ([("AdaptiveMaxPool2d", (2,), {}), ("ReLU", (), {})], (1, 2, 5, 5)),
    ],
    "linear": [
        ([("Linear", (16, 4), {})], (1, 16)),
        ([("Linear", (16, 4), dict(bias=False))], (1, 16)),
        ([("Linear", (1, 1), {})], (1, 1)),
        ([("Linear", (300, 7), {}), ("ReLU", (), {})], (1, 300)),
        ([("Linear", (517, 13), {}), ("Sigmoid", (), {})], (2, 517)),  # 4 rows at a time
    ],
    "relu": [
        ([("ReLU", (), {})], (1, 3, 5, 5)),
        ([("ReLU", (), dict(inplace=True))], (1, 7)),
        # the second ReLU cannot fuse (the conv already has one): it runs in place
        ([("Conv2d", (2, 2, 1), {}), ("ReLU", (), {}), ("ReLU", (), {})], (1, 2, 3, 3)),
    ],
    "reshape": [
        ([("Flatten", (), {})], (1, 2, 3, 4)),
        ([("Flatten", (1, 2), {})], (1, 2, 3, 4)),
        ([("Conv2d", (2, 3, 3), {}), ("Flatten", (), {}), ("Linear", (12, 2), {})], (1, 2, 4, 4)),
    ],
    **{op: [([(cls, args, {})], (1, 3, 5, 4)), ([("Conv2d", (3, 4, 3), {}), (cls, args, {})], (1, 3, 6, 6))]
       for op, cls, args in [("relu6", "ReLU6", ()), ("leaky_relu", "LeakyReLU", (0.2,)),
                             ("elu", "ELU", (0.5,)), ("sigmoid", "Sigmoid", ()), ("tanh", "Tanh", ()),
                             ("hardtanh", "Hardtanh", (-0.5, 0.75)), ("hardswish", "Hardswish", ()),
                             ("hardsigmoid", "Hardsigmoid", ()), ("silu", "SiLU", ()),
                             ("gelu", "GELU", ())]},
    "gelu_tanh": [([("GELU", ("tanh",), {})], (1, 3, 5, 4)),
                  ([("Linear", (6, 5), {}), ("GELU", ("tanh",), {})], (1, 6))],
    "softmax": [([("Softmax", (), dict(dim=1))], (1, 10)),
                ([("Softmax", (1,), {})], (1, 3, 4, 5)),
                ([("Softmax", (-1,), {})], (1, 3, 4, 5)),
                ([("Softmax", (2,), {})], (1, 3, 4, 5))],
    "log_softmax": [([("Linear", (6, 5), {}), ("LogSoftmax", (), dict(dim=1))], (1, 6)),
                    ([("LogSoftmax", (2,), {})], (1, 3, 4, 5))],
    "add": [(residual, (1, 3, 6, 6))],
    "sub": [(arithmetic, (1, 2, 5, 5))],
    "mul": [(broadcast, (1, 4, 5, 5))],
    "div": [(arithmetic, (1, 2, 4, 3))],
    "cat": [(concat, (1, 3, 4, 4))],
    "batch_norm": [
        ([("BatchNorm2d", (4,), {})], (1, 4, 5, 5)),
        ([("BatchNorm2d", (3,), dict(eps=1e-3, affine=False))], (1, 3, 4, 6)),
        ([("BatchNorm2d", (3,), dict(bias=False))], (1, 3, 2, 2)),
        ([("Conv2d", (3, 4, 3), dict(bias=False)), ("BatchNorm2d", (4,), {}), ("ReLU", (), {})],
         (1, 3, 6, 6)),
    ],
    "identity": [
        ([("Identity", (), {})], (1, 3, 4, 4)),
        ([("Conv2d", (3, 4, 1), {}), ("Dropout", (0.3,), {}), ("Dropout2d", (), {}),
          ("Identity", (54,), dict(unused="arguments")), ("ReLU", (), {})], (1, 3, 4, 4)),
    ],
    "input": [
        ([], (1, 3, 4, 4)),  # the identity model: output is a copy of the input
    ],
}
for _op, _cases in op_cases.collect().items():  # the families in tests/op_cases/
    CASES.setdefault(_op, []).extend(_cases)


def build(layers, framework):
    if framework == "cnncompile":
        nn, F, cat = cnn, cnn.functional, cnncompile.cat
    else:
        nn, F, cat = torch.nn, torch.nn.functional, torch.cat
    if callable(layers):
        cnncompile.manual_seed(0)
        return layers(nn, F, cat)
    model = nn.Sequential(*[getattr(nn, cls)(*args, **kwargs) for cls, args, kwargs in layers])
    if framework == "cnncompile":
        randomise_batch_norm(model)
    return model


def case_ids():
    """Every case as a pytest.param, in a list: parametrize takes collections, not iterators."""
    params = []
    for op, cases in CASES.items():
        for i, (layers, shape) in enumerate(cases):
            if callable(layers):
                params.append(pytest.param(layers, shape, id=f"{op}[{i}]{layers.__name__}"))
                continue
            desc = "-".join(f"{cls}{args}{kwargs or ''}" for cls, args, kwargs in layers)
            params.append(pytest.param(layers, shape, id=f"{op}[{i}]{desc}"[:90]))
    return params


@pytest.mark.parametrize("layers,shape", case_ids())
def test_op_compiled_matches_reference_and_torch(layers, shape):
    model = build(layers, "cnncompile").eval()
    twin = torch_twin(model, build(layers, "torch"))
    check_against_reference(model, shape, batches=(1, 3), torch_model=twin)


@pytest.mark.parametrize("layers,shape", case_ids())
def test_op_reference_matches_torch(layers, shape):
    model = build(layers, "cnncompile").eval()
    twin = torch_twin(model, build(layers, "torch"))
    x = random_input((4,) + shape[1:], seed=4)
    graph = build_graph(model, shape, skip_passes=("fuse_activation",))
    assert_close(reference.run(graph, x), run_torch(twin, x))


def test_registry_and_templates_agree():
    """Every op has test cases and (unless it emits no code) a template; every template an op
    (but the macros the templates import, in files named _*.j2)."""
    # 'unsupported' only ever fails to compile: test_trace.py tests its message; 'reorder' is
    # put in by passes/select_layout.py, not written in a model: test_layout.py tests it
    assert set(CASES) | {"unsupported", "reorder"} == set(ops.REGISTRY), \
        "ops without cases (or cases without ops)"
    used = {op.template for op in ops.REGISTRY.values() if op.template}
    used |= {k.template for k in kernels.REGISTRY}
    used |= {k.pipelined_template for k in kernels.REGISTRY if getattr(k, "pipelined_template", None)}
    used |= {op.reads_blocks_template for op in ops.REGISTRY.values() if op.reads_blocks_template}
    used |= {op.on_blocks_template for op in ops.REGISTRY.values() if op.on_blocks_template}
    used |= {op.pipelined_template for op in ops.REGISTRY.values() if op.pipelined_template}
    present = {p.name for p in Path(templates_dir(), "ops").glob("*.j2") if p.name[0] != "_"}
    assert used == present
    for name, op in ops.REGISTRY.items():
        assert op.template or kernels.for_op(name) or op.alias or name in ("input", "unsupported"), \
            f"{name} emits no code"


def test_nan_propagates_like_torch():
    layers = [("MaxPool2d", (2,), {}), ("ReLU", (), {})]
    model = build(layers, "cnncompile").eval()
    compiled = check_against_reference(model, (1, 1, 4, 4), batches=(1,))
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) - 8
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 3, 3] = np.nan
    expected = torch.relu(torch.nn.functional.max_pool2d(torch.from_numpy(x), 2)).numpy()
    np.testing.assert_array_equal(compiled(x), expected)  # NaN where torch has NaN


def functional_forms(nn, F, cat):
    """Every functional form, called as torch.nn.functional is."""
    rng = np.random.default_rng(3)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.3

    consts = dict(c1=w(4, 3, 3, 3), b1=w(4), c1d=w(4, 2, 3), c3=w(2, 4, 1, 1, 1), t=w(4, 2, 2, 2),
                  lin=w(5, 48), mean=w(4), var=np.abs(w(4)) + 0.5, g=w(4), b=w(4))

    class Functional(nn.Module):
        def forward(self, x):
            as_t = (lambda a: torch.from_numpy(a)) if F is torch.nn.functional else (lambda a: a)
            k = {name: as_t(v) for name, v in consts.items()}
            y = F.conv2d(x, k["c1"], k["b1"], stride=1, padding=1)
            y = F.batch_norm(y, k["mean"], k["var"], k["g"], k["b"], training=False)
            y = F.leaky_relu(F.elu(F.relu6(y), 0.7), 0.1)
            y = F.hardtanh(F.hardswish(y) + F.hardsigmoid(y) * F.silu(y), -2.0, 2.0)
            y = F.gelu(y) + F.gelu(y, approximate="tanh") - F.sigmoid(y) * F.tanh(y)
            y = F.max_pool2d(F.pad(y, (1, 0, 0, 1), mode="reflect"), 2, ceil_mode=True)
            y = F.avg_pool2d(y, 3, 1, 1, count_include_pad=False)
            z = F.conv_transpose2d(y, k["t"], stride=2)
            z = F.adaptive_avg_pool2d(z, (4, 6)) + F.adaptive_max_pool2d(z, (4, 6))
            u = F.fold(F.unfold(z, 2, padding=1), (4, 6), 2, padding=1)
            v = F.conv1d(u.flatten(2), k["c1d"], padding=1)
            q = F.conv3d(v.reshape(v.shape[0], 4, 2, 3, 4), k["c3"])
            q = F.dropout(q.flatten(1), 0.5, training=False)
            r = F.linear(q, k["lin"])
            return F.log_softmax(r, dim=1) + F.softmax(r, dim=-1)
    return Functional()


def test_functional_forms_match_torch():
    model = build(functional_forms, "cnncompile")
    twin = build(functional_forms, "torch")
    x = random_input((3, 3, 8, 8))
    compiled = check_against_reference(model, (1, 3, 8, 8), batches=(1, 3))
    assert_close(compiled(x), run_torch(twin, x))


@pytest.mark.parametrize("v", [WinogradF4x4, WinogradF2x2], ids=lambda k: k.name)
def test_winograd_matrices_compute_a_3x3_correlation(v):
    """A^T [(G g G^T) . (B^T d B)] A is the tile x tile valid correlation of d with g, in
    float64: the matrices the runtime's transforms are written from."""
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal((v.tile + 2,) * 2), rng.standard_normal((3, 3))
    y = v.a_t @ ((v.g @ g @ v.g.T) * (v.b_t @ d @ v.b_t.T)) @ v.a_t.T
    direct = sliding_window_view(d, (3, 3)).reshape(v.tile, v.tile, 9) @ g.ravel()
    np.testing.assert_allclose(y, direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [WinogradF4x4.name, WinogradF2x2.name])
@pytest.mark.parametrize("width", [4, 5, 12, 28, 33, 36, 57])
def test_winograd_input_reads_every_tile_row_layout(width, kernel):
    """The input transform reads the patches of tiles side by side in a tile row as vectors:
    tile rows of 1 to 15 (4x4 tiles) or 29 (2x2) tiles, so that panels of 8 tiles start and
    end anywhere in a row, span two or more rows, and the last panel is partial."""
    layers = [("Conv2d", (5, 7, 3), dict(padding=1)), ("ReLU", (), {})]
    model = build(layers, "cnncompile").eval()
    compiled = check_against_reference(model, (1, 5, 9, width), batches=(1, 2),
                                       kernels={"0": kernel})
    assert compiled.graph.node("0").meta["kernel"] == kernel


def conv_kernel_cases():
    return [pytest.param(layers, shape, kernel, id=f"{op}[{i}]-{kernel}")
            for op in ("conv1d", "conv2d", "conv3d", "conv_transpose2d")
            for i, (layers, shape) in enumerate(CASES[op])
            for kernel in kernels.for_op(op)]


LINEAR_KERNEL_CASES = CASES["linear"] + [
    # 16 outputs exactly, one block over, fewer than a group of blocks, and a partial last
    # group; inputs not a multiple of 16; every fused activation path
    ([("Linear", (33, 16), {}), ("ReLU6", (), {})], (1, 33)),
    ([("Linear", (16, 17), {}), ("ReLU", (), {})], (1, 16)),
    ([("Linear", (70, 100), dict(bias=False)), ("Tanh", (), {})], (1, 70)),
    ([("Linear", (5, 131), {}), ("LeakyReLU", (0.1,), {})], (1, 5)),
]


@pytest.mark.parametrize("kernel", sorted(kernels.for_op("linear")))
@pytest.mark.parametrize("case", range(len(LINEAR_KERNEL_CASES)))
@pytest.mark.parametrize("threads", [1, 2])
def test_every_linear_kernel_matches_the_reference(case, kernel, threads):
    """Both layouts of the weights, one sample and groups of samples (batch 17: a group of
    16 and one over), on sizes that are not multiples of the 16-output blocks."""
    layers, shape = LINEAR_KERNEL_CASES[case]
    model = build(layers, "cnncompile").eval()
    compiled = check_against_reference(model, shape, batches=(1, 3, 17), kernels={"0": kernel},
                                       num_threads=threads, torch_model=torch_twin(model, build(layers, "torch")))
    node = compiled.graph.node("0")
    assert node.meta["kernel"] == kernel
    impl = kernels.get(node)
    assert impl.packed_shapes(node) == {k: a.shape for k, a in impl.pack(node).items()}


def test_linear_kernel_follows_the_weights_size():
    """Weights past the L2 are read in blocks; small layers keep their rows."""
    from cnncompile.kernels import linear
    side = int((linear.BLOCKS_MIN_BYTES // 4) ** 0.5)
    for fin, fout, kernel in [(side, side, "nc.linear_blocks"), (side, side - 1, "nc.linear_rows"),
                              (8192, 10, "nc.linear_rows"), (1280, 1000, "nc.linear_blocks")]:
        graph = build_graph(cnn.Sequential(cnn.Linear(fin, fout)).eval(), (1, fin))
        assert graph.node("0").meta["kernel"] == kernel, (fin, fout)


KERNEL_CASES = {"conv1d": CASES["conv1d"], "conv2d": CASES["conv2d"], "conv3d": CASES["conv3d"],
                "conv_transpose2d": CASES["conv_transpose2d"], "linear": LINEAR_KERNEL_CASES}


def test_every_registered_kernel_is_tested_against_the_reference():
    """Each kernel of the registry computes at least one of the cases that
    test_every_conv_kernel_matches_the_reference and test_every_linear_kernel_matches_the_reference
    force it on: a kernel added without a case that it applies to fails here."""
    assert set(KERNEL_CASES) == set(kernels.KERNELS), "ops with kernels but no forced cases"
    covered = set()
    for op, cases in KERNEL_CASES.items():
        for layers, shape in cases:
            model = build(layers, "cnncompile").eval()
            graph = build_graph(model, shape)
            node = next(n for n in graph.nodes() if n.op == op)
            covered |= {(op, name) for name, k in kernels.for_op(op).items() if k.applies(node)}
    missing = {(op, name) for op in kernels.KERNELS for name in kernels.for_op(op)} - covered
    assert not missing, f"kernels without a case they compute: {sorted(missing)}"


@pytest.mark.parametrize("layers,shape,kernel", conv_kernel_cases())
def test_every_conv_kernel_matches_the_reference(layers, shape, kernel):
    model = build(layers, "cnncompile").eval()
    name = next(n for n, m in model.named_children() if type(m).__name__.startswith("Conv"))
    graph = build_graph(model, shape)
    assert "kernel" in graph.node(name).meta
    impl = kernels.for_op(graph.node(name).op)[kernel]
    if not impl.applies(graph.node(name)):
        with pytest.raises(ValueError, match=f"kernel '{kernel}' cannot compute"):
            build_graph(model, shape, kernels={name: kernel})
        return
    compiled = check_against_reference(model, shape, batches=(2,), kernels={name: kernel})
    node = compiled.graph.node(name)
    assert node.meta["kernel"] == kernel
    # the blob's layout is planned from packed_shapes, without packing
    assert impl.packed_shapes(node) == {k: a.shape for k, a in impl.pack(node).items()}
