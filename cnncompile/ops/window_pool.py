"""Pools whose windows are given by per-dimension tables: AvgPool2d, AdaptiveAvgPool2d,
AdaptiveMaxPool2d. Python computes, for every output row and column, where its window starts
and ends and what it divides by; the C reads those tables.

AvgPool2d follows ATen's kernel (aten/src/ATen/native/cpu/AvgPoolKernel.cpp): the window is
clipped to the padded input for the count_include_pad divisor and to the input for the sum
and the other divisor. Adaptive windows are [floor(i*in/out), ceil((i+1)*in/out)).
"""
import numpy as np

from ..errors import ShapeError, UnsupportedError, layer_error
from ..layout import BLOCK, blocks, floats
from . import Op, register
from .common import describe_source, parallel_worth_it
from .max_pool2d import pool_out_size


def avg_tables(size, k, s, p, ceil_mode, count_include_pad):
    """(start, end, divisor count) per output index of one dimension of AvgPool2d."""
    out = pool_out_size(size, k, s, p, 1, ceil_mode)
    starts, ends, counts = [], [], []
    for o in range(out):
        lo = o * s - p
        hi = min(lo + k, size + p)
        padded = hi - lo
        lo, hi = max(lo, 0), min(hi, size)
        starts.append(lo)
        ends.append(hi)
        counts.append(padded if count_include_pad else max(hi - lo, 0))
    return starts, ends, counts


def adaptive_tables(size, out):
    starts = [(o * size) // out for o in range(out)]
    ends = [-(-((o + 1) * size) // out) for o in range(out)]
    return starts, ends, [e - b for b, e in zip(starts, ends)]


POOL_PARTS = 8  # pixel parts of a large global pool on blocks (WindowPool.parts) ...
POOL_PARTS_MIN_FLOATS = 1 << 16  # ... from inputs of this many floats (256 KiB)
# A global pool that computes its 1x1 producer's output (passes/pipeline_pointwise.py) takes
# its pixels in POOL_PARTS parts too, whatever their size, each part in runs of this many
POOL_RUN = 24  # a whole number of 6-, 8- and (twice) 4-pixel tiles


def pipelined_runs(shape):
    """A pipelined global pool on an input of ``shape``: its parts (which the threads share,
    their sums added in a fixed order whatever the thread count), their runs of pixels, and
    its scratch, each part's sums of every block (`part` floats a part)."""
    plane = int(np.prod(shape[2:]))
    part = blocks(shape[1]) * BLOCK
    parts = min(POOL_PARTS, plane)
    return dict(parts=parts, pixels=min(POOL_RUN, plane), part=part, floats=parts * part)


class WindowPool(Op):
    template = "window_pool.c.j2"
    reads_blocks_template = "global_pool_blocks.c.j2"
    # ... computing its input, a 1x1 convolution's output, as it goes
    pipelined_template = "global_pool_pointwise_blocks.c.j2"
    epilogue = True
    mode = "avg"

    def check_input(self, node, x, what):
        if len(x.shape) != 4:
            raise layer_error(node, f"{what} expects a 4-D input (N, C, H, W) but receives "
                              f"{len(x.shape)}-D {describe_source(x)}", ShapeError)

    def tables(self, node, in_shape):
        raise NotImplementedError

    def infer_shape(self, node, ins):
        x = ins[0]
        tables = self.tables(node, x.shape)
        return (x.shape[0], x.shape[1], len(tables[0][0]), len(tables[1][0]))

    def divisor(self, node):
        return None  # None: the product of the per-dimension counts

    def reference(self, node, arrays):
        x = arrays[0].astype(np.float64)
        (hs, he, hc), (ws, we, wc) = self.tables(node, x.shape)
        out = np.empty(x.shape[:2] + (len(hs), len(ws)))
        div = self.divisor(node)
        for i, (h0, h1, ch) in enumerate(zip(hs, he, hc)):
            for j, (w0, w1, cw) in enumerate(zip(ws, we, wc)):
                win = x[:, :, h0:h1, w0:w1]
                if self.mode == "max":
                    out[:, :, i, j] = win.max(axis=(2, 3))
                elif win.size == 0:
                    out[:, :, i, j] = 0.0
                else:
                    out[:, :, i, j] = win.sum(axis=(2, 3)) / (div if div else ch * cw)
        return out.astype(np.float32)

    def flops(self, node, ins, out_shape):
        (hs, he, _), (ws, we, _) = self.tables(node, ins[0].shape)
        taps = sum(e - b for b, e in zip(hs, he)) * sum(e - b for b, e in zip(ws, we))
        return out_shape[1] * taps

    def reads_blocks(self, node, ins):
        """Global average pooling without a fused activation: sums of 16-channel vectors."""
        (hs, he, _), (ws, we, _) = self.tables(node, ins[0].shape)
        _, _, h, w = ins[0].shape
        return (self.mode == "avg" and "activation" not in node.meta
                and (list(hs), list(he), list(ws), list(we)) == ([0], [h], [0], [w]))

    def parts(self, node, ins):
        """Global pooling on blocks: the parts of the pixels its threads share. Large inputs
        are summed in POOL_PARTS parts, as the layer before them, parallel over its pixel
        tiles, left them in each core's cache."""
        large = floats(ins[0].shape) >= POOL_PARTS_MIN_FLOATS
        return POOL_PARTS if node.meta.get("reads") == "blocks" and large else 1

    def scratch(self, node, ins, out_shape):
        if "pipelined_from" in node.meta:
            return pipelined_runs(ins[0].shape)["floats"]
        parts = self.parts(node, ins)
        return parts * blocks(ins[0].shape[1]) * BLOCK if parts > 1 else 0

    def lower(self, node, ins, out_shape):
        _, c, h, w = ins[0].shape
        (hs, he, hc), (ws, we, wc) = self.tables(node, ins[0].shape)
        div = self.divisor(node)
        if node.meta.get("reads") == "blocks":
            return dict(channels=c, plane=h * w, blocks=blocks(c),
                        divisor=f"{float(div or h * w)!r}f", parts=self.parts(node, ins),
                        part_floats=blocks(c) * BLOCK,
                        runs=pipelined_runs(ins[0].shape) if "pipelined_from" in node.meta
                        else None,
                        parallel=int(parallel_worth_it(node)))
        return dict(channels=c, in_w=w, in_plane=h * w, out_h=len(hs), out_w=len(ws),
                    out_plane=len(hs) * len(ws), h_start=hs, h_end=he, w_start=ws, w_end=we,
                    h_count=[f"{n}.0f" for n in hc], w_count=[f"{n}.0f" for n in wc],
                    mode=self.mode,
                    divisor=None if div is None else f"{float(div)!r}f",
                    # one window across whole rows (global average pooling): one contiguous
                    # sum, vectorised, instead of a short sum per row
                    full_rows=self.mode == "avg" and list(ws) == [0] and list(we) == [w])


@register
class AvgPool2d(WindowPool):
    name = "avg_pool2d"

    def tables(self, node, in_shape):
        a = node.attrs
        result = []
        for size, k, s, p in zip(in_shape[2:], a["kernel_size"], a["stride"], a["padding"]):
            if k <= 0 or s <= 0 or p < 0:
                raise layer_error(node, f"AvgPool2d kernel_size {a['kernel_size']} and stride "
                                  f"{a['stride']} must be positive, padding {a['padding']} not "
                                  "negative")
            if p > k // 2:
                raise layer_error(node, f"AvgPool2d padding {p} is more than half the kernel "
                                  f"size {k}; use padding <= {k // 2}")
            if pool_out_size(size, k, s, p, 1, a["ceil_mode"]) < 1:
                raise layer_error(node, f"AvgPool2d window {a['kernel_size'][0]}x"
                                  f"{a['kernel_size'][1]} does not fit its input "
                                  f"{in_shape[2]}x{in_shape[3]}; use a smaller kernel or a "
                                  "larger input_shape", ShapeError)
            result.append(avg_tables(size, k, s, p, a["ceil_mode"], a["count_include_pad"]))
        return result

    def infer_shape(self, node, ins):
        self.check_input(node, ins[0], "AvgPool2d")
        d = node.attrs["divisor_override"]
        if d is not None and d == 0:
            raise layer_error(node, "AvgPool2d divisor_override must not be zero")
        return super().infer_shape(node, ins)

    def divisor(self, node):
        return node.attrs["divisor_override"]


class _Adaptive(WindowPool):
    what = ""

    def tables(self, node, in_shape):
        out = node.attrs["output_size"]
        sizes = [in_shape[2 + i] if o is None else o for i, o in enumerate(out)]
        if any(o <= 0 for o in sizes):
            raise layer_error(node, f"{self.what} output_size {out} must be positive", ShapeError)
        return [adaptive_tables(size, o) for size, o in zip(in_shape[2:], sizes)]

    def check_attrs(self, node):
        if node.attrs.get("return_indices"):
            raise layer_error(node, f"{self.what}(return_indices=True) is not supported: the "
                              "compiled model returns values only; use return_indices=False",
                              UnsupportedError)

    def infer_shape(self, node, ins):
        self.check_input(node, ins[0], self.what)
        self.check_attrs(node)
        return super().infer_shape(node, ins)


@register
class AdaptiveAvgPool2d(_Adaptive):
    name = "adaptive_avg_pool2d"
    what = "AdaptiveAvgPool2d"


@register
class AdaptiveMaxPool2d(_Adaptive):
    name = "adaptive_max_pool2d"
    what = "AdaptiveMaxPool2d"
    mode = "max"
