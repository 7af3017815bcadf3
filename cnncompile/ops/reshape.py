"""view / reshape / flatten: a new shape over the same contiguous values; no code, no copy.

The batch stays dimension 0 (it is free at call time); the attribute ``shape`` holds the
per-sample shape that forward() asked for, resolved once at trace time.
"""
import math

from ..errors import ShapeError, layer_error
from . import Op, register
from .common import numel_per_sample, per_sample_dims


def resolve_view(node, x, requested):
    """The per-sample shape of ``x.view(*requested)``, or an error saying what to write."""
    call = node.attrs.get("call", f"view{requested}")
    if not all(isinstance(d, int) for d in requested):
        raise layer_error(node, f"{call}: sizes must be integers", ShapeError)
    batch, per = x.shape[0], numel_per_sample(x.shape)
    total = batch * per
    dims = f"{per} values per sample ({per_sample_dims(x.shape)})"
    if sum(1 for d in requested if d == -1) > 1 or any(d < -1 for d in requested):
        raise layer_error(node, f"{call}: only one dimension can be -1 and none can be "
                          "negative otherwise", ShapeError)
    known = math.prod(d for d in requested if d != -1)
    if -1 in requested:
        if known == 0 or total % known:
            hint = ""
            if len(requested) == 2 and requested[0] == -1:
                hint = (f"; to flatten for a linear layer write x.view(x.size(0), -1), which "
                        f"gives {per} features")
            raise layer_error(node, f"{call}: shape {list(requested)} is invalid for an input "
                              f"of {dims}: {per} is not a multiple of {known}{hint}", ShapeError)
        resolved = [total // known if d == -1 else d for d in requested]
    else:
        resolved = list(requested)
        if known != total:
            raise layer_error(node, f"{call}: shape {list(requested)} has {known} values but the "
                              f"input has {total} ({batch} x {dims})", ShapeError)
    if not resolved or resolved[0] != batch or math.prod(resolved[1:]) != per:
        raise layer_error(node, f"{call} moves values across the batch dimension (the input "
                          f"has {dims}); the compiled model takes any batch size, so "
                          f"dimension 0 must stay the batch: write "
                          f"x.view(x.size(0), -1) or x.flatten(1)", ShapeError)
    return tuple(resolved[1:])


@register
class Reshape(Op):
    name = "reshape"
    alias = True

    def infer_shape(self, node, ins):
        x = ins[0]
        shape = tuple(node.attrs["shape"])
        if math.prod(shape) != numel_per_sample(x.shape):
            raise layer_error(node, f"{node.attrs.get('call', 'reshape')}: per-sample shape "
                              f"{shape} does not hold the input's {numel_per_sample(x.shape)} "
                              "values", ShapeError)
        return (x.shape[0],) + shape

    def reference(self, node, arrays):
        x = arrays[0]
        return x.reshape((x.shape[0],) + tuple(node.attrs["shape"]))
