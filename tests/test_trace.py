"""Tracing into the graph, and the errors that a wrong model gets before any C is written."""
import numpy as np
import pytest
import torch

import cnncompile
import cnncompile.nn as nn
import cnncompile.nn.functional as F
from cnncompile.errors import CompileError, ShapeError, TraceError, UnsupportedError
from cnncompile.trace import trace
from helpers import check_against_reference, load_example


def test_simplecnn_graph():
    g = trace(load_example("seed_simplecnn")["model"], (1, 3, 32, 32)).lint()
    assert [(n.name, n.op, n.shape) for n in g.nodes()] == [
        ("input", "input", (1, 3, 32, 32)), ("conv1", "conv2d", (1, 32, 32, 32)),
        ("pool", "max_pool2d", (1, 32, 16, 16)), ("relu", "relu", (1, 32, 16, 16)),
        ("view", "reshape", (1, 8192)), ("fc1", "linear", (1, 10))]
    assert g.outputs == ["fc1"] and g.input_names("fc1") == ["view"]
    assert g.node("conv1").attrs["padding"] == (1, 1)


def test_names_for_functional_calls_and_reused_modules():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)
            self.act = nn.ReLU()

        def forward(self, x):
            x = F.relu(self.conv(x))
            x = self.act(self.conv(x))
            return F.relu(x)
    g = trace(Net(), (1, 2, 4, 4))
    assert [n.name for n in g.nodes()] == ["input", "conv", "relu", "conv_1", "act", "relu_1"]


def test_shape_queries_inside_forward():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, 5)

        def forward(self, x):
            assert x.dim() == 4 and x.shape[1] == 3 and x.size(-1) == 8
            x = self.conv(x)
            n, c, h, w = x.size()
            if h > 1:  # control flow on shapes is fine
                x = x.view(x.size(0), c * h * w)
            return self.fc(x)
    model = Net().eval()
    twin = torch.nn.Module()
    twin.conv, twin.fc = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(144, 5)
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    twin.forward = lambda x: twin.fc(twin.conv(x).flatten(1))
    compiled = check_against_reference(model, (1, 3, 8, 8), batches=(1, 5), torch_model=twin)
    assert compiled(np.zeros((5, 3, 8, 8), np.float32)).shape == (5, 5)


def test_seed_002_functional_conv_with_explicit_weights():
    """nn.functional.conv2d(input, weight=..., bias=...) with arrays made in forward's module."""
    rng = np.random.default_rng(1)
    weight, bias = rng.standard_normal((6, 3, 3, 3)), np.zeros(6)

    class Net(nn.Module):
        def forward(self, x):
            return nn.functional.conv2d(x, weight=weight, bias=bias, stride=2, padding=1)
    compiled = check_against_reference(Net(), (2, 3, 32, 32))
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight).float(),
                                          torch.from_numpy(bias).float(), stride=2, padding=1)
    assert compiled(x).shape == (2, 6, 16, 16)
    np.testing.assert_allclose(compiled(x), expected.numpy(), rtol=1e-4, atol=1e-5)


# -- errors a beginner meets (the seeds warn about each) -------------------------------------

class SimpleCNN(nn.Module):
    def __init__(self, conv2_in=32, fc_in=32 * 16 * 16, view=(-1, 32 * 16 * 16)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(conv2_in, 32, 3, padding=1)
        self.fc1 = nn.Linear(fc_in, 10)
        self.view_shape = view

    def forward(self, x):
        x = self.conv2(self.pool(F.relu(self.conv1(x))))
        return self.fc1(x.view(*self.view_shape))


def error_of(model, shape=(1, 3, 32, 32)):
    with pytest.raises(CompileError) as info:
        cnncompile.compile(model, shape)
    return info.value


def test_error_in_channels_mismatch():
    e = error_of(SimpleCNN(conv2_in=16))
    assert isinstance(e, ShapeError) and e.layer == "conv2"
    assert str(e).startswith("conv2: Conv2d expects 16 input channels but receives 32 "
                             "(output of pool: (1, 32, 16, 16)); use nn.Conv2d(32, 32, ...)")
    assert "test_trace.py" in e.source  # points at the user's line


def test_error_linear_in_features_gives_flattened_size():
    e = error_of(SimpleCNN(fc_in=4096))
    assert e.layer == "fc1"
    assert str(e).startswith("fc1: Linear expects 4096 input features but receives 8192 "
                             "(32 x 16 x 16 after conv2); use nn.Linear(8192, 10)")


def test_error_view_sizes_do_not_divide():
    e = error_of(SimpleCNN(view=(-1, 1000)))
    assert e.layer == "view"
    msg = str(e)
    assert "view(-1, 1000)" in msg and "8192 values per sample (32 x 16 x 16)" in msg
    assert "8192 is not a multiple of 1000" in msg and "x.view(x.size(0), -1)" in msg


def test_error_view_across_batch():
    e = error_of(SimpleCNN(view=(-1,)))
    assert e.layer == "view" and "dimension 0 must stay the batch" in str(e)
    e = error_of(SimpleCNN(view=(2, 4096)))
    assert "moves values across the batch" in str(e)


def test_error_kernel_larger_than_padded_input():
    e = error_of(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 7, padding=1)), (1, 3, 5, 5))
    assert e.layer == "1"
    assert str(e).startswith("layer 1: Conv2d kernel 7x7 is larger than its padded input 5x5 "
                             "(3x3 (output of layer 0) plus padding 2,2)")
    e = error_of(nn.Sequential(nn.Conv2d(3, 8, 3, dilation=3)), (1, 3, 6, 6))
    assert "kernel 3x3 (dilation 3x3, so it spans 7x7) is larger than its padded input 6x6" in str(e)
    e = error_of(nn.Sequential(nn.MaxPool2d(4)), (1, 3, 3, 3))
    assert e.layer == "0" and "MaxPool2d window 4x4 does not fit its input 3x3" in str(e)


def test_error_linear_on_unflattened_input():
    e = error_of(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(4, 2)), (1, 3, 5, 5))
    assert "Linear expects a 2-D input (N, 4) but receives 4-D" in str(e)
    assert "nn.Flatten()" in str(e) and "nn.Linear(4 * 3 * 3, 2)" in str(e)


def test_errors_for_what_cannot_be_traced():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)

        def forward(self, x):
            x = self.conv(x)
            return x if x else x
    with pytest.raises(TraceError, match="depends on its values"):
        cnncompile.compile(Branchy(), (1, 1, 4, 4))
    with pytest.raises(UnsupportedError, match=r"return_indices=True\) is not supported"):
        cnncompile.compile(nn.Sequential(nn.MaxPool2d(2, return_indices=True)), (1, 1, 4, 4))
    with pytest.raises(ShapeError, match="flatten from dimension 1"):
        cnncompile.compile(nn.Sequential(nn.Flatten(0)), (1, 1, 4, 4))
    with pytest.raises(TypeError, match="compiles a cnncompile.nn.Module, a torch.nn.Module"):
        cnncompile.compile(lambda x: x, (1, 1, 4, 4))
    with pytest.raises(ValueError, match="input_shape must be positive"):
        cnncompile.compile(nn.Sequential(nn.ReLU()), (1, 0, 4, 4))


def test_every_unsupported_layer_is_listed_at_once():
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.norm = nn.LocalResponseNorm(2)
            self.pool = nn.MaxPool2d(2, return_indices=True)
            self.lstm = nn.LSTM(8, 8)

        def forward(self, x):
            x = self.pool(self.norm(self.conv(x)))
            x = F.fractional_max_pool2d(x, 2, output_ratio=0.5).permute(0, 2, 3, 1)
            return self.lstm(x)
    with pytest.raises(UnsupportedError) as info:
        cnncompile.compile(Mixed().eval(), (1, 3, 16, 16))
    msg = str(info.value)
    assert msg.startswith("Mixed cannot be compiled: 4 unsupported layers")
    for line in ("- norm: nn.LocalResponseNorm is not supported", "- pool: MaxPool2d(return_indices=True)",
                 "- fractional_max_pool2d: F.fractional_max_pool2d is not ",
                 "- lstm: nn.LSTM is not supported", "Supported layers: Conv1d/2d/3d"):
        assert line in msg, line
    assert "- permute" not in msg  # supported, and recorded after an unsupported layer
    assert len(info.value.errors) == 4 and info.value.errors[0].layer == "norm"
    assert "test_trace.py" in info.value.errors[0].source
    with pytest.raises(AttributeError, match="has no attribute 'Conv2D'"):
        nn.Conv2D  # a typo is still an AttributeError


def test_training_mode_is_compiled_as_inference_with_a_warning():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout())
    with pytest.warns(UserWarning, match=r"training mode.*model.eval\(\)"):
        compiled = cnncompile.compile(model, (1, 1, 5, 5))
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(compiled(x), model.eval()[1](model[0](x)), rtol=1e-5, atol=1e-6)
