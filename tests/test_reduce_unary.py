"""Reductions and elementwise math beyond the op sweep (tests/op_cases/reduce.py, unary.py):
special values against torch, the functional forms, torch models exported to ONNX, hand-built
ONNX graphs against ONNX Runtime, and the errors. The official ONNX node cases of these ops
run in test_onnx_conformance.py."""

import numpy as np
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import cnncompile
import cnncompile.nn as nn
from helpers import export_onnx, assert_close, random_input, run_torch, torch_twin


def expression_model(framework, expr):
    """A model computing expr(x, F) after a 1x1 conv, in cnncompile.nn or torch.nn; F is the
    framework's functions (cnncompile.functional, or torch with torch.nn.functional's)."""
    T = cnncompile.functional if framework is nn else _TorchFunctions()

    class Expression(framework.Module):
        def __init__(self):
            super().__init__()
            self.conv = framework.Conv2d(3, 4, 1)

        def forward(self, x):
            return expr(self.conv(x), T)
    return Expression()


class _TorchFunctions:
    """torch's functions by the names cnncompile.functional has: torch.mean, F.softplus..."""

    def __getattr__(self, name):
        return getattr(torch, name, None) or getattr(torch.nn.functional, name)


def compile_both(expr, shape=(1, 3, 5, 6)):
    cnncompile.manual_seed(0)
    model = expression_model(nn, expr).eval()
    twin = torch_twin(model, expression_model(torch.nn, expr))
    return cnncompile.compile(model, shape, werror=True), twin


def same_as_torch(y, want):
    """Equal to float32 precision, with NaN and infinities where torch has them."""
    assert y.shape == want.shape
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(want))
    finite = np.isfinite(want)
    assert_close(y[finite], want[finite])


# -- special values -------------------------------------------------------------------------
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 19.0, 21.0, 30.0,
           -30.0, 100.0, -100.0, 1e-30, 1e30, -1e30, 3e-40, 88.5, -88.5, 0.1, -2.5]

UNARY = {
    "abs": lambda x: x.abs(), "exp": lambda x: x.exp(), "log": lambda x: x.log(),
    "sqrt": lambda x: x.sqrt(), "rsqrt": lambda x: x.rsqrt(),
    "reciprocal": lambda x: x.reciprocal(), "square": lambda x: x.square(),
    "pow2": lambda x: x.pow(2), "pow3": lambda x: x ** 3, "pow0.5": lambda x: x ** 0.5,
    "pow-0.5": lambda x: x ** -0.5, "pow-1": lambda x: x.pow(-1), "pow-2": lambda x: x ** -2,
    "pow1.7": lambda x: x.pow(1.7), "pow0": lambda x: x.pow(0), "pow1": lambda x: x ** 1,
    "clamp": lambda x: x.clamp(-1.0, 1.0), "clamp_min": lambda x: x.clamp(min=0),
    "clip_max": lambda x: x.clip(max=0.5), "clamp_reversed": lambda x: x.clamp(1.0, -1.0),
    "clamp_0_6": lambda x: x.clamp(0, 6),
}


def single(framework, expr):
    class Single(framework.Module):
        def forward(self, x):
            return expr(x)
    return Single().eval()


@pytest.mark.parametrize("name", UNARY)
def test_unary_special_values_like_torch(name):
    expr = UNARY[name]
    x = np.array([SPECIAL], np.float32)
    compiled = cnncompile.compile(single(nn, expr), x.shape, werror=True)
    same_as_torch(compiled(x), run_torch(single(torch.nn, expr), x))


@pytest.mark.parametrize("layer,args", [("Softplus", ()), ("Softplus", (2.0, 1.0)),
                                        ("Softplus", (0.5, 30.0)), ("Mish", ())])
def test_softplus_and_mish_special_values_like_torch(layer, args):
    x = np.array([SPECIAL], np.float32)
    model = nn.Sequential(getattr(nn, layer)(*args)).eval()
    compiled = cnncompile.compile(model, x.shape, werror=True)
    same_as_torch(compiled(x), run_torch(torch.nn.Sequential(getattr(torch.nn, layer)(*args)), x))


@pytest.mark.parametrize("method", ["mean", "sum", "amax", "amin"])
@pytest.mark.parametrize("dim", [1, -1, (1, 2)])
def test_reductions_let_nan_and_infinities_through(method, dim):
    x = random_input((2, 3, 4, 5))
    x[0, 1, 2, 3], x[1, 0, 0, 4], x[1, 2, 3, 0] = np.nan, np.inf, -np.inf
    expr = lambda t: getattr(t, method)(dim)  # noqa: E731
    compiled = cnncompile.compile(single(nn, expr), (1, 3, 4, 5), werror=True)
    same_as_torch(compiled(x), run_torch(single(torch.nn, expr), x))


# -- functional forms -----------------------------------------------------------------------
FUNCTIONAL = {
    "mean": lambda x, T: T.mean(x, (2, 3), True) + T.mean(x, dim=1, keepdim=True),
    "mean_head": lambda x, T: T.mean(x, [-1, -2]),
    "mean_dtype": lambda x, T: T.mean(x, -1, dtype=torch.float32),
    "sum": lambda x, T: T.sum(x, dim=(1, 3), keepdim=True) + T.sum(x, 1, True, dtype=None),
    "amax_amin": lambda x, T: T.amax(x, 1) - T.amin(x, dim=(-3,)),
    "math": lambda x, T: T.sqrt(T.abs(x)) + T.exp(x) * T.log(T.abs(x) + 1.0)
    - T.rsqrt(T.square(x) + 1.0) + T.reciprocal(T.abs(x) + 2.0),
    "pow": lambda x, T: T.pow(x, 3) + T.pow(T.abs(x), 0.5),
    "clamp": lambda x, T: T.clamp(x, -0.3, 0.2) + T.clip(x, min=0.0) + T.clamp(x, max=0.1),
    "activations": lambda x, T: T.softplus(x) + T.softplus(x, beta=2.0, threshold=1.0)
    + T.mish(x),
}


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_functional_forms_match_torch(name):
    compiled, twin = compile_both(FUNCTIONAL[name])
    for batch in (1, 3):
        x = random_input((batch, 3, 5, 6), seed=batch)
        assert_close(compiled(x), run_torch(twin, x), f"batch {batch}")


def test_functions_on_arrays_run_the_reference():
    F = cnncompile.functional
    x = random_input((2, 3, 4, 5))
    np.testing.assert_allclose(F.mean(x, (2, 3), keepdim=True), x.mean((2, 3), keepdims=True),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(F.sum(x, -1), x.sum(-1), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(F.amax(x, (1, 3)), x.max((1, 3)))
    np.testing.assert_array_equal(F.clamp(x, min=0), np.maximum(x, 0))
    np.testing.assert_allclose(F.pow(x, 2), x * x)


def test_layers_repr_like_torch():
    assert repr(nn.Softplus(2.0, 10.0)) == repr(torch.nn.Softplus(2.0, 10.0))
    assert repr(nn.Mish()) == repr(torch.nn.Mish())


def test_mean_over_the_plane_of_a_map_is_a_global_pool_and_unary_ops_fuse():
    compiled, _ = compile_both(lambda x, T: x.abs().mean((2, 3)))
    ops = {n.name: (n.op, [f["op"] for f in n.meta.get("fused", [])]) for n in compiled.graph.nodes()}
    assert ops["mean"][0] == "adaptive_avg_pool2d"
    assert ops["conv"][1] == ["abs"]


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("expr,error,fragments", [
    (lambda x: x.mean(), cnncompile.UnsupportedError, ["mean() without dim", "dim=(1, 2, 3)"]),
    (lambda x: x.sum(0), cnncompile.UnsupportedError, ["sum over dim 0", "samples"]),
    (lambda x: x.amax((0, 2), keepdim=True), cnncompile.UnsupportedError,
     ["amax over dim 0", "amax(dim=(2,))"]),
    (lambda x: x.amin(dim=[]), cnncompile.UnsupportedError, ["amin() without dim"]),
    (lambda x: x.mean(4), cnncompile.ShapeError, ["out of range", "from -4 to 3"]),
    (lambda x: x.sum((1, -3)), cnncompile.ShapeError, ["twice"]),
    (lambda x: x.mean(1, dtype=torch.float64), cnncompile.UnsupportedError, ["float32"]),
    (lambda x: x.clamp(min=x), cnncompile.UnsupportedError, ["clamp with tensor bounds",
                                                             "number bounds"]),
    (lambda x: x.pow(x), cnncompile.UnsupportedError, ["tensor exponent", "x ** 2.0"]),
])
def test_errors_name_the_layer_and_what_to_write(expr, error, fragments):
    with pytest.raises(error) as info:
        cnncompile.compile(single(nn, expr), (1, 3, 4, 5))
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_clamp_needs_a_bound():
    with pytest.raises(ValueError, match="at least one"):
        cnncompile.compile(single(nn, lambda x: x.clamp()), (1, 3))


def test_batch_reduction_error_names_its_layer():
    with pytest.raises(cnncompile.UnsupportedError) as info:
        cnncompile.compile(single(nn, lambda x: x.sum(0)), (1, 3, 4, 5))
    assert "sum" in [e.layer for e in info.value.errors]


# -- ONNX: torch exports --------------------------------------------------------------------
def export(torch_model, shape, opset):
    return export_onnx(torch_model, shape, opset)


def exported(x, T):
    s = T.sigmoid(x.mean((2, 3), keepdim=True))
    y = x * s + x.sum(1, keepdim=True) - x.amax(-1, keepdim=True) + x.amin((1, 2), keepdim=True)
    y = y + x.abs().sqrt() + (x.abs() + 1.0).log() - x.exp() + (x.abs() + 1.0).reciprocal()
    y = y + x.pow(2) * 0.1 + x.clamp(-0.5, 0.5) + T.softplus(x) + T.mish(x)
    return y.mean(-1) + y.sum(-1)


@pytest.mark.parametrize("opset", [11, 13, 17, 18])
def test_torch_model_exported_to_onnx_matches_torch(opset):
    cnncompile.manual_seed(0)
    model = expression_model(nn, exported).eval()
    twin = torch_twin(model, expression_model(torch.nn, exported))
    proto = export(twin, (1, 3, 5, 6), opset)
    types = {n.op_type for n in proto.graph.node}
    assert {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "Abs", "Sqrt", "Log", "Exp",
            "Reciprocal", "Pow", "Softplus"} <= types, types
    compiled = cnncompile.from_onnx(proto, werror=True)
    for batch in (1, 3):
        x = random_input((batch, 3, 5, 6), seed=batch)
        assert_close(compiled(x), run_torch(twin, x), f"opset {opset} batch {batch}")


# -- ONNX: hand-built graphs against ONNX Runtime -------------------------------------------
def make_model(nodes, inits, in_shape, out_shape, opset):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def run_ort(model, x):
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


I64 = np.int64
GRAPHS = {  # name: (nodes, initializers, output shape, opset)
    "mean_axes_attribute": ([helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, -1],
                                              keepdims=0)], {}, ["N", 4], 11),
    "sum_axes_input": ([helper.make_node("ReduceSum", ["x", "a"], ["y"])],
                       {"a": np.array([2, 3], I64)}, ["N", 3, 1, 1], 13),
    "max_axes_input": ([helper.make_node("ReduceMax", ["x", "a"], ["y"], keepdims=0)],
                       {"a": np.array([-2], I64)}, ["N", 3, 5], 18),
    "min_noop": ([helper.make_node("ReduceMin", ["x", "a"], ["y"], noop_with_empty_axes=1)],
                 {"a": np.array([], I64)}, ["N", 3, 4, 5], 18),
    "mean_opset18": ([helper.make_node("ReduceMean", ["x", "a"], ["y"])],
                     {"a": np.array([1], I64)}, ["N", 1, 4, 5], 18),
    "math": ([helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Sqrt", ["a"], ["s"]),
              helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Add", ["s", "e"], ["t"]),
              helper.make_node("Log", ["t"], ["l"]), helper.make_node("Reciprocal", ["t"], ["r"]),
              helper.make_node("Pow", ["l", "p"], ["q"]), helper.make_node("Add", ["q", "r"], ["y"])],
             {"p": np.array(2, I64)}, ["N", 3, 4, 5], 13),
    "softplus_mish": ([helper.make_node("Softplus", ["x"], ["s"]),
                       helper.make_node("Mish", ["s"], ["m"]),
                       helper.make_node("Pow", ["m", "p"], ["y"])],
                      {"p": np.array([0.5], np.float32)}, ["N", 3, 4, 5], 18),
}


@pytest.mark.parametrize("name", GRAPHS)
def test_onnx_graph_matches_onnxruntime(name):
    nodes, inits, out_shape, opset = GRAPHS[name]
    model = make_model(nodes, inits, ["N", 3, 4, 5], out_shape, opset)
    compiled = cnncompile.from_onnx(model, input_shape=(1, 3, 4, 5), werror=True)
    for batch in (1, 2):
        x = random_input((batch, 3, 4, 5), seed=batch)
        assert_close(compiled(x), run_ort(model, x), f"batch {batch}")


@pytest.mark.parametrize("node,inits,error,fragment", [
    (helper.make_node("ReduceMean", ["x"], ["y"], axes=[0]), {}, cnncompile.UnsupportedError,
     "over dim 0"),
    (helper.make_node("ReduceSum", ["x"], ["y"]), {}, cnncompile.UnsupportedError,
     "without dim"),
    (helper.make_node("ReduceMax", ["x"], ["y"], axes=[1], keepdims=2), {},
     cnncompile.ModelFileError, "must be 0 or 1"),
    (helper.make_node("ReduceMin", ["x"], ["y"], axes=[7]), {}, cnncompile.ModelFileError,
     "out of range"),
    (helper.make_node("Pow", ["x", "p"], ["y"]), {"p": np.ones(5, np.float32)},
     cnncompile.UnsupportedError, "one constant number"),
])
def test_onnx_errors(node, inits, error, fragment):
    model = make_model([node], inits, ["N", 3, 4, 5], None, 13 if node.op_type == "ReduceSum"
                       else 11)
    with pytest.raises(error, match=fragment):
        cnncompile.from_onnx(model, input_shape=(1, 3, 4, 5))
