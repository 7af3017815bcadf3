"""Elementwise arithmetic in forward(): x + y, x - y, x * y, x / y (numpy broadcasting over
the per-sample dimensions, e.g. a (N, C, 1, 1) scale times a (N, C, H, W) map), and the same
with a Python number on either side (x * 2.0, 1.0 - x), or with a constant array (param
``other``, per-sample shaped and broadcast the same way: an ONNX ``Add`` of an initializer).
Fusable with a following activation.
"""
import math

import numpy as np

from ..errors import ShapeError, layer_error
from ..ir import Value
from ..layout import BLOCK, blocks, floats
from ..literals import c_float
from . import Op, register
from .activations import VECTOR_ACTIVATIONS
from .common import describe_source, numel_per_sample, parallel_pass_worth_it

# floats a piece of a one-row concatenation copies (64 KiB): the pieces are shared among
# threads
CAT_PIECE = 1 << 14
SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
NUMPY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


def broadcast_loops(a, b, out):
    """Loops over the per-sample output, merged where possible: [(size, a_step, b_step)]."""
    dims = []
    for sa, sb, so in zip(a, b, out):
        dims.append([so, 1 if sa == so else 0, 1 if sb == so else 0])
    # element strides, innermost last
    loops, ea, eb = [], 1, 1
    for size, ka, kb in reversed(dims):
        loops.append([size, ea if ka else 0, eb if kb else 0])
        ea, eb = ea * (size if ka else 1), eb * (size if kb else 1)
    loops.reverse()
    merged = []
    for size, sa, sb in loops:
        if size == 1:
            continue
        if merged:
            psize, pa, pb = merged[-1]
            if pa == sa * size and pb == sb * size:  # contiguous with the next-outer loop
                merged[-1] = [psize * size, sa, sb]
                continue
        merged.append([size, sa, sb])
    return merged or [[1, 0, 0]]


def _constant_operand(node, batch):
    """The constant array operand (param ``other``) as a Value with a batch dimension."""
    return Value("constant", "constant", (batch,) + node.params["other"].shape)


class Binary(Op):
    template = "binary.c.j2"
    on_blocks_template = "binary_blocks.c.j2"
    arity = None
    epilogue = True
    inplace = True

    def runs_on_blocks(self, node, ins):
        """Two computed 4-D values, the second the first's shape or one value per channel
        (a squeeze-and-excitation scale; first or second for + and *), added, subtracted or
        multiplied: the padding channels, zero in both, stay zero (division would make them
        NaN)."""
        if self.name == "div" or len(ins) != 2 or node.attrs.get("reverse") or \
                node.meta.get("activation", {}).get("fn") not in VECTOR_ACTIVATIONS:
            return False
        a, b, out = tuple(ins[0].shape), tuple(ins[1].shape), tuple(node.meta["shape"])
        if len(out) != 4:
            return False
        return (a == out and b in (out, out[:2] + (1, 1))) or (
            self.name != "sub" and b == out and a == out[:2] + (1, 1))

    def infer_shape(self, node, ins):
        if len(ins) == 1 and "other" in node.params:
            ins = [ins[0], _constant_operand(node, ins[0].shape[0])]
        elif len(ins) == 1:
            return ins[0].shape
        if len(ins) != 2:
            raise layer_error(node, f"{self.name} takes two inputs, got {len(ins)}")
        a, b = ins
        if len(a.shape) != len(b.shape):
            raise layer_error(node, f"cannot {self.name} a {len(a.shape)}-D {describe_source(a)} "
                              f"and a {len(b.shape)}-D {describe_source(b)} value; reshape one "
                              "so both have the same number of dimensions", ShapeError)
        out = []
        for da, db in zip(a.shape, b.shape):
            if da != db and 1 not in (da, db):
                raise layer_error(node, f"shapes {tuple(a.shape)} {describe_source(a, False)} and "
                                  f"{tuple(b.shape)} {describe_source(b, False)} do not broadcast "
                                  f"for {SYMBOLS[self.name]}: sizes must match or be 1", ShapeError)
            out.append(max(da, db))
        if out[0] != a.shape[0] or a.shape[0] != b.shape[0]:
            raise layer_error(node, "both operands must have the batch as dimension 0", ShapeError)
        return tuple(out)

    def reference(self, node, arrays):
        a = arrays[0].astype(np.float64)
        if len(arrays) == 2:
            b = arrays[1].astype(np.float64)
        elif "other" in node.params:
            b = node.params["other"].astype(np.float64)[None]
            if node.attrs.get("reverse"):
                a, b = b, a
        else:
            b = np.float64(np.float32(node.attrs["scalar"]))
            if node.attrs.get("reverse"):
                a, b = b, a
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return NUMPY[self.name](a, b).astype(np.float32)

    def flops(self, node, ins, out_shape):
        return numel_per_sample(out_shape)

    def lower(self, node, ins, out_shape):
        op = SYMBOLS[self.name]
        if node.meta.get("layout") == "blocks":
            plane = math.prod(out_shape[2:])
            swapped = tuple(ins[0].shape[2:]) == (1, 1) and plane > 1
            return dict(op=op, blocks=blocks(out_shape[1]), plane=plane, swapped=swapped,
                        per_channel=swapped or (tuple(ins[1].shape[2:]) == (1, 1) and plane > 1),
                        parallel=int(parallel_pass_worth_it(floats(out_shape))))
        if len(ins) == 1 and "other" in node.params:
            ins = [ins[0], _constant_operand(node, 1)]
        elif len(ins) == 1:
            k = c_float(node.attrs["scalar"])
            expr = f"{k} {op} x[i]" if node.attrs.get("reverse") else f"x[i] {op} {k}"
            return dict(binary=False, size=numel_per_sample(out_shape), expr=expr)
        loops = broadcast_loops(ins[0].shape[1:], ins[1].shape[1:], out_shape[1:])
        idx = [f"i{d}" for d in range(len(loops))]
        ya = " + ".join(f"{i} * {s}" if s != 1 else i for i, (_, s, _) in zip(idx, loops) if s)
        yb = " + ".join(f"{i} * {s}" if s != 1 else i for i, (_, _, s) in zip(idx, loops) if s)
        steps, step = [], 1
        for size, _, _ in reversed(loops):
            steps.append(step)
            step *= size
        yo = " + ".join(f"{i} * {s}" if s != 1 else i for i, s in zip(idx, reversed(steps)))
        a, b = f"x[{ya or '0'}]", f"b[{yb or '0'}]"
        if node.attrs.get("reverse"):
            a, b = b, a
        return dict(binary=True, constant="other" in node.params,
                    loops=[dict(var=i, size=l[0]) for i, l in zip(idx, loops)],
                    out_index=yo, expr=f"{a} {op} {b}")


for _name in SYMBOLS:
    register(type(f"Binary_{_name}", (Binary,), dict(name=_name)))


@register
class Cat(Op):
    name = "cat"
    template = "cat.c.j2"
    on_blocks_template = "cat.c.j2"  # the same copies, of whole blocks
    arity = None

    def runs_on_blocks(self, node, ins):
        """Along the channels of 4-D values, every part but the last filling its blocks: each
        part's blocks are then whole blocks of the result, and only the last part's padding
        is the result's."""
        return (node.attrs["dim"] % 4 == 1 and all(len(v.shape) == 4 for v in ins)
                and all(v.shape[1] % BLOCK == 0 for v in ins[:-1]))

    def infer_shape(self, node, ins):
        dim = node.attrs["dim"]
        first = ins[0].shape
        if not -len(first) <= dim < len(first):
            raise layer_error(node, f"cat(dim={dim}) is out of range for {len(first)}-D inputs",
                              ShapeError)
        axis = dim % len(first)
        if axis == 0:
            raise layer_error(node, "cat along dim 0 joins batches; the compiled model keeps "
                              "the batch free: concatenate along a dim >= 1 (dim=1 for "
                              "channels)", ShapeError)
        for v in ins[1:]:
            if len(v.shape) != len(first) or any(
                    a != b for i, (a, b) in enumerate(zip(v.shape, first)) if i != axis):
                raise layer_error(node, f"cat(dim={dim}): {tuple(v.shape)} "
                                  f"{describe_source(v, False)} does not match "
                                  f"{tuple(first)} {describe_source(ins[0], False)} outside "
                                  f"dimension {axis}", ShapeError)
        return first[:axis] + (sum(v.shape[axis] for v in ins),) + first[axis + 1:]

    def reference(self, node, arrays):
        return np.concatenate(arrays, axis=node.attrs["dim"] % arrays[0].ndim)

    def lower(self, node, ins, out_shape):
        axis = node.attrs["dim"] % len(out_shape)
        outer = int(np.prod(out_shape[1:axis]))
        inner = int(np.prod(out_shape[axis + 1:]))
        on_blocks = node.meta.get("layout") == "blocks"
        parts, offset = [], 0
        for i, v in enumerate(ins):
            size = blocks(v.shape[1]) * BLOCK * inner if on_blocks else v.shape[axis] * inner
            parts.append(dict(index=i, size=size, offset=offset))
            offset += size
        # one output row (outer == 1): copies of at most CAT_PIECE floats, shared among
        # threads; several rows are copied row by row on one thread
        pieces = [dict(part=p["index"], src=s, dst=p["offset"] + s,
                       size=min(CAT_PIECE, p["size"] - s))
                  for p in parts for s in range(0, p["size"], CAT_PIECE)] if outer == 1 else []
        return dict(outer=outer, block=offset, parts=parts, n_inputs=len(ins), pieces=pieces,
                    parallel=int(parallel_pass_worth_it(outer * offset)))
