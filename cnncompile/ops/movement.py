"""permute and slice: data movement inside a sample, as one strided copy.

Both keep the batch in dimension 0 (it is free at call time): a permutation must leave it
first, and a slice must take every sample. Their output is contiguous, so a view after them
(reshape is an alias) reads the values in the order torch's .contiguous() would give.
"""
import math

import numpy as np

from ..errors import ShapeError, UnsupportedError, layer_error
from . import Op, register
from .common import numel_per_sample

# Tile edge of a transposing copy: a 16 x 16 tile of floats (1 KB) stays in L1 while it is
# read along one side and written along the other.
TILE = 16


def _strides(shape):
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return strides[::-1]


def _index(terms, offset=0):
    """C expression of ``offset + sum(var * stride)`` over (var, stride) terms."""
    parts = [str(offset)] if offset else []
    parts += [var if stride == 1 else f"{var} * {stride}" for var, stride in terms if stride]
    return " + ".join(parts) or "0"


def strided_copy(loops, x_offset=0, run=1):
    """What strided_copy.c.j2 receives: nested loops, each (var, start, stop, step, x_stride,
    y_stride), copying ``run`` contiguous floats per innermost iteration."""
    out = []
    for depth, (var, start, stop, step, xs, ys) in enumerate(loops):
        out.append(dict(var=var, start=start, stop=stop, indent="    " * (depth + 1),
                        next=f"++{var}" if step == 1 else f"{var} += {step}"))
    x_index = _index([(l[0], l[4]) for l in loops], x_offset)
    y_index = _index([(l[0], l[5]) for l in loops])
    return dict(loops=out, body_indent="    " * (len(loops) + 1), run=run,
                x_index=x_index, y_index=y_index,
                x_run="x" if x_index == "0" else f"x + {x_index}",
                y_run="y" if y_index == "0" else f"y + {y_index}")


def permutation(node):
    perm = tuple(node.attrs["perm"])
    if sorted(perm) != list(range(len(perm))):
        raise layer_error(node, f"permute{perm}: the dims must be a permutation of "
                          f"0..{len(perm) - 1}, each once", ShapeError)
    return perm


@register
class Permute(Op):
    """y = x.permute(perm), written contiguous: y[i] = x[sum(i_k * in_stride[perm[k]])]."""
    name = "permute"
    template = "strided_copy.c.j2"

    def check_attrs(self, node):
        perm = tuple(node.attrs["perm"])
        if perm and perm[0] != 0:
            raise layer_error(node, f"permute{perm} moves the batch out of dimension 0; the "
                              "compiled model takes any batch size, so keep the batch first "
                              "(perm[0] == 0) and permute the other dimensions",
                              UnsupportedError)

    def infer_shape(self, node, ins):
        shape = ins[0].shape
        perm = permutation(node)
        if len(perm) != len(shape):
            raise layer_error(node, f"permute{perm} has {len(perm)} dims but the input "
                              f"{tuple(shape)} has {len(shape)}", ShapeError)
        return tuple(shape[p] for p in perm)

    def reference(self, node, arrays):
        return np.ascontiguousarray(np.transpose(arrays[0], node.attrs["perm"]))

    def lower(self, node, ins, out_shape):
        shape = ins[0].shape[1:]
        perm = [p - 1 for p in node.attrs["perm"][1:]]
        in_strides = _strides(shape)
        # the output dims as (size, stride in x), without size-1 dims, and merged where two
        # neighbours are also neighbours in x: NCHW -> NHWC is a (H*W, C) <- (C, H*W) transpose
        dims = []
        for p in perm:
            if shape[p] == 1:
                continue
            if dims and dims[-1][1] == in_strides[p] * shape[p]:
                dims[-1] = (dims[-1][0] * shape[p], in_strides[p])
            else:
                dims.append((shape[p], in_strides[p]))
        size = numel_per_sample(out_shape)
        if len(dims) <= 1:
            return strided_copy([], run=size)
        out_strides = _strides([d[0] for d in dims])
        last = len(dims) - 1
        inner = next(k for k, (_, s) in enumerate(dims) if s == 1)  # contiguous in x
        if inner == last:  # rows contiguous on both sides: copied whole
            loops = [(f"i{k}", 0, n, 1, s, out_strides[k]) for k, (n, s) in enumerate(dims[:-1])]
            return strided_copy(loops, run=dims[last][0])
        loops = [(f"i{k}", 0, n, 1, s, out_strides[k]) for k, (n, s) in enumerate(dims)
                 if k not in (inner, last)]
        n_in, n_last = dims[inner][0], dims[last][0]
        if n_in < TILE or n_last < TILE:  # nothing to tile: read x along one side
            loops += [(f"i{k}", 0, dims[k][0], 1, dims[k][1], out_strides[k])
                      for k in (inner, last)]
            return strided_copy(loops)
        # tiles of TILE x TILE: reads along x's rows and writes along y's, both within a tile
        loops += [(f"t{inner}", 0, n_in, TILE, 0, 0), (f"t{last}", 0, n_last, TILE, 0, 0)]
        for k, n in ((inner, n_in), (last, n_last)):
            stop = (f"t{k} + {TILE}" if n % TILE == 0
                    else f"(t{k} + {TILE} < {n} ? t{k} + {TILE} : {n})")
            loops.append((f"i{k}", f"t{k}", stop, 1, dims[k][1], out_strides[k]))
        return strided_copy(loops)


def slice_length(start, stop, step):
    return max(0, -(-(stop - start) // step))


@register
class Slice(Op):
    """y = x[:, ..., start:stop:step, ...] along ``dim`` (>= 1), bounds already in range."""
    name = "slice"
    template = "strided_copy.c.j2"

    def check_attrs(self, node):
        dim, step = node.attrs["dim"], node.attrs["step"]
        if dim == 0:
            raise layer_error(node, "slicing dimension 0 selects samples of the batch; the "
                              "compiled model takes any batch size and keeps every sample: "
                              "slice a dimension >= 1 (x[:, a:b] for channels) and select "
                              "samples outside the model", UnsupportedError)
        if step < 1:
            raise layer_error(node, f"slice step {step}: only positive steps are supported; "
                              "to reverse a dimension use flip outside the model",
                              UnsupportedError)

    def infer_shape(self, node, ins):
        shape = ins[0].shape
        dim, start, stop, step = (node.attrs[k] for k in ("dim", "start", "stop", "step"))
        if not 0 < dim < len(shape):
            raise layer_error(node, f"slice dim {dim} is out of range for a {len(shape)}-D "
                              f"input {tuple(shape)}", ShapeError)
        if not 0 <= start <= stop <= shape[dim]:
            raise layer_error(node, f"slice {start}:{stop} is out of range for dimension {dim} "
                              f"of size {shape[dim]}", ShapeError)
        count = slice_length(start, stop, step)
        if count == 0:
            raise layer_error(node, f"slice {start}:{stop}:{step} of dimension {dim} (size "
                              f"{shape[dim]}) selects nothing; cnncompile compiles tensors "
                              "with at least one value", ShapeError)
        return shape[:dim] + (count,) + shape[dim + 1:]

    def reference(self, node, arrays):
        a = node.attrs
        index = (slice(None),) * a["dim"] + (slice(a["start"], a["stop"], a["step"]),)
        return np.ascontiguousarray(arrays[0][index])

    def lower(self, node, ins, out_shape):
        a = node.attrs
        shape, dim = ins[0].shape, a["dim"]
        outer, inner = math.prod(shape[1:dim]), math.prod(shape[dim + 1:])
        count = out_shape[dim]
        x_offset = a["start"] * inner
        if a["step"] == 1 or count == 1:  # one run of count * inner floats per outer index
            loops = [("o", 0, outer, 1, shape[dim] * inner, count * inner)] if outer > 1 else []
            return strided_copy(loops, x_offset, count * inner)
        loops = [("o", 0, outer, 1, shape[dim] * inner, count * inner)] if outer > 1 else []
        loops.append(("k", 0, count, 1, a["step"] * inner, inner))
        return strided_copy(loops, x_offset, inner)
