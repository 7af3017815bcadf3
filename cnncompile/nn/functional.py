"""torch.nn.functional's forms of the supported layers.

Called on a traced value (inside cnncompile.compile) they record a graph node; called on
numpy arrays they run the numpy reference, so a model can also be run eagerly.
"""
import numpy as np

from .. import trace
from .module import weight_array
from .functional_norm import *  # noqa: F401,F403  (layer_norm, group_norm, instance_norm)


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


_weight = weight_array


def _ntuple(value, rank):
    return (value,) * rank if isinstance(value, int) else tuple(value)


def convolution(input, weight, bias, stride, padding, dilation, groups, padding_mode="zeros",
                rank=2):
    w = _weight(weight, "weight", f"conv{rank}d")
    if w.ndim != rank + 2:
        raise ValueError(f"conv{rank}d: weight must be {rank + 2}-D (out_channels, "
                         f"in_channels/groups, *kernel_size), got shape {w.shape}")
    attrs = {
        "in_channels": int(w.shape[1] * groups), "out_channels": int(w.shape[0]),
        "kernel_size": tuple(int(k) for k in w.shape[2:]), "stride": _ntuple(stride, rank),
        "padding": padding if isinstance(padding, str) else _ntuple(padding, rank),
        "dilation": _ntuple(dilation, rank), "groups": int(groups), "padding_mode": padding_mode,
    }
    params = {"weight": w}
    if bias is not None:
        params["bias"] = _weight(bias, "bias", f"conv{rank}d")
    return trace.apply(f"conv{rank}d", [input], attrs, params)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return convolution(input, weight, bias, stride, padding, dilation, groups, rank=1)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return convolution(input, weight, bias, stride, padding, dilation, groups, rank=2)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return convolution(input, weight, bias, stride, padding, dilation, groups, rank=3)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    w = _weight(weight, "weight", "conv_transpose2d")
    if w.ndim != 4:
        raise ValueError(f"conv_transpose2d: weight must be 4-D (in_channels, "
                         f"out_channels/groups, kH, kW), got shape {w.shape}")
    attrs = {"in_channels": int(w.shape[0]), "out_channels": int(w.shape[1] * groups),
             "kernel_size": tuple(int(k) for k in w.shape[2:]), "stride": _pair(stride),
             "padding": _pair(padding), "output_padding": _pair(output_padding),
             "groups": int(groups), "dilation": _pair(dilation)}
    params = {"weight": w}
    if bias is not None:
        params["bias"] = _weight(bias, "bias", "conv_transpose2d")
    return trace.apply("conv_transpose2d", [input], attrs, params)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    return trace.apply("unfold", [input], {"kernel_size": _pair(kernel_size),
                                           "dilation": _pair(dilation), "padding": _pair(padding),
                                           "stride": _pair(stride)})


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    return trace.apply("fold", [input], {"output_size": _pair(output_size),
                                         "kernel_size": _pair(kernel_size),
                                         "dilation": _pair(dilation), "padding": _pair(padding),
                                         "stride": _pair(stride)})


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel_size
    attrs = {"kernel_size": _pair(kernel_size), "stride": _pair(stride),
             "padding": _pair(padding), "dilation": _pair(dilation),
             "ceil_mode": bool(ceil_mode), "return_indices": bool(return_indices)}
    return trace.apply("max_pool2d", [input], attrs)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel_size
    attrs = {"kernel_size": _pair(kernel_size), "stride": _pair(stride),
             "padding": _pair(padding), "ceil_mode": bool(ceil_mode),
             "count_include_pad": bool(count_include_pad),
             "divisor_override": None if divisor_override is None else int(divisor_override)}
    return trace.apply("avg_pool2d", [input], attrs)


def _output_size(size):
    if size is None or isinstance(size, int):
        return (size, size)
    return tuple(None if s is None else int(s) for s in size)


def adaptive_avg_pool2d(input, output_size):
    return trace.apply("adaptive_avg_pool2d", [input], {"output_size": _output_size(output_size)})


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return trace.apply("adaptive_max_pool2d", [input], {"output_size": _output_size(output_size),
                                                        "return_indices": bool(return_indices)})


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05):
    if training or running_mean is None or running_var is None:
        return trace.apply("unsupported", [input], {
            "what": "batch_norm with batch statistics (training=True, or no running stats)",
            "hint": "compile with running statistics: track_running_stats=True, "
                    "training=False"})
    params = {"running_mean": _weight(running_mean, "running_mean", "batch_norm"),
              "running_var": _weight(running_var, "running_var", "batch_norm")}
    if weight is not None:
        params["weight"] = _weight(weight, "weight", "batch_norm")
    if bias is not None:
        params["bias"] = _weight(bias, "bias", "batch_norm")
    attrs = {"num_features": int(params["running_mean"].shape[0]), "eps": float(eps)}
    return trace.apply("batch_norm", [input], attrs, params)


def identity(input, kind="Identity"):
    return trace.apply("identity", [input], {"kind": kind})


def dropout(input, p=0.5, training=True, inplace=False):
    """The identity: cnncompile compiles inference."""
    return identity(input, "dropout")


dropout1d = dropout2d = dropout3d = alpha_dropout = dropout


def pad(input, pad, mode="constant", value=None):
    """torch.nn.functional.pad: ``pad`` lists (before, after) pairs from the last dimension
    backwards."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"pad: padding length must be even, got {len(pad)}")
    ndim = input.dim() if isinstance(input, trace.Tensor) else np.ndim(input)
    if len(pad) // 2 > ndim - 1:
        raise ValueError(f"pad: {len(pad) // 2} padded dimensions for a {ndim}-D input; the "
                         "batch dimension cannot be padded")
    pairs = [(0, 0)] * (ndim - 1 - len(pad) // 2)
    pairs += [(pad[i], pad[i + 1]) for i in range(len(pad) - 2, -1, -2)]
    return trace.apply("pad", [input], {"pads": tuple(pairs), "mode": mode,
                                        "value": 0.0 if value is None else float(value)})


def relu(input, inplace=False):
    return trace.apply("relu", [input], {})


def relu6(input, inplace=False):
    return trace.apply("relu6", [input], {})


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return trace.apply("leaky_relu", [input], {"negative_slope": float(negative_slope)})


def elu(input, alpha=1.0, inplace=False):
    return trace.apply("elu", [input], {"alpha": float(alpha)})


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    return trace.apply("hardtanh", [input], {"min_val": float(min_val), "max_val": float(max_val)})


def sigmoid(input):
    return trace.apply("sigmoid", [input], {})


def tanh(input):
    return trace.apply("tanh", [input], {})


def hardswish(input, inplace=False):
    return trace.apply("hardswish", [input], {})


def hardsigmoid(input, inplace=False):
    return trace.apply("hardsigmoid", [input], {})


def silu(input, inplace=False):
    return trace.apply("silu", [input], {})


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return trace.apply("gelu" if approximate == "none" else "gelu_tanh", [input], {})


def _softmax_dim(input, dim):
    if dim is not None:
        return int(dim)
    ndim = input.dim() if isinstance(input, trace.Tensor) else np.ndim(input)
    return 0 if ndim in (0, 1, 3) else 1  # torch's implicit choice (_get_softmax_dim)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    return trace.apply("softmax", [input], {"dim": _softmax_dim(input, dim)})


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    return trace.apply("log_softmax", [input], {"dim": _softmax_dim(input, dim)})


def cat(tensors, dim=0):
    """torch.cat: join tensors along ``dim`` (for a CNN, dim=1 joins channels)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat() needs at least one tensor")
    return trace.apply("cat", tensors, {"dim": int(dim)})


def linear(input, weight, bias=None):
    w = _weight(weight, "weight", "linear")
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got {w.shape}")
    ndim = input.dim() if isinstance(input, trace.Tensor) else np.ndim(input)
    if 2 < ndim <= 5 and input.shape[-1] == w.shape[1]:  # else the op says to flatten first
        return _linear_over_last_dim(input, w, _weight(bias, "bias", "linear"), ndim)
    attrs = {"in_features": int(w.shape[1]), "out_features": int(w.shape[0])}
    params = {"weight": w}
    if bias is not None:
        params["bias"] = _weight(bias, "bias", "linear")
    return trace.apply("linear", [input], attrs, params)


def _linear_over_last_dim(input, w, b, ndim):
    """A Linear over the last dimension of a (N, ..., C) value (channels-last pixels, as
    ConvNeXt writes its MLP): a 1x1 convolution between two permutes, so that it runs on the
    convolution kernels."""
    if not isinstance(input, trace.Tensor):
        y = np.asarray(input, np.float64) @ w.astype(np.float64).T
        return (y + (0 if b is None else b)).astype(np.float32)
    to_channels = (0, ndim - 1) + tuple(range(1, ndim - 1))
    back = (0,) + tuple(range(2, ndim)) + (1,)
    weight = w.reshape(w.shape + (1,) * (ndim - 2))
    y = convolution(permute(input, to_channels), weight, b, 1, 0, 1, 1, rank=ndim - 2)
    return permute(y, back)


def matmul(input, other):
    """torch.matmul of two computed values (per sample, batch dimensions broadcast), or of a
    value and a 2-D weight (a Linear without bias)."""
    if isinstance(input, trace.Tensor) and isinstance(other, trace.Tensor):
        return trace.apply("matmul", [input, other], {})
    if isinstance(input, trace.Tensor):
        w = _weight(other, "weight", "matmul")
        if w.ndim != 2:
            return trace.record_unsupported(f"matmul by a {w.ndim}-D constant", [input],
                                            hint="a weight operand must be a 2-D matrix")
        return linear(input, np.ascontiguousarray(w.T))
    if isinstance(other, trace.Tensor):
        return trace.record_unsupported("matmul of a constant by a computed value", [other],
                                        hint="write it as (b.transpose(-1, -2) @ "
                                             "a.transpose(-1, -2)).transpose(-1, -2)")
    return trace.apply("matmul", [input, other], {})


def flatten(input, start_dim=0, end_dim=-1):
    if isinstance(input, trace.Tensor):
        return input.flatten(start_dim, end_dim)
    x = np.asarray(input)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])


from .functional_reduce import *  # noqa: E402,F401,F403  (mean, sum, amax, amin)
from .functional_unary import *  # noqa: E402,F401,F403  (abs, exp, pow, clamp, softplus, ...)
from .functional_resize import *  # noqa: E402,F401,F403  (interpolate, upsample, ...)
from .functional_pool3d import *  # noqa: E402,F401,F403  (max_pool3d, avg_pool1d, ...)

# x.relu(), x.sigmoid(), x.tanh() and x.softmax(dim) on a traced tensor call these functions
trace.register_tensor_methods(relu=relu, sigmoid=sigmoid, tanh=tanh, softmax=softmax,
                              matmul=matmul)

from .functional_movement import *  # noqa: E402,F401,F403  (permute, slices, shuffles)


def __getattr__(name):
    from ..support import TORCH_FUNCTIONS
    from .unsupported import function
    if name in TORCH_FUNCTIONS:
        return function(name)
    raise AttributeError(f"module 'cnncompile.nn.functional' has no attribute '{name}'")
