"""MatMul of two computed values, per sample: (N, *batch, M, K) @ (N, *batch, K, P), the
batch dimensions between N and the matrices broadcast as torch.matmul broadcasts them (the
attention of EfficientViT-style blocks). A value times a weight is a Linear instead."""
import math

import numpy as np

from ..errors import ShapeError, UnsupportedError, layer_error
from . import Op, register
from .arithmetic import broadcast_loops
from .common import describe_source


def _offset(names, steps, scale):
    terms = [f"{v} * {s * scale}" for v, s in zip(names, steps) if s]
    return " + ".join(terms) or "0"


@register
class MatMul(Op):
    name = "matmul"
    template = "matmul.c.j2"
    arity = 2

    def infer_shape(self, node, ins):
        a, b = ins
        for v in (a, b):
            if len(v.shape) < 3:
                raise layer_error(node, f"matmul of a {len(v.shape)}-D value "
                                  f"{describe_source(v)}: cnncompile multiplies matrices per "
                                  "sample, so each operand needs (N, ..., rows, columns); "
                                  "unsqueeze the vector to a matrix", UnsupportedError)
        if a.shape[0] != b.shape[0]:
            raise layer_error(node, "both operands of matmul must have the batch as "
                              "dimension 0", ShapeError)
        if a.shape[-1] != b.shape[-2]:
            raise layer_error(node, f"matmul of {tuple(a.shape)} {describe_source(a, False)} "
                              f"and {tuple(b.shape)} {describe_source(b, False)}: the first has "
                              f"{a.shape[-1]} columns, the second {b.shape[-2]} rows", ShapeError)
        ba, bb = a.shape[1:-2], b.shape[1:-2]
        rank = max(len(ba), len(bb))
        ba, bb = (1,) * (rank - len(ba)) + ba, (1,) * (rank - len(bb)) + bb
        out = []
        for da, db in zip(ba, bb):
            if da != db and 1 not in (da, db):
                raise layer_error(node, f"matmul batch dimensions {ba} and {bb} do not "
                                  "broadcast: sizes must match or be 1", ShapeError)
            out.append(max(da, db))
        return (a.shape[0],) + tuple(out) + (a.shape[-2], b.shape[-1])

    def reference(self, node, arrays):
        a, b = (x.astype(np.float64) for x in arrays)
        rank = max(a.ndim, b.ndim)
        a = a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:])
        b = b.reshape(b.shape[:1] + (1,) * (rank - b.ndim) + b.shape[1:])
        return np.matmul(a, b).astype(np.float32)

    def flops(self, node, ins, out_shape):
        return 2 * math.prod(out_shape[1:]) * ins[0].shape[-1]

    def lower(self, node, ins, out_shape):
        a, b = ins[0].shape, ins[1].shape
        m, k, p = a[-2], a[-1], b[-1]
        rank = len(out_shape) - 3
        ba = (1,) * (rank - len(a[1:-2])) + tuple(a[1:-2])
        bb = (1,) * (rank - len(b[1:-2])) + tuple(b[1:-2])
        loops = [l for l in broadcast_loops(ba, bb, out_shape[1:-2]) if l[0] > 1] if rank else []
        names = [f"i{d}" for d in range(len(loops))]
        out_steps, step = [], 1
        for size, _, _ in reversed(loops):
            out_steps.append(step)
            step *= size
        out_steps.reverse()
        return dict(m=m, k=k, p=p, loops=[dict(var=v, size=l[0]) for v, l in zip(names, loops)],
                    a_offset=_offset(names, [l[1] for l in loops], m * k),
                    b_offset=_offset(names, [l[2] for l in loops], k * p),
                    y_offset=_offset(names, out_steps, m * p))
