"""BatchNorm at inference: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias,
per channel (dimension 1). The C applies one precomputed scale and shift per channel."""
import math

import numpy as np

from ..errors import ShapeError, layer_error
from ..layout import BLOCK, blocks, floats
from . import Op, register
from .activations import VECTOR_ACTIVATIONS
from .common import describe_source, numel_per_sample, parallel_pass_worth_it


def scale_shift(node):
    """Per-channel (scale, shift), computed in float64 and rounded once to float32."""
    p, eps = node.params, node.attrs["eps"]
    scale = 1.0 / np.sqrt(p["running_var"].astype(np.float64) + eps)
    if "weight" in p:
        scale = scale * p["weight"]
    shift = -p["running_mean"].astype(np.float64) * scale
    if "bias" in p:
        shift = shift + p["bias"]
    return scale, shift


@register
class BatchNorm(Op):
    name = "batch_norm"
    template = "batch_norm.c.j2"
    on_blocks_template = "batch_norm_blocks.c.j2"
    epilogue = True
    inplace = True

    def runs_on_blocks(self, node, ins):
        """A 4-D value: the padding channels' scale and shift are zero, so they stay zero."""
        return (len(node.meta["shape"]) == 4
                and node.meta.get("activation", {}).get("fn") in VECTOR_ACTIVATIONS)

    def infer_shape(self, node, ins):
        x = ins[0]
        c = node.attrs["num_features"]
        if len(x.shape) < 2 or x.shape[1] != c:
            got = x.shape[1] if len(x.shape) >= 2 else "none"
            raise layer_error(node, f"BatchNorm expects {c} channels but receives {got} "
                              f"{describe_source(x)}; use nn.BatchNorm2d({got})", ShapeError)
        for key, value in node.params.items():
            if value.shape != (c,):
                raise layer_error(node, f"BatchNorm {key} has shape {value.shape}, expected ({c},)",
                                  ShapeError)
        return x.shape

    def reference(self, node, arrays):
        x = arrays[0].astype(np.float64)
        p = node.params
        bshape = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - p["running_mean"].reshape(bshape)) / np.sqrt(
            p["running_var"].astype(np.float64).reshape(bshape) + node.attrs["eps"])
        if "weight" in p:
            y = y * p["weight"].reshape(bshape)
        if "bias" in p:
            y = y + p["bias"].reshape(bshape)
        return y.astype(np.float32)

    def param_count(self, node):
        return sum(int(node.params[k].size) for k in ("weight", "bias") if k in node.params)

    def flops(self, node, ins, out_shape):
        return 2 * numel_per_sample(out_shape)

    def pack(self, node):
        scale, shift = scale_shift(node)
        if node.meta.get("layout") == "blocks":  # zeros for the padding channels
            n = blocks(scale.size) * BLOCK
            scale, shift = np.pad(scale, (0, n - scale.size)), np.pad(shift, (0, n - shift.size))
        return {"scale": scale.astype(np.float32), "shift": shift.astype(np.float32)}

    def lower(self, node, ins, out_shape):
        if node.meta.get("layout") == "blocks":
            plane = math.prod(out_shape[2:])
            return dict(blocks=blocks(out_shape[1]), plane=plane,
                        parallel=int(parallel_pass_worth_it(floats(out_shape))))
        return dict(channels=out_shape[1], plane=numel_per_sample(out_shape) // out_shape[1],
                    parallel=int(parallel_pass_worth_it(numel_per_sample(out_shape))))
