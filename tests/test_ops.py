"""Every registered op, swept over its options: compiled C vs numpy reference vs torch.

A case is one layer built with the same arguments in cnncompile.nn and torch.nn. The registry
test below fails when an op has no cases, or a template has no op.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

import cnncompile.nn as cnn
from cnncompile import ops, reference
from cnncompile.api import build_graph
from cnncompile.resources import templates_dir
from helpers import assert_close, check_against_reference, random_input, run_torch, torch_twin

# op -> [(layer(s) as (class name, args, kwargs), input shape)]
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
    "linear": [
        ([("Linear", (16, 4), {})], (1, 16)),
        ([("Linear", (16, 4), dict(bias=False))], (1, 16)),
        ([("Linear", (1, 1), {})], (1, 1)),
        ([("Linear", (300, 7), {}), ("ReLU", (), {})], (1, 300)),
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
    "input": [
        ([], (1, 3, 4, 4)),  # the identity model: output is a copy of the input
    ],
}


def build(layers, framework):
    nn = cnn if framework == "cnncompile" else torch.nn
    return nn.Sequential(*[getattr(nn, cls)(*args, **kwargs) for cls, args, kwargs in layers])


def case_ids():
    for op, cases in CASES.items():
        for i, (layers, shape) in enumerate(cases):
            desc = "-".join(f"{cls}{args}{kwargs or ''}" for cls, args, kwargs in layers)
            yield pytest.param(layers, shape, id=f"{op}[{i}]{desc}"[:90])


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
    """Every op has test cases and (unless it emits no code) a template; every template an op."""
    assert set(CASES) == set(ops.REGISTRY), "ops without cases (or cases without ops)"
    used = {op.template for op in ops.REGISTRY.values() if op.template}
    present = {p.name for p in Path(templates_dir(), "ops").glob("*.j2")}
    assert used == present
    for name, op in ops.REGISTRY.items():
        assert op.template or op.alias or name == "input", f"{name} emits no code"


def test_nan_propagates_like_torch():
    layers = [("MaxPool2d", (2,), {}), ("ReLU", (), {})]
    model = build(layers, "cnncompile").eval()
    compiled = check_against_reference(model, (1, 1, 4, 4), batches=(1,))
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) - 8
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 3, 3] = np.nan
    expected = torch.relu(torch.nn.functional.max_pool2d(torch.from_numpy(x), 2)).numpy()
    np.testing.assert_array_equal(compiled(x), expected)  # NaN where torch has NaN
