"""MaxPool2d: the largest value in each window; padding never wins (it is -inf), NaN wins."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ShapeError, UnsupportedError, layer_error
from ..layout import blocks
from . import Op, register
from .activations import VECTOR_ACTIVATIONS
from .common import describe_source, out_size, parallel_worth_it


# how many times longer pooling takes per FLOP (one max per tap) than the GEMM, so that its
# threshold for threads is one of time (benchmarks/RESULTS.md)
POOL_SLOWDOWN = 16
# output rows of at most this many pixels are pooled from blocks into planes: one row of
# vectors, 16 KiB, sits on the stack of each thread
BLOCKED_ROW_MAX = 256


def pool_out_size(size, k, s, p, d, ceil_mode):
    """torch's pooling_output_shape: with ceil_mode the last window must start inside the
    input or its left padding (aten/src/ATen/native/Pool.h)."""
    span = d * (k - 1) + 1
    out = out_size(size, 2 * p, span, s, ceil_mode)
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def indices_unsupported(node, what):
    """The error of a pool asked for its indices (return_indices=True), for which no C is
    generated: the compiled model computes the pooled values only."""
    return layer_error(node, f"{what}(return_indices=True) is not supported: the compiled model "
                       "returns the pooled values only; use return_indices=False and take the "
                       "values alone (x = pool(x), not x, indices = pool(x))", UnsupportedError)


@register
class MaxPool2d(Op):
    name = "max_pool2d"
    template = "max_pool2d.c.j2"
    on_blocks_template = "max_pool2d_blocks.c.j2"
    reads_blocks_template = "max_pool2d_from_blocks.c.j2"
    epilogue = True

    def runs_on_blocks(self, node, ins):
        return node.meta.get("activation", {}).get("fn") in VECTOR_ACTIVATIONS

    def reads_blocks(self, node, ins):
        """A row of output vectors at a time, on the stack, transposed into the planes."""
        return self.runs_on_blocks(node, ins) and node.meta["shape"][3] <= BLOCKED_ROW_MAX

    def check_attrs(self, node):
        if node.attrs["return_indices"]:
            raise indices_unsupported(node, "MaxPool2d")

    def infer_shape(self, node, ins):
        a, x = node.attrs, ins[0]
        self.check_attrs(node)
        if len(x.shape) != 4:
            raise layer_error(node, f"MaxPool2d expects a 4-D input (N, C, H, W) but receives "
                              f"{len(x.shape)}-D {describe_source(x)}", ShapeError)
        out = []
        for axis, (size, k, s, p, d) in enumerate(zip(x.shape[2:], a["kernel_size"], a["stride"],
                                                      a["padding"], a["dilation"])):
            if k <= 0 or s <= 0 or d <= 0 or p < 0:
                raise layer_error(node, f"MaxPool2d kernel_size {a['kernel_size']}, stride "
                                  f"{a['stride']} and dilation {a['dilation']} must be positive "
                                  f"and padding {a['padding']} not negative")
            if p > k // 2:
                raise layer_error(node, f"MaxPool2d padding {p} is more than half the kernel "
                                  f"size {k}; use padding <= {k // 2}")
            o = pool_out_size(size, k, s, p, d, a["ceil_mode"])
            if o < 1:
                hw = f"{x.shape[2]}x{x.shape[3]}"
                raise layer_error(node, f"MaxPool2d window {a['kernel_size'][0]}x"
                                  f"{a['kernel_size'][1]} does not fit its input {hw} "
                                  f"{describe_source(x, shape=False)} with padding "
                                  f"{a['padding']}; use a smaller kernel or a larger input_shape",
                                  ShapeError)
            out.append(o)
        return (x.shape[0], x.shape[1], out[0], out[1])

    def reference(self, node, arrays):
        a = node.attrs
        x = arrays[0]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (a["kernel_size"], a["stride"], a["padding"],
                                                  a["dilation"])
        oh = pool_out_size(x.shape[2], kh, sh, ph, dh, a["ceil_mode"])
        ow = pool_out_size(x.shape[3], kw, sw, pw, dw, a["ceil_mode"])
        eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        extra_h = max(ph, (oh - 1) * sh + eh - x.shape[2] - ph)
        extra_w = max(pw, (ow - 1) * sw + ew - x.shape[3] - pw)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, extra_h), (pw, extra_w)), constant_values=-np.inf)
        win = sliding_window_view(xp, (eh, ew), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
        return win[:, :, :oh, :ow].max(axis=(4, 5)).astype(np.float32)

    def flops(self, node, ins, out_shape):
        kh, kw = node.attrs["kernel_size"]
        return out_shape[1] * out_shape[2] * out_shape[3] * kh * kw

    def lower(self, node, ins, out_shape):
        a = node.attrs
        _, c, h, w = ins[0].shape
        _, _, oh, ow = out_shape
        kw, sw, pw, dw = a["kernel_size"][1], a["stride"][1], a["padding"][1], a["dilation"][1]
        # output columns whose windows lie inside the input: no clipping needed there
        first = -(-pw // sw)
        last = max(first, min(ow, (w - 1 + pw - (kw - 1) * dw) // sw + 1))
        # a window's taps, relative to its top-left corner (rows in_w apart)
        taps = [kh * a["dilation"][0] * w + k * dw for kh in range(a["kernel_size"][0])
                for k in range(kw)]
        act = VECTOR_ACTIVATIONS.get(node.meta.get("activation", {}).get("fn"))
        return dict(inner_lo=min(first, ow), inner_hi=last,
                    parallel=int(parallel_worth_it(node, POOL_SLOWDOWN)),
                    blocks=blocks(c), blocked_act=act,
                    taps=taps,
                    channels=c, in_h=h, in_w=w, in_plane=h * w, out_h=oh, out_w=ow,
                    out_plane=oh * ow, kh=a["kernel_size"][0], kw=a["kernel_size"][1],
                    stride_h=a["stride"][0], stride_w=a["stride"][1], pad_top=a["padding"][0],
                    pad_left=a["padding"][1], dil_h=a["dilation"][0], dil_w=a["dilation"][1])
