"""torch.nn.functional's forms of the supported layers.

Called on a traced value (inside cnncompile.compile) they record a graph node; called on
numpy arrays they run the numpy reference, so a model can also be run eagerly.
"""
import numpy as np

from .. import trace
from ..errors import TraceError
from .module import to_numpy


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _weight(value, what, op):
    if value is None:
        return None
    if isinstance(value, trace.Tensor):
        raise TraceError(f"{op}: the {what} is computed inside forward(); cnncompile needs "
                         f"constant weights: pass a Parameter or an array", layer=None)
    return to_numpy(value)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros"):
    w = _weight(weight, "weight", "conv2d")
    if w.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kH, kW), "
                         f"got shape {w.shape}")
    attrs = {
        "in_channels": int(w.shape[1] * groups), "out_channels": int(w.shape[0]),
        "kernel_size": tuple(int(k) for k in w.shape[2:]), "stride": _pair(stride),
        "padding": padding if isinstance(padding, str) else _pair(padding),
        "dilation": _pair(dilation), "groups": int(groups), "padding_mode": padding_mode,
    }
    params = {"weight": w}
    if bias is not None:
        params["bias"] = _weight(bias, "bias", "conv2d")
    return trace.apply("conv2d", [input], attrs, params)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel_size
    attrs = {"kernel_size": _pair(kernel_size), "stride": _pair(stride),
             "padding": _pair(padding), "dilation": _pair(dilation),
             "ceil_mode": bool(ceil_mode), "return_indices": bool(return_indices)}
    return trace.apply("max_pool2d", [input], attrs)


def relu(input, inplace=False):
    return trace.apply("relu", [input], {})


def linear(input, weight, bias=None):
    w = _weight(weight, "weight", "linear")
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got {w.shape}")
    attrs = {"in_features": int(w.shape[1]), "out_features": int(w.shape[0])}
    params = {"weight": w}
    if bias is not None:
        params["bias"] = _weight(bias, "bias", "linear")
    return trace.apply("linear", [input], attrs, params)


def flatten(input, start_dim=0, end_dim=-1):
    if isinstance(input, trace.Tensor):
        return input.flatten(start_dim, end_dim)
    x = np.asarray(input)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])
