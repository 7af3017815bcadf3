"""What a user meets on the first calls: a shape written as text, a model class given for a
model, a pool asked for its indices, and parametrize given collections in the op tests."""
import collections.abc
import inspect

import pytest

import cnncompile
import cnncompile.nn as nn
import cnncompile.nn.functional as F
from cnncompile import reference
from cnncompile.api import build_graph
from cnncompile.errors import TraceError, UnsupportedError
from cnncompile.model_io import parse_shape
from cnncompile.trace import trace
from helpers import assert_close, random_input, run_torch


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).flatten(1))


# -- input_shape as text ---------------------------------------------------------------------
@pytest.mark.parametrize("text", ["1,3,32,32", "1x3x32x32", "1 x 3 x 32 x 32", "(1, 3, 32, 32)",
                                  "[1,3,32,32]", " 1, 3, 32, 32 "])
def test_a_shape_written_as_text_is_read_as_its_sizes(text):
    assert parse_shape(text) == (1, 3, 32, 32)


@pytest.mark.parametrize("text", ["", "abc", "1,,3", "1,3.5,4", "(1,3", "x1x3", "1,-3", "None",
                                  "((1, 3), (1, 4))"])
def test_text_that_is_not_a_shape_says_what_to_give(text):
    with pytest.raises(ValueError, match=r"is not a shape: .*input_shape=\(1, 3, 32, 32\)"):
        parse_shape(text)
    with pytest.raises(ValueError, match=r"input_shape=\(1, 3, 32, 32\)"):
        cnncompile.compile(SmallNet(), text)


def test_compile_takes_the_input_shape_as_text():
    model = SmallNet().eval()
    compiled = cnncompile.compile(model, input_shape="1,3,8,8")
    assert compiled.graph.node("input").shape == (1, 3, 8, 8)
    x = random_input((2, 3, 8, 8))
    assert_close(compiled(x), reference.run(compiled.graph, x), "text shape vs reference")
    for text in ("1x3x8x8", "(1, 3, 8, 8)"):
        graph = build_graph(model, text)
        assert [(n.name, n.shape) for n in graph.nodes()] == \
            [(n.name, n.shape) for n in compiled.graph.nodes()]
    assert trace(model, "1x3x8x8").node("fc").shape == (1, 5)


def test_a_shape_as_text_is_still_checked_for_positive_sizes():
    with pytest.raises(ValueError, match=r"must be positive .* got \(1, 0, 8, 8\)"):
        cnncompile.compile(SmallNet(), "1,0,8,8")


def test_a_torch_module_takes_the_input_shape_as_text():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    graph = build_graph(model, "2x3x8x8")
    assert graph.node(graph.outputs[0]).shape == (2, 4, 6, 6)


# -- a model class given for a model ---------------------------------------------------------
def test_a_cnncompile_model_class_is_refused_with_how_to_instantiate_it():
    with pytest.raises(TypeError) as info:
        cnncompile.compile(SmallNet, (1, 3, 8, 8))
    assert str(info.value) == ("SmallNet is a class; instantiate it: "
                               "cnncompile.compile(SmallNet(), ...)")


def test_a_torch_model_class_is_refused_with_how_to_instantiate_it():
    torch = pytest.importorskip("torch")

    class TorchNet(torch.nn.Module):
        def forward(self, x):
            return x.relu()
    with pytest.raises(TypeError) as info:
        cnncompile.compile(TorchNet, (1, 3, 8, 8))
    assert str(info.value) == ("TorchNet is a class; instantiate it: "
                               "cnncompile.compile(TorchNet(), ...)")
    with pytest.raises(TypeError, match=r"instantiate it: cnncompile.from_torch\(TorchNet\(\)"):
        cnncompile.from_torch(TorchNet, (1, 3, 8, 8))


# -- pools asked for their indices -----------------------------------------------------------
POOLS = [  # the layer from a torch.nn-like module, and an input shape for it
    pytest.param(lambda nn: nn.MaxPool2d(2, return_indices=True), (1, 3, 8, 8), id="MaxPool2d"),
    pytest.param(lambda nn: nn.MaxPool1d(2, return_indices=True), (1, 3, 8), id="MaxPool1d"),
    pytest.param(lambda nn: nn.MaxPool3d(2, return_indices=True), (1, 3, 4, 4, 4),
                 id="MaxPool3d"),
    pytest.param(lambda nn: nn.AdaptiveMaxPool2d(2, return_indices=True), (1, 3, 8, 8),
                 id="AdaptiveMaxPool2d"),
]


class PoolNet(nn.Module):
    """A pool with return_indices=True, used as ``x = pool(x)`` or ``x, idx = pool(x)``."""

    def __init__(self, pool, unpack):
        super().__init__()
        self.pool, self.unpack = pool, unpack

    def forward(self, x):
        if self.unpack:
            x, indices = self.pool(x)
            return x
        return self.pool(x)


def _line_of(function, text):
    """The line number of the first line of ``function`` that holds ``text``."""
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


def _unsupported(model, shape):
    with pytest.raises(UnsupportedError) as info:
        build_graph(model, shape)
    return info.value


@pytest.mark.parametrize("make,shape", POOLS)
def test_unpacking_a_pools_indices_gives_the_error_of_return_indices(make, shape):
    plain = _unsupported(PoolNet(make(nn), unpack=False), shape)
    unpacked = _unsupported(PoolNet(make(nn), unpack=True), shape)
    what = type(make(nn)).__name__
    assert [(e.layer, e.detail) for e in unpacked.errors] == \
        [(e.layer, e.detail) for e in plain.errors] == \
        [("pool", f"{what}(return_indices=True) is not supported: the compiled model returns "
                  "the pooled values only; use return_indices=False and take the values "
                  "alone (x = pool(x), not x, indices = pool(x))")]
    assert unpacked.errors[0].source.endswith(f":{_line_of(PoolNet.forward, 'x, indices =')}")


def test_unpacking_functional_max_pool_indices_names_the_call():
    class Functional(nn.Module):
        def forward(self, x):
            x, indices = F.max_pool2d(x, 2, return_indices=True)
            return x
    error = _unsupported(Functional(), (1, 3, 8, 8))
    assert [e.layer for e in error.errors] == ["max_pool2d"]
    assert "use return_indices=False" in str(error)


def test_unpacking_a_supported_layer_is_still_refused_as_iteration():
    class Unpack(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            a, b = self.conv(x)
            return a
    with pytest.raises(TraceError, match="conv: forward\\(\\) uses iteration over the rows"):
        build_graph(Unpack(), (2, 3, 4, 4))


class TorchPoolNet:
    """A torch model with a pool of return_indices=True: its indices discarded, returned, or
    used in arithmetic."""

    @staticmethod
    def build(torch, pool, use):
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.pool = pool

            def forward(self, x):
                x, indices = self.pool(x)
                if use == "returned":
                    return x, indices
                if use == "added":
                    return x + indices.float()
                return x * 2
        return Net().eval()


@pytest.mark.parametrize("use", ["returned", "added"])
@pytest.mark.parametrize("make,shape", POOLS)
def test_a_torch_model_reading_pool_indices_gets_the_error_of_return_indices(make, shape, use):
    torch = pytest.importorskip("torch")
    model = TorchPoolNet.build(torch, make(torch.nn), use)
    error = _unsupported(model, shape)
    expected = _unsupported(PoolNet(make(nn), unpack=False), shape)
    assert [(e.layer, e.detail) for e in error.errors] == \
        [(e.layer, e.detail) for e in expected.errors]
    assert "x, indices = self.pool(x)" in error.errors[0].source


@pytest.mark.parametrize("make,shape", POOLS)
def test_a_torch_model_discarding_pool_indices_computes_the_values(make, shape):
    torch = pytest.importorskip("torch")
    model = TorchPoolNet.build(torch, make(torch.nn), "discarded")
    graph = build_graph(model, shape)
    x = random_input((3,) + shape[1:])
    assert_close(reference.run(graph, x), run_torch(model, x), "discarded indices vs torch")
    assert not any(n.attrs.get("return_indices") for n in graph.nodes())


def test_a_torch_model_discarding_pool_indices_compiles():
    torch = pytest.importorskip("torch")
    model = TorchPoolNet.build(torch, torch.nn.MaxPool2d(2, return_indices=True), "discarded")
    compiled = cnncompile.compile(model, (1, 3, 8, 8))
    x = random_input((2, 3, 8, 8), seed=1)
    assert_close(compiled(x), run_torch(model, x), "compiled vs torch")


# -- the op tests' parametrize arguments -----------------------------------------------------
def test_op_tests_give_parametrize_collections():
    """pytest 9.1 deprecates an iterator as parametrize's argvalues (pytest 10 refuses it)."""
    import test_ops
    marks = [(name, mark) for name, fn in vars(test_ops).items() if name.startswith("test_")
             for mark in getattr(fn, "pytestmark", []) if mark.name == "parametrize"]
    assert len(marks) >= 3
    iterators = [name for name, mark in marks
                 if not isinstance(mark.args[1], collections.abc.Collection)]
    assert not iterators, f"parametrize given an iterator in: {iterators}"
