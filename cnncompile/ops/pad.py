"""Pad: constant, reflect, replicate or circular padding of the per-sample dimensions
(F.pad, nn.ZeroPad2d and friends, and conv padding_mode). Python computes, for each output
index of each dimension, the input index it copies (or -1: the constant)."""
import numpy as np

from ..errors import ShapeError, UnsupportedError, layer_error
from ..literals import c_float
from . import Op, register

NUMPY_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def source_index(o, size, before, mode):
    """The input index that output index ``o`` of a padded dimension copies, or -1."""
    i = o - before
    if 0 <= i < size:
        return i
    if mode == "constant":
        return -1
    if mode == "replicate":
        return min(max(i, 0), size - 1)
    if mode == "circular":
        return i % size
    # reflect about the edges, without repeating them
    period = 2 * (size - 1)
    i = abs(i) % period if period else 0
    return period - i if i >= size else i


@register
class Pad(Op):
    name = "pad"
    template = "pad.c.j2"

    def check_attrs(self, node):
        if node.attrs["mode"] not in NUMPY_MODE:
            raise layer_error(node, f"pad mode {node.attrs['mode']!r} is not supported; use "
                              "'constant', 'reflect', 'replicate' or 'circular'", UnsupportedError)
        if any(p < 0 for pair in node.attrs["pads"] for p in pair):
            raise layer_error(node, f"negative padding {node.attrs['pads']} (cropping) is not "
                              "supported", UnsupportedError)

    def infer_shape(self, node, ins):
        self.check_attrs(node)
        x, pads, mode = ins[0], node.attrs["pads"], node.attrs["mode"]
        if len(pads) != len(x.shape) - 1:
            raise layer_error(node, f"pad: {len(pads)} padded dimensions for a "
                              f"{len(x.shape)}-D input {tuple(x.shape)}", ShapeError)
        for size, (p0, p1) in zip(x.shape[1:], pads):
            if mode == "reflect" and max(p0, p1) >= size:
                raise layer_error(node, f"reflect padding {max(p0, p1)} must be smaller than "
                                  f"the padded dimension ({size})", ShapeError)
            if mode == "circular" and max(p0, p1) > size:
                raise layer_error(node, f"circular padding {max(p0, p1)} must be at most the "
                                  f"padded dimension ({size})", ShapeError)
        return (x.shape[0],) + tuple(s + p0 + p1 for s, (p0, p1) in zip(x.shape[1:], pads))

    def reference(self, node, arrays):
        a = node.attrs
        widths = [(0, 0)] + [tuple(p) for p in a["pads"]]
        if a["mode"] == "constant":
            return np.pad(arrays[0], widths, constant_values=np.float32(a["value"]))
        return np.pad(arrays[0], widths, mode=NUMPY_MODE[a["mode"]])

    def lower(self, node, ins, out_shape):
        a = node.attrs
        size = ins[0].shape[1:]
        dims, strides, step = [], [], 1
        for s in reversed(size):
            strides.append(step)
            step *= s
        strides.reverse()
        conds, terms = [], []
        for d, (s, (p0, p1), stride) in enumerate(zip(size, a["pads"], strides)):
            mapping = [source_index(o, s, p0, a["mode"]) for o in range(s + p0 + p1)]
            dims.append(dict(var=f"i{d}", table=f"map{d}", size=len(mapping), map=mapping))
            if -1 in mapping:
                conds.append(f"map{d}[i{d}] < 0")
            terms.append(f"map{d}[i{d}] * {stride}" if stride != 1 else f"map{d}[i{d}]")
        return dict(dims=dims, outside=" || ".join(conds), index=" + ".join(terms),
                    value=c_float(a["value"]))
