"""ONNX MaxPool and AveragePool over 1-, 2- and 3-D maps. 1-D pools run as 2-D ones of height
1; AveragePool with dilations (opset 19) runs as a 3-D average pool, the one that takes a
dilation, with ones in front of its spatial dimensions. Where ONNX pads asymmetrically, or by
more than half the kernel, an explicit pad layer goes first."""
import math

import numpy as np

from ..nn import functional as F
from ..nn.functional_pool3d import avg_pool_nd
from .onnx_layers import _window, spatial_pads, torch_pads
from .onnx_node import converter, with_constant


def _lift(x, rank):
    """(N, C, *spatial) as (N, C, 1, ..., *spatial) with ``rank`` spatial dimensions."""
    extra = rank - (x.dim() - 2)
    return x.reshape(*x.shape[:2], *(1,) * extra, *x.shape[2:]) if extra else x


@converter("MaxPool", "AveragePool")
def pool(node, x):
    x = node.tensor(x)
    if node.op == "MaxPool" and len(node.proto.output) > 1 and node.proto.output[1]:
        raise node.unsupported("the Indices output is not supported")
    kernel, strides, dilations = _window(node, x)
    if len(kernel) > 3:
        raise node.unsupported(f"{len(kernel)}-D pooling; cnncompile pools over 1-, 2- and "
                               "3-D maps")
    begins, ends = spatial_pads(node, x.shape[2:], kernel, strides, dilations)
    ceil_mode = bool(node.integer("ceil_mode", 0))
    dilated_avg = node.op == "AveragePool" and any(d != 1 for d in dilations)
    rank = 3 if dilated_avg or len(kernel) == 3 else 2
    extra = [1] * (rank - len(kernel))
    kernel, strides, dilations = extra + kernel, extra + strides, extra + dilations
    begins, ends = [0] * len(extra) + begins, [0] * len(extra) + ends
    x2 = _lift(x, rank)
    # torch-style pooling pads both sides alike, by at most half the kernel; otherwise pad first
    pad_first = begins != ends or any(p > k // 2 for p, k in zip(begins, kernel))
    if node.op == "MaxPool":
        if pad_first:
            if ceil_mode:
                raise node.unsupported(f"pads {begins + ends} with ceil_mode")
            x2, begins = F.pad(x2, torch_pads(begins, ends), value=-math.inf), [0] * rank
        fn = F.max_pool2d if rank == 2 else F.max_pool3d
        y = fn(x2, kernel, strides, begins, dilations, ceil_mode=ceil_mode)
    else:
        y = _average(node, x2, kernel, strides, dilations, begins, ends, ceil_mode, pad_first)
    return y.reshape(*y.shape[:2], *y.shape[2 + len(extra):]) if extra else y


def _average(node, x, kernel, strides, dilations, begins, ends, ceil_mode, pad_first):
    include = bool(node.integer("count_include_pad", 0))

    def avg(x, padding, ceil_mode, include):
        if len(kernel) == 2:
            return F.avg_pool2d(x, kernel, strides, padding, ceil_mode=ceil_mode,
                                count_include_pad=include)
        return avg_pool_nd(x, kernel, strides, padding, ceil_mode, include, None, 3, dilations)

    if not pad_first:
        return avg(x, begins, ceil_mode, include)
    if ceil_mode:
        raise node.unsupported(f"pads {begins + ends} that are asymmetric or more than half "
                               "the kernel, with ceil_mode")
    y = avg(F.pad(x, torch_pads(begins, ends)), 0, False, True)
    if include:
        return y
    # rescale each window from all its taps to those on the input
    cover = _cover(node, x.shape[2:], kernel, strides, dilations, begins, ends)
    return with_constant(node, "mul", y, cover)


def _cover(node, in_sizes, kernel, strides, dilations, begins, ends):
    """(1, *out): the number of taps / the number on the input, for each window of a padded
    pool."""
    cover = np.ones(())
    for size, k, s, d, b, e in zip(in_sizes, kernel, strides, dilations, begins, ends):
        starts = np.arange((size + b + e - (k - 1) * d - 1) // s + 1) * s - b
        taps = starts[:, None] + np.arange(k)[None, :] * d
        cover = np.multiply.outer(cover, ((taps >= 0) & (taps < size)).sum(axis=1))
    if (cover <= 0).any():
        raise node.unsupported("a window lies wholly in the padding")
    return (math.prod(kernel) / cover)[None].astype(np.float32)
