"""ReLU: max(x, 0), keeping NaN as torch does. Fusable into the epilogue of a conv/linear/pool."""
import numpy as np

from . import Op, register
from .common import numel_per_sample


@register
class ReLU(Op):
    name = "relu"
    template = "elementwise.c.j2"
    activation = "cnn_relu"
    inplace = True

    def infer_shape(self, node, ins):
        return ins[0].shape

    def reference(self, node, arrays):
        x = arrays[0]
        return np.where(x < 0, np.float32(0), x).astype(np.float32)

    def flops(self, node, ins, out_shape):
        return numel_per_sample(out_shape)

    def lower(self, node, ins, out_shape):
        return dict(size=numel_per_sample(out_shape))
