"""ONNX layers -> cnncompile.nn calls: convolutions, global pooling, BatchNormalization (the
other pools are in onnx_pool.py). Where ONNX pads asymmetrically and the cnncompile layer pads
symmetrically, an explicit pad layer goes first (https://onnx.ai/onnx/operators/)."""
import math

from ..nn import functional as F
from .onnx_node import converter


# -- padding -------------------------------------------------------------------------------
def spatial_pads(node, in_sizes, kernel, strides, dilations):
    """(begins, ends) per spatial dimension, from ``pads`` or ``auto_pad``."""
    rank = len(kernel)
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = node.ints("pads", 2 * rank, [0] * 2 * rank, nonnegative=True)
        return pads[:rank], pads[rank:]
    if auto == "VALID":
        return [0] * rank, [0] * rank
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise node.bad(f"auto_pad {auto!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    begins, ends = [], []
    for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begins.append(small if auto == "SAME_UPPER" else big)
        ends.append(big if auto == "SAME_UPPER" else small)
    return begins, ends


def torch_pads(begins, ends):
    """(begin, end) pairs from the last dimension backwards, as F.pad takes them."""
    out = []
    for b, e in reversed(list(zip(begins, ends))):
        out += [b, e]
    return out


def _window(node, x, weight_kernel=None):
    """kernel, strides, dilations of a conv or pool node, checked against its input."""
    rank = x.dim() - 2
    if rank < 1:
        raise node.unsupported(f"input of rank {x.dim()}; expected (N, C, spatial...)")
    kernel = node.ints("kernel_shape", rank, weight_kernel, positive=True)
    if kernel is None:
        raise node.bad("attribute kernel_shape is missing")
    if weight_kernel is not None and list(kernel) != list(weight_kernel):
        raise node.bad(f"kernel_shape {kernel} disagrees with the weight's spatial shape "
                       f"{list(weight_kernel)}")
    strides = node.ints("strides", rank, [1] * rank, positive=True)
    dilations = node.ints("dilations", rank, [1] * rank, positive=True)
    return kernel, strides, dilations


# -- layers ---------------------------------------------------------------------------------
@converter("Conv")
def conv(node, x, w, b=None):
    x = node.tensor(x)
    w = node.floats(w, "the weight W")
    if w.ndim < 3 or w.ndim > 5:
        raise node.unsupported(f"weight of rank {w.ndim}; cnncompile has 1-D, 2-D and 3-D "
                               "convolutions")
    if x.dim() != w.ndim:
        raise node.bad(f"input of rank {x.dim()} and weight of rank {w.ndim} disagree")
    kernel, strides, dilations = _window(node, x, list(w.shape[2:]))
    group = node.integer("group", 1)
    channels = x.shape[1]
    if group <= 0 or channels % group or w.shape[0] % group:
        raise node.bad(f"group {group} must be positive and divide the {channels} input and "
                       f"{w.shape[0]} output channels")
    if channels != w.shape[1] * group:
        raise node.bad(f"the input has {channels} channels but the weight {list(w.shape)} with "
                       f"group {group} expects {w.shape[1] * group}")
    if b is not None:
        b = node.floats(b, "the bias B")
        if b.shape != (w.shape[0],):
            raise node.bad(f"bias of shape {list(b.shape)}; expected [{w.shape[0]}]")
    begins, ends = spatial_pads(node, x.shape[2:], kernel, strides, dilations)
    if begins != ends:
        x, begins = F.pad(x, torch_pads(begins, ends)), [0] * len(begins)
    fn = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[w.ndim]
    return fn(x, w, b, stride=strides, padding=begins, dilation=dilations, groups=group)


@converter("ConvTranspose")
def conv_transpose(node, x, w, b=None):
    x = node.tensor(x)
    w = node.floats(w, "the weight W")
    if w.ndim not in (3, 4) or x.dim() != w.ndim:
        raise node.unsupported("only 1-D and 2-D transposed convolutions are supported")
    rank = w.ndim - 2
    kernel, strides, dilations = _window(node, x, list(w.shape[2:]))
    group = node.integer("group", 1)
    if group <= 0 or x.shape[1] % group or x.shape[1] != w.shape[0]:
        raise node.bad(f"group {group} and weight {list(w.shape)} do not fit {x.shape[1]} input "
                       "channels")
    out_pad = node.ints("output_padding", rank, [0] * rank, nonnegative=True)
    output_shape = node.ints("output_shape", rank, None, positive=True)
    auto = node.attrs.get("auto_pad", "NOTSET")
    if output_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        # ONNX: total_padding = stride * (in - 1) + output_padding + ((k - 1) * d + 1) - out,
        # split evenly, the odd one at the end (SAME_UPPER, and output_shape) or the start
        begins, ends = [], []
        for i in range(rank):
            full = (strides[i] * (x.shape[2 + i] - 1) + out_pad[i]
                    + (kernel[i] - 1) * dilations[i] + 1)
            target = output_shape[i] if output_shape is not None else x.shape[2 + i] * strides[i]
            total = full - target
            if total < 0:  # the output grows at the end: torch's output_padding
                out_pad[i], total = out_pad[i] - total, 0
            small, big = total // 2, total - total // 2
            begins.append(big if auto == "SAME_LOWER" else small)
            ends.append(small if auto == "SAME_LOWER" else big)
    else:
        begins, ends = spatial_pads(node, x.shape[2:], kernel, strides, dilations)
    if begins != ends:
        raise node.unsupported(f"asymmetric pads {begins + ends}; cnncompile's transposed "
                               "convolution crops the same amount on both sides")
    if b is not None:
        b = node.floats(b, "the bias B")
    if rank == 1:  # (N, C, L) as (N, C, 1, L)
        y = F.conv_transpose2d(x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]),
                               w[:, :, None, :], b, stride=[1] + strides, padding=[0] + begins,
                               output_padding=[0] + out_pad, groups=group,
                               dilation=[1] + dilations)
        return y.reshape(y.shape[0], y.shape[1], y.shape[3])
    return F.conv_transpose2d(x, w, b, stride=strides, padding=begins, output_padding=out_pad,
                              groups=group, dilation=dilations)


@converter("GlobalAveragePool", "GlobalMaxPool")
def global_pool(node, x):
    x = node.tensor(x)
    if x.dim() < 3:
        raise node.bad(f"input of rank {x.dim()}; expected (N, C, spatial...)")
    n, c = x.shape[0], x.shape[1]
    flat = x if x.dim() == 4 else x.reshape(n, c, 1, math.prod(x.shape[2:]))
    fn = F.adaptive_avg_pool2d if node.op == "GlobalAveragePool" else F.adaptive_max_pool2d
    y = fn(flat, 1)
    return y if x.dim() == 4 else y.reshape((n, c) + (1,) * (x.dim() - 2))


@converter("BatchNormalization")
def batch_norm(node, x, scale, bias, mean, var):
    x = node.tensor(x)
    if node.integer("training_mode", 0) or any(node.proto.output[1:]):
        raise node.unsupported("training mode (batch statistics, running-statistic outputs); "
                               "export the model in eval mode")
    params = [node.floats(v, what) for v, what in
              ((scale, "scale"), (bias, "B"), (mean, "mean"), (var, "var"))]
    c = x.shape[1] if x.dim() > 1 else 0
    if any(p.shape != (c,) for p in params):
        raise node.bad(f"scale, B, mean and var must each have {c} values (the channels), got "
                       f"{[list(p.shape) for p in params]}")
    flat = x if x.dim() == 4 else x.reshape(x.shape[0], c, 1, -1)
    y = F.batch_norm(flat, params[2], params[3], params[0], params[1],
                     eps=node.number("epsilon", 1e-5))
    return y if x.dim() == 4 else y.reshape(*x.shape)
