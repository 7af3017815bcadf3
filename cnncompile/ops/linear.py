"""Linear: y = x W^T + b on a (N, in_features) input."""
import numpy as np

from ..errors import ShapeError, layer_ref
from ..errors import layer_error
from . import Op, register
from .common import describe_source, per_sample_dims


def _flattened_from(x):
    """'8192 (32 x 16 x 16 after pool)' when x is a view/flatten of pool's output."""
    src = x.origin
    while src is not None and src.op == "reshape" and src.origin is not None:
        src = src.origin
    if src is not None and len(src.shape) > 2:
        where = "the model input" if src.op == "input" else layer_ref(src.name)
        return f"{x.shape[1]} ({per_sample_dims(src.shape)} after {where})"
    return f"{x.shape[1]} {describe_source(x, shape=False)}"


@register
class Linear(Op):
    name = "linear"
    epilogue = True  # kernels: cnncompile/kernels/linear.py
    folds_batch_norm = True

    def infer_shape(self, node, ins):
        a, x = node.attrs, ins[0]
        fin, fout = a["in_features"], a["out_features"]
        if len(x.shape) != 2:
            raise layer_error(node, f"Linear expects a 2-D input (N, {fin}) but receives "
                              f"{len(x.shape)}-D {describe_source(x)}; flatten first: "
                              f"x = x.view(x.size(0), -1) or nn.Flatten(), then "
                              f"nn.Linear({per_sample_dims(x.shape).replace(' x ', ' * ')}, "
                              f"{fout})", ShapeError)
        if x.shape[1] != fin:
            got = _flattened_from(x)
            raise layer_error(node, f"Linear expects {fin} input features but receives {got}; "
                              f"use nn.Linear({x.shape[1]}, {fout})", ShapeError)
        if node.params["weight"].shape != (fout, fin):
            raise layer_error(node, f"Linear weight has shape {node.params['weight'].shape}, "
                              f"expected {(fout, fin)}", ShapeError)
        return (x.shape[0], fout)

    def reference(self, node, arrays):
        y = arrays[0].astype(np.float64) @ node.params["weight"].astype(np.float64).T
        if "bias" in node.params:
            y += node.params["bias"].astype(np.float64)
        return y.astype(np.float32)

    def flops(self, node, ins, out_shape):
        return 2 * node.attrs["in_features"] * node.attrs["out_features"]
