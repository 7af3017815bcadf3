"""ONNX reductions (ReduceMean, ReduceSum, ReduceMax, ReduceMin) and elementwise math (Abs,
Exp, Log, Erf, Sqrt, Reciprocal, Pow by a constant, Softplus, Mish) -> cnncompile.nn.functional."""
import numpy as np

from ..nn import functional as F
from .onnx_node import converter

REDUCE = {"ReduceMean": F.mean, "ReduceSum": F.sum, "ReduceMax": F.amax, "ReduceMin": F.amin}
# the opset from which each op takes its axes as an input rather than an attribute
AXES_INPUT_FROM = {"ReduceSum": 13}


def _flag(node, key, default):
    value = node.integer(key, default)
    if value not in (0, 1):
        raise node.bad(f"attribute {key} = {value} must be 0 or 1")
    return bool(value)


@converter(*REDUCE)
def reduce(node, x, axes=None):
    x = node.tensor(x)
    if node.opset >= AXES_INPUT_FROM.get(node.op, 18):
        if axes is not None:
            axes = np.asarray(node.const(axes, "axes"))
            if not np.issubdtype(axes.dtype, np.integer):
                raise node.bad(f"axes is a tensor of {axes.dtype}; it must hold integers")
            axes = [int(a) for a in axes.reshape(-1)]
    elif axes is not None:
        raise node.bad(f"takes its axes as an attribute before opset "
                       f"{AXES_INPUT_FROM.get(node.op, 18)}, not as an input")
    else:
        axes = node.attrs.get("axes")
    keepdim = _flag(node, "keepdims", 1)
    if not axes:
        if _flag(node, "noop_with_empty_axes", 0):
            return F.identity(x)
        axes = None  # every axis, the batch included: the reduction explains what to write
    elif any(not -x.dim() <= a < x.dim() for a in axes):
        raise node.bad(f"axes {list(axes)} are out of range for a rank-{x.dim()} input")
    return REDUCE[node.op](x, None if axes is None else list(axes), keepdim)


@converter("Abs", "Exp", "Log", "Erf", "Sqrt", "Reciprocal", "Mish")
def unary(node, x):
    fn = {"Abs": F.abs, "Exp": F.exp, "Log": F.log, "Erf": F.erf, "Sqrt": F.sqrt,
          "Reciprocal": F.reciprocal, "Mish": F.mish}
    return fn[node.op](node.tensor(x))


@converter("Softplus")
def softplus(node, x):
    # ONNX's log(1 + e^x) without a threshold: above 20 it differs from x by under 2e-9 x
    return F.softplus(node.tensor(x))


@converter("Pow")
def pow_(node, x, y):
    x = node.tensor(x, "the base")
    y = np.asarray(node.const(y, "the exponent"))
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise node.bad(f"the exponent is a tensor of {y.dtype}; Pow takes numbers")
    if y.size != 1 or y.ndim > x.dim():
        raise node.unsupported(f"an exponent of shape {list(y.shape)}; cnncompile raises to "
                               "one constant number (x ** 2, x ** 0.5)")
    return F.pow(x, float(y.reshape(())))

