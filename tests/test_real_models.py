"""The patterns of today's torchvision and timm CNNs (tests/real_models.py), compiled from
torch (torch.export), from cnncompile.nn and from an ONNX export, against torch."""

import numpy as np
import pytest
import torch

import cnncompile
import cnncompile.nn as cnn
from helpers import export_onnx, assert_close, random_input
from real_models import PATTERNS, cnn_namespace

RTOL, ATOL = 1e-4, 1e-5


def _torch_model(name):
    torch.manual_seed(0)
    model = PATTERNS[name][0](torch.nn, torch.nn.functional, torch).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
            if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.InstanceNorm2d)) \
                    and getattr(m, "weight", None) is not None:
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.5, 0.5, generator=g)
    return model


def _inputs(name, batch):
    return [random_input((batch,) + tuple(s[1:]), seed=batch + i)
            for i, s in enumerate(PATTERNS[name][1])]


def _torch_outputs(model, xs):
    with torch.inference_mode():
        out = model(*[torch.from_numpy(x) for x in xs])
    return _numpy(out)


def _numpy(out):
    if isinstance(out, dict):
        return {k: _numpy(v) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(_numpy(v) for v in out)
    return out.numpy() if hasattr(out, "numpy") else out


def _assert_same(actual, expected, what):
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), what
        for k in expected:
            _assert_same(actual[k], expected[k], f"{what}[{k!r}]")
    elif isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)) and len(actual) == len(expected), what
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_same(a, e, f"{what}[{i}]")
    else:
        assert_close(actual, expected, what, RTOL, ATOL)


def _shape_arg(name):
    shapes = PATTERNS[name][1]
    return shapes[0] if len(shapes) == 1 else shapes


@pytest.mark.parametrize("name", list(PATTERNS))
def test_pattern_from_torch(name):
    model = _torch_model(name)
    compiled = cnncompile.from_torch(model, _shape_arg(name), werror=True)
    for batch in (1, 3):
        xs = _inputs(name, batch)
        _assert_same(compiled(*xs), _torch_outputs(model, xs), f"{name} batch {batch}")


@pytest.mark.parametrize("name", [n for n, (_, _, native) in PATTERNS.items() if native])
def test_pattern_from_cnncompile_nn(name):
    model = _torch_model(name)
    cnncompile.manual_seed(0)
    native = PATTERNS[name][0](cnn, cnn.functional, cnn_namespace()).eval()
    native.load_state_dict({k: v.numpy() for k, v in model.state_dict().items()})
    compiled = cnncompile.compile(native, _shape_arg(name), werror=True)
    for batch in (1, 3):
        xs = _inputs(name, batch)
        _assert_same(compiled(*xs), _torch_outputs(model, xs), f"{name} batch {batch}")


def _export_onnx(model, name):
    return export_onnx(model, PATTERNS[name][1], opset=18)


# ONNX has no op for what these do (or the exporter writes them in ways nobody compiles)
NOT_IN_ONNX = {}


@pytest.mark.parametrize("name", [n for n in PATTERNS if n not in NOT_IN_ONNX])
def test_pattern_from_onnx(name):
    model = _torch_model(name)
    compiled = cnncompile.from_onnx(_export_onnx(model, name), werror=True)
    for batch in (1, 3):
        xs = _inputs(name, batch)
        expected = _torch_outputs(model, xs)
        flat = list(expected.values()) if isinstance(expected, dict) else expected
        actual = compiled(*xs)
        if isinstance(flat, np.ndarray):
            _assert_same(actual, flat, f"{name} batch {batch}")
        else:
            _assert_same(list(actual.values()) if isinstance(actual, dict) else list(actual),
                         list(flat), f"{name} batch {batch}")


def test_layer_names_follow_the_module_paths():
    """Layers keep the module path torch gives them, a torch layer's whole path, a function
    inside a module its path and the function's name."""
    graph = cnncompile.from_torch(_torch_model("bn_act"), (1, 3, 8, 8)).graph
    names = set(graph.nx.nodes)
    assert {"conv", "conv2"} <= names, names
    graph = cnncompile.from_torch(_torch_model("squeeze_excite"), (1, 8, 7, 7)).graph
    assert {"se.fc1", "se.fc2", "dw.0", "project"} <= set(graph.nx.nodes), set(graph.nx.nodes)
