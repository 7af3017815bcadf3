"""Reductions over per-sample dimensions: x.mean(dim), x.sum(dim), x.amax(dim), x.amin(dim).

attrs: ``dims``, the reduced dimensions of the whole value (the batch is dimension 0, which
no reduction may include: samples are independent), or None for every dimension (x.mean());
``keepdim`` as in torch. Max and min let NaN win, as torch's amax and amin do; a mean is the
sum divided by the count, as torch computes it.

The C walks the input in memory order with adjacent reduced (or kept) dimensions merged into
one loop, so the innermost loop is contiguous: a sum over the last dimensions (a global
average) is one vectorised sum per output, a sum over an outer dimension (channels) adds
whole rows into the output.
"""
import math

import numpy as np

from ..errors import ShapeError, UnsupportedError, layer_error
from . import Op, register
from .common import numel_per_sample


TORCH_NAMES = {"reduce_mean": "mean", "reduce_sum": "sum", "reduce_max": "amax",
               "reduce_min": "amin"}  # for messages: the Tensor method a user writes


def reduced_axes(node, shape):
    """The reduced dimensions of ``shape`` as sorted non-negative indices, or an error naming
    the layer: out of range, repeated, or including the batch."""
    what, nd = TORCH_NAMES[node.op], len(shape)
    dims = node.attrs["dims"]
    if dims is None or len(dims) == 0:
        raise layer_error(node, f"{what}() without dim reduces the whole tensor, batch "
                          "included; the compiled model treats samples independently: give the "
                          f"per-sample dims, e.g. x.{what}(dim={tuple(range(1, nd))})",
                          UnsupportedError)
    for d in dims:
        if not -nd <= d < nd:
            raise layer_error(node, f"{what}(dim={tuple(dims)}): dim {d} is out of range for "
                              f"a {nd}-D input {tuple(shape)}: use dims from {-nd} to {nd - 1}",
                              ShapeError)
    axes = sorted(d % nd for d in dims)
    if len(set(axes)) != len(axes):
        raise layer_error(node, f"{what}(dim={tuple(dims)}) names a dimension twice", ShapeError)
    if axes[0] == 0:
        rest = tuple(a for a in axes if a) or tuple(range(1, nd))
        raise layer_error(node, f"{what} over dim 0 reduces across the batch; the compiled "
                          "model treats samples independently: reduce over dims >= 1 only, "
                          f"e.g. x.{what}(dim={rest}), and combine samples outside the model",
                          UnsupportedError)
    return axes


def merged_runs(shape, axes):
    """The per-sample dimensions as loops, outer first: [(size, reduced)], adjacent
    dimensions of the same kind merged and dimensions of size 1 dropped."""
    runs = []
    for d, size in enumerate(shape[1:], start=1):
        if size == 1:
            continue
        reduced = d in axes
        if runs and runs[-1][1] == reduced:
            runs[-1] = (runs[-1][0] * size, reduced)
        else:
            runs.append((size, reduced))
    return runs or [(1, False)]


def _index(terms):
    """'i0 * 12 + i1' from [(var, stride)], strides of 0 left out."""
    return " + ".join(var if stride == 1 else f"{var} * {stride}" for var, stride in terms if stride)


class Reduce(Op):
    template = "reduce.c.j2"
    init = "0.0f"        # the C value a reduction starts from
    combine = "{a} + {b}"  # the C expression adding one value b to a partial result a
    numpy = None

    def infer_shape(self, node, ins):
        shape = ins[0].shape
        axes = reduced_axes(node, shape)
        if node.attrs["keepdim"]:
            return tuple(1 if d in axes else s for d, s in enumerate(shape))
        return tuple(s for d, s in enumerate(shape) if d not in axes)

    def reference(self, node, arrays):
        x = arrays[0].astype(np.float64)
        axes = tuple(reduced_axes(node, x.shape))
        return self.numpy(x, axis=axes, keepdims=node.attrs["keepdim"]).astype(np.float32)

    def flops(self, node, ins, out_shape):
        return numel_per_sample(ins[0].shape)

    def finish(self, count):
        """The C expression turning a full reduction {a} into the result."""
        return "{a}"

    def lower(self, node, ins, out_shape):
        shape = ins[0].shape
        axes = reduced_axes(node, shape)
        runs = merged_runs(shape, axes)
        in_steps, out_steps, step, out_step = [], [], 1, 1
        for size, reduced in reversed(runs):
            in_steps.insert(0, step)
            out_steps.insert(0, 0 if reduced else out_step)
            step *= size
            out_step *= 1 if reduced else size
        count = math.prod(shape[a] for a in axes)
        loops = [dict(var=f"i{r}", size=size) for r, (size, _) in enumerate(runs[:-1])]
        in_base = _index([(l["var"], s) for l, s in zip(loops, in_steps)] + [("k", 1)])
        out_base = _index([(l["var"], s) for l, s in zip(loops, out_steps)]) or "0"
        out_inner = _index([(l["var"], s) for l, s in zip(loops, out_steps)] + [("k", 1)])
        inner_reduced = runs[-1][1]
        # one reduced loop, the innermost: each output is finished where it is computed
        direct = inner_reduced and not any(reduced for _, reduced in runs[:-1])
        finish = self.finish(count)
        return dict(loops=loops, inner=runs[-1][0], inner_reduced=inner_reduced, direct=direct,
                    out_size=numel_per_sample(out_shape), init=self.init,
                    y_base=f"y[{out_base}]", y_inner=f"y[{out_inner}]",
                    accumulate=self.combine.format(a="acc", b=f"x[{in_base}]"),
                    add_partial=self.combine.format(a=f"y[{out_base}]", b="acc"),
                    add_row=self.combine.format(a=f"y[{out_inner}]", b=f"x[{in_base}]"),
                    result=finish.format(a="acc"),
                    finish=None if finish == "{a}" else finish.format(a="y[o]"),
                    simd_sum=self.combine == Reduce.combine)


@register
class ReduceSum(Reduce):
    name = "reduce_sum"
    numpy = staticmethod(np.sum)


@register
class ReduceMean(Reduce):
    name = "reduce_mean"
    numpy = staticmethod(np.mean)

    def finish(self, count):
        return "{a} / " + f"{count}.0f"


@register
class ReduceMax(Reduce):
    name = "reduce_max"
    init = "-INFINITY"
    combine = "cnn_max_nan({a}, {b})"
    numpy = staticmethod(np.max)


@register
class ReduceMin(Reduce):
    name = "reduce_min"
    init = "INFINITY"
    combine = "cnn_min_nan({a}, {b})"
    numpy = staticmethod(np.min)
