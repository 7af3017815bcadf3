"""Softmax and LogSoftmax along one dimension (not the batch), numerically stable:
exp(x - max) / sum, and x - max - log(sum)."""
import math

import numpy as np

from ..errors import ShapeError, UnsupportedError, layer_error
from . import Op, register
from .common import numel_per_sample


def softmax_axis(node, shape):
    dim = node.attrs["dim"]
    if not -len(shape) <= dim < len(shape):
        raise layer_error(node, f"{node.op}(dim={dim}) is out of range for a {len(shape)}-D "
                          f"input {tuple(shape)}", ShapeError)
    axis = dim % len(shape)
    if axis == 0:
        raise layer_error(node, f"{node.op}(dim={dim}) normalises across the batch; the "
                          "compiled model treats samples independently: use a dim >= 1 "
                          "(dim=1 for class scores)", UnsupportedError)
    return axis


class _Softmax(Op):
    template = "softmax.c.j2"
    log = False

    def infer_shape(self, node, ins):
        softmax_axis(node, ins[0].shape)
        return ins[0].shape

    def reference(self, node, arrays):
        x = arrays[0].astype(np.float64)
        axis = node.attrs["dim"] % x.ndim
        m = np.max(x, axis=axis, keepdims=True)
        z = x - m
        s = np.sum(np.exp(z), axis=axis, keepdims=True)
        return (z - np.log(s) if self.log else np.exp(z) / s).astype(np.float32)

    def flops(self, node, ins, out_shape):
        return 4 * numel_per_sample(out_shape)

    def lower(self, node, ins, out_shape):
        shape = ins[0].shape
        axis = softmax_axis(node, shape)
        return dict(outer=math.prod(shape[1:axis]), count=shape[axis],
                    inner=math.prod(shape[axis + 1:]), block=shape[axis] * math.prod(shape[axis + 1:]),
                    log=self.log)


@register
class Softmax(_Softmax):
    name = "softmax"


@register
class LogSoftmax(_Softmax):
    name = "log_softmax"
    log = True
