"""Conv1d, Conv2d, Conv3d: y[k] = b[k] + sum over the group's input channels c of
w[k, c] (*) x[c], with stride, zero padding (or 'same'/'valid'), dilation and groups.

One op per rank, one template for all: a 1-D conv runs as a 2-D conv of height 1, and only
the 3-D case emits the loops over depth. Padding modes other than zeros are turned into a
separate pad layer by passes/lower_padding_mode.py; the reference here handles them all.
How a convolution runs is up to its kernel (cnncompile/kernels/: conv_*.py).
"""
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ShapeError
from ..errors import layer_error
from . import Op, register
from .common import describe_source, out_size

NUMPY_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                  "circular": "wrap"}


def conv_pads(attrs):
    """Per spatial dimension (before, after). 'same' puts the odd pixel after, as torch does."""
    padding, kernel, dilation = attrs["padding"], attrs["kernel_size"], attrs["dilation"]
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "same":
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
    return [(p, p) for p in padding]


def describe_spatial(dims):
    return "x".join(str(d) for d in dims)


class ConvNd(Op):
    arity = None  # the input, and a residual when passes/fuse_residual.py gave it one
    epilogue = True
    folds_batch_norm = True
    takes_residual = True
    rank = 2

    @property
    def what(self):
        return f"Conv{self.rank}d"

    def infer_shape(self, node, ins):
        a, x, r, what = node.attrs, ins[0], self.rank, self.what
        k, c, groups = a["out_channels"], a["in_channels"], a["groups"]
        kernel, stride, dilation = a["kernel_size"], a["stride"], a["dilation"]
        if min(stride) <= 0 or min(dilation) <= 0 or min(kernel) <= 0:
            raise layer_error(node, f"{what} kernel_size {kernel}, stride {stride} and dilation "
                              f"{dilation} must be positive")
        if len(x.shape) != r + 2:
            layout = "(N, C, " + ", ".join("DHW"[3 - r:]) + ")" if r > 1 else "(N, C, L)"
            raise layer_error(node, f"{what} expects a {r + 2}-D input {layout} but receives "
                              f"{len(x.shape)}-D {describe_source(x)}", ShapeError)
        if x.shape[1] != c:
            raise layer_error(node, f"{what} expects {c} input channels but receives "
                              f"{x.shape[1]} {describe_source(x)}; use "
                              f"nn.{what}({x.shape[1]}, {k}, ...)", ShapeError)
        w = node.params["weight"]
        if w.shape != (k, c // groups) + tuple(kernel):
            raise layer_error(node, f"{what} weight has shape {w.shape}, expected "
                              f"{(k, c // groups) + tuple(kernel)}", ShapeError)
        if "bias" in node.params and node.params["bias"].shape != (k,):
            raise layer_error(node, f"{what} bias has shape {node.params['bias'].shape}, "
                              f"expected ({k},)", ShapeError)
        pads = conv_pads(a)
        size = x.shape[2:]
        spans = [d * (kk - 1) + 1 for kk, d in zip(kernel, dilation)]
        padded = [s + p0 + p1 for s, (p0, p1) in zip(size, pads)]
        if any(sp > pd for sp, pd in zip(spans, padded)):
            span = (f" (dilation {describe_spatial(dilation)}, so it spans "
                    f"{describe_spatial(spans)})" if any(d != 1 for d in dilation) else "")
            raise layer_error(node, f"{what} kernel {describe_spatial(kernel)}{span} is larger "
                              f"than its padded input {describe_spatial(padded)} "
                              f"({describe_spatial(size)} {describe_source(x, shape=False)} "
                              f"plus padding {','.join(str(p0 + p1) for p0, p1 in pads)}); use a "
                              "smaller kernel, more padding, or a larger input_shape", ShapeError)
        mode = a.get("padding_mode", "zeros")
        for s, (p0, p1) in zip(size, pads):
            if mode == "reflect" and max(p0, p1) >= s:
                raise layer_error(node, f"{what} padding_mode='reflect' needs padding "
                                  f"{max(p0, p1)} smaller than the input size {s}", ShapeError)
            if mode == "circular" and max(p0, p1) > s:
                raise layer_error(node, f"{what} padding_mode='circular' needs padding "
                                  f"{max(p0, p1)} at most the input size {s}", ShapeError)
        out = [out_size(s, p0 + p1, sp, st) for s, (p0, p1), sp, st in
               zip(size, pads, spans, stride)]
        return (x.shape[0], k) + tuple(out)

    def reference(self, node, arrays):
        a, r = node.attrs, self.rank
        x = arrays[0].astype(np.float64)
        w = node.params["weight"].astype(np.float64)
        kernel, stride, dilation, g = a["kernel_size"], a["stride"], a["dilation"], a["groups"]
        n, c = x.shape[:2]
        xp = np.pad(x, [(0, 0), (0, 0)] + conv_pads(a),
                    mode=NUMPY_PAD_MODE[a.get("padding_mode", "zeros")])
        spatial = tuple(range(2, 2 + r))
        win = sliding_window_view(xp, [d * (k - 1) + 1 for k, d in zip(kernel, dilation)],
                                  axis=spatial)
        win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)
                  + tuple(slice(None, None, d) for d in dilation)]
        out = win.shape[2:2 + r]
        win = win.reshape((n, g, c // g) + out + tuple(kernel))
        wg = w.reshape((g, w.shape[0] // g, c // g) + tuple(kernel))
        o, kk = "dhw"[3 - r:], "pqr"[3 - r:]  # output and kernel positions
        y = np.einsum(f"NGC{o}{kk},GKC{kk}->NGK{o}", win, wg, optimize=True)
        y = y.reshape((n, -1) + out)
        if "bias" in node.params:
            y += node.params["bias"].astype(np.float64).reshape((1, -1) + (1,) * r)
        return y.astype(np.float32)

    def flops(self, node, ins, out_shape):
        a = node.attrs
        return 2 * math.prod(out_shape[1:]) * (a["in_channels"] // a["groups"]) * math.prod(
            a["kernel_size"])


for _rank in (1, 2, 3):
    register(type(f"Conv{_rank}d", (ConvNd,), dict(name=f"conv{_rank}d", rank=_rank)))
