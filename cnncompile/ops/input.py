"""The model input: a placeholder whose shape is the compile-time input_shape."""
import numpy as np

from ..errors import ShapeError, layer_error
from . import Op, register


@register
class Input(Op):
    name = "input"
    arity = 0

    def infer_shape(self, node, ins):
        shape = node.attrs["shape"]
        if len(shape) < 1:
            raise layer_error(node, f"input_shape {shape} needs a batch dimension and at least "
                              "one feature dimension, e.g. (1, 3, 32, 32)", ShapeError)
        return shape

    def reference(self, node, arrays):
        return np.asarray(arrays[0], np.float32)
