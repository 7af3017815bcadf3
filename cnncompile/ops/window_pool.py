"""Pools whose windows are given by per-dimension tables: AvgPool2d, AdaptiveAvgPool2d,
AdaptiveMaxPool2d, and the 1-D and 3-D pools (ops/pool3d.py). Python computes, for every output
index of each spatial dimension, where its window starts and ends and what it divides by; the
C reads those tables. A window is the product of its dimensions' ranges, so any rank works.

AvgPool2d follows ATen's kernel (aten/src/ATen/native/cpu/AvgPoolKernel.cpp): the window is
clipped to the padded input for the count_include_pad divisor and to the input for the sum
and the other divisor. Adaptive windows are [floor(i*in/out), ceil((i+1)*in/out)).
"""
import math

import numpy as np

from ..errors import ShapeError, layer_error
from ..layout import BLOCK, blocks, floats
from . import Op, register
from .common import describe_source, parallel_worth_it
from .max_pool2d import POOL_SLOWDOWN, indices_unsupported, pool_out_size

# window rows of at least this many taps are summed as vectors
SIMD_MIN_WINDOW = 8


def window_tables(size, k, s, p, d, ceil_mode, count_include_pad=True):
    """(start, end, divisor count) per output index of one dimension of a pool whose window
    has k taps d apart: start and end bound its taps inside the input (every d-th index), the
    count is its taps inside the padded input, or (count_include_pad=False) inside the input."""
    out = pool_out_size(size, k, s, p, d, ceil_mode)
    starts, ends, counts = [], [], []
    for o in range(out):
        lo = o * s - p
        first, last = max(0, -(lo // d)), min(k - 1, (size - 1 - lo) // d)
        if first <= last:
            starts.append(lo + first * d)
            ends.append(lo + last * d + 1)
        else:  # every tap in the padding
            starts.append(max(lo, 0))
            ends.append(max(lo, 0))
        padded = min(k, (size + p - 1 - lo) // d + 1)
        counts.append(padded if count_include_pad else max(last - first + 1, 0))
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


LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


class WindowPool(Op):
    template = "window_pool.c.j2"
    reads_blocks_template = "global_pool_blocks.c.j2"
    # ... computing its input, a 1x1 convolution's output, as it goes
    pipelined_template = "global_pool_pointwise_blocks.c.j2"
    epilogue = True
    mode = "avg"
    rank = 2  # spatial dimensions
    what = ""

    def check_input(self, node, x, what):
        if len(x.shape) != self.rank + 2:
            raise layer_error(node, f"{what} expects a {self.rank + 2}-D input "
                              f"{LAYOUTS[self.rank]} but receives {len(x.shape)}-D "
                              f"{describe_source(x)}", ShapeError)

    def check_attrs(self, node):
        if node.attrs.get("return_indices"):
            raise indices_unsupported(node, self.what)

    def tables(self, node, in_shape):
        raise NotImplementedError

    def steps(self, node):
        """The distance between a window's taps in each dimension (its dilation)."""
        return node.attrs.get("dilation", (1,) * self.rank)

    def infer_shape(self, node, ins):
        x = ins[0]
        tables = self.tables(node, x.shape)
        return tuple(x.shape[:2]) + tuple(len(t[0]) for t in tables)

    def divisor(self, node):
        return None  # None: the product of the per-dimension counts

    def reference(self, node, arrays):
        x = arrays[0].astype(np.float64)
        tables, steps = self.tables(node, x.shape), self.steps(node)
        out = np.empty(x.shape[:2] + tuple(len(t[0]) for t in tables))
        div = self.divisor(node)
        axes = tuple(range(2, 2 + self.rank))
        for index in np.ndindex(*out.shape[2:]):
            window = tuple(slice(t[0][i], t[1][i], step)
                           for t, i, step in zip(tables, index, steps))
            win = x[(slice(None), slice(None)) + window]
            at = (slice(None), slice(None)) + index
            if math.prod(win.shape[2:]) == 0:
                out[at] = -np.inf if self.mode == "max" else 0.0
            elif self.mode == "max":
                out[at] = win.max(axis=axes)
            else:
                count = math.prod(t[2][i] for t, i in zip(tables, index))
                out[at] = win.sum(axis=axes) / (div if div else count)
        return out.astype(np.float32)

    def flops(self, node, ins, out_shape):
        taps = math.prod(sum(len(range(b, e, step)) for b, e in zip(t[0], t[1]))
                         for t, step in zip(self.tables(node, ins[0].shape), self.steps(node)))
        return out_shape[1] * taps

    def reads_blocks(self, node, ins):
        """Global average pooling without a fused activation: sums of 16-channel vectors."""
        if self.rank != 2:
            return False
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
        if self.rank != 2:
            return self.lower_3d(node, ins, out_shape)
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
                    full_rows=self.mode == "avg" and list(ws) == [0] and list(we) == [w],
                    # a vectorised sum pays only on wide windows; on 2 or 3 taps its
                    # reduction costs more than the adds
                    simd_rows=max(e - s for s, e in zip(ws, we)) >= SIMD_MIN_WINDOW,
                    uniform=_uniform(hs, he, ws, we),
                    parallel=int(parallel_worth_it(node, POOL_SLOWDOWN)))

    def lower_3d(self, node, ins, out_shape):
        """window_pool_3d.c.j2's constants: 1-D and 2-D pools run as 3-D ones whose first
        dimensions have size 1."""
        lift = 3 - self.rank
        in_dims = (1,) * lift + tuple(ins[0].shape[2:])
        tables = [([0], [1], [1])] * lift + list(self.tables(node, ins[0].shape))
        steps = (1,) * lift + tuple(self.steps(node))
        # one window, the whole input, divided by its size
        whole = all((list(t[0]), list(t[1]), list(t[2])) == ([0], [size], [size]) and step == 1
                    for t, step, size in zip(tables, steps, in_dims))
        div = self.divisor(node) or (math.prod(in_dims) if whole else None)
        dims = [dict(start=t[0], end=t[1], count=[f"{n}.0f" for n in t[2]], out=len(t[0]),
                     step=step, size=size)
                for t, step, size in zip(tables, steps, in_dims)]
        return dict(channels=ins[0].shape[1], d=dims[0], h=dims[1], w=dims[2], whole=whole,
                    in_volume=math.prod(in_dims), out_volume=math.prod(out_shape[2:]),
                    mode=self.mode, divisor=None if div is None else f"{float(div)!r}f",
                    parallel=int(parallel_worth_it(node, POOL_SLOWDOWN)))


def _uniform(hs, he, ws, we):
    """kh, kw, stride_h, stride_w when every window has the same size and windows start a
    constant stride apart from 0 (no padding clipped them), else None."""
    def regular(start, end):
        k, s = end[0] - start[0], (start[1] - start[0]) if len(start) > 1 else 1
        ok = k > 0 and s > 0 and all(b == i * s and e - b == k
                                     for i, (b, e) in enumerate(zip(start, end)))
        return (k, s) if ok else None
    h, w = regular(hs, he), regular(ws, we)
    if h is None or w is None:
        return None
    return dict(kh=h[0], kw=w[0], stride_h=h[1], stride_w=w[1])


def _describe_dims(dims):
    return "x".join(str(d) for d in dims)


class Pool(WindowPool):
    """Pools over windows of kernel_size taps, dilation apart, every stride, padded."""

    def tables(self, node, in_shape):
        a, what = node.attrs, self.what
        result = []
        for size, k, s, p, d in zip(in_shape[2:], a["kernel_size"], a["stride"], a["padding"],
                                    self.steps(node)):
            if k <= 0 or s <= 0 or p < 0 or d <= 0:
                dilation = f" and dilation {a['dilation']}" if "dilation" in a else ""
                raise layer_error(node, f"{what} kernel_size {a['kernel_size']}, stride "
                                  f"{a['stride']}{dilation} must be positive, padding "
                                  f"{a['padding']} not negative")
            if p > k // 2:
                raise layer_error(node, f"{what} padding {p} is more than half the kernel "
                                  f"size {k}; use padding <= {k // 2}")
            if pool_out_size(size, k, s, p, d, a["ceil_mode"]) < 1:
                raise layer_error(node, f"{what} window {_describe_dims(a['kernel_size'])} "
                                  f"does not fit its input {_describe_dims(in_shape[2:])}; use "
                                  "a smaller kernel or a larger input_shape", ShapeError)
            result.append(window_tables(size, k, s, p, d, a["ceil_mode"],
                                        a.get("count_include_pad", True)))
        return result

    def infer_shape(self, node, ins):
        self.check_input(node, ins[0], self.what)
        self.check_attrs(node)
        d = node.attrs.get("divisor_override")
        if d is not None and d == 0:
            raise layer_error(node, f"{self.what} divisor_override must not be zero")
        return super().infer_shape(node, ins)

    def divisor(self, node):
        return node.attrs.get("divisor_override")


@register
class AvgPool2d(Pool):
    name = "avg_pool2d"
    what = "AvgPool2d"


class Adaptive(WindowPool):
    def tables(self, node, in_shape):
        out = node.attrs["output_size"]
        sizes = [in_shape[2 + i] if o is None else o for i, o in enumerate(out)]
        if any(o <= 0 for o in sizes):
            raise layer_error(node, f"{self.what} output_size {out} must be positive", ShapeError)
        return [adaptive_tables(size, o) for size, o in zip(in_shape[2:], sizes)]

    def infer_shape(self, node, ins):
        self.check_input(node, ins[0], self.what)
        self.check_attrs(node)
        return super().infer_shape(node, ins)


@register
class AdaptiveAvgPool2d(Adaptive):
    name = "adaptive_avg_pool2d"
    what = "AdaptiveAvgPool2d"


@register
class AdaptiveMaxPool2d(Adaptive):
    name = "adaptive_max_pool2d"
    what = "AdaptiveMaxPool2d"
    mode = "max"
