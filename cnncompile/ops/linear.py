"""Linear: y = x W^T + b on a (N, in_features) input."""
import numpy as np

from ..errors import ShapeError, layer_ref
from ..ir import layer_error
from . import Op, blocked, conv, register
from .common import describe_source, parallel_worth_it, per_sample_dims


def _flattened_from(x):
    """'8192 (32 x 16 x 16 after pool)' when x is a view/flatten of pool's output."""
    src = x.origin
    while src is not None and src.op == "reshape" and src.origin is not None:
        src = src.origin
    if src is not None and len(src.shape) > 2:
        where = "the model input" if src.op == "input" else layer_ref(src.name)
        return f"{x.shape[1]} ({per_sample_dims(src.shape)} after {where})"
    return f"{x.shape[1]} {describe_source(x, shape=False)}"


LANES = blocked.BLOCK  # samples a vector holds in the group path (CNN_CB, runtime/cnn_linear.h)
# output rows whose sums share each load of x: independent chains of vector sums instead of
# one (seed_simplecnn's 8192 -> 10 layer: 0.018 -> 0.008 ms; the model 0.79x the time)
ROW_UNROLL = 4
# Weights from this size on are read as a 1x1 convolution's, in blocks of 16 outputs
# (linear_blocks): past the L2 they come from L3 or memory on every call, and a stream of
# blocks reads there as fast as a plain copy, rows 16 floats at a time from four rows 1.5x
# slower. Smaller layers keep their rows (linear_rows): seed_simplecnn's 8192 -> 10 would
# read 16 outputs' weights for 10.
BLOCKS_MIN_BYTES = 1 << 20
# output blocks a step of linear_blocks computes, each x[i] broadcast against their weights
BLOCKS_NB = 4


@register
class Linear(Op):
    name = "linear"
    template = "linear.c.j2"
    kernels = {"linear_rows": "linear.c.j2", "linear_blocks": "linear.c.j2"}
    epilogue = True

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

    def group_layout(self, node, ins, out_shape, samples):
        """Several samples at once: each weight read once for the group, broadcast against
        LANES samples at a time, their inputs transposed into the scratch (the weights are
        most of a linear layer's data; per sample, LeNet-5's 400 -> 120 layer read 190 KB for
        96 kFLOP)."""
        return dict(samples=samples, scratch=node.attrs["in_features"] * LANES)

    def select_kernel(self, node, ins):
        size = 4 * node.attrs["in_features"] * node.attrs["out_features"]
        return "linear_blocks" if size >= BLOCKS_MIN_BYTES else "linear_rows"

    def pack(self, node):
        """linear_blocks: w[out / 16][in, padded to whole blocks][16], a 1x1 convolution's
        weights (ops/blocked.py), and the bias padded to whole blocks."""
        if node.meta.get("kernel") != "linear_blocks":
            return node.params
        return blocked.pack_rows(node, node.params["weight"],
                                 blocked.blocks(node.attrs["in_features"]) * LANES)

    def packed_shapes(self, node):
        if node.meta.get("kernel") != "linear_blocks":
            return super().packed_shapes(node)
        return blocked.packed_rows_shapes(node, blocked.blocks(node.attrs["in_features"]) * LANES)

    def lower(self, node, ins, out_shape):
        fout = node.attrs["out_features"]
        blocks = None
        if node.meta.get("kernel") == "linear_blocks":
            act = conv.GEMM_ACTIVATIONS.get(node.meta.get("activation", {}).get("fn"))
            # relu and relu6 in the tile's epilogue, other activations after it
            blocks = dict(nb=BLOCKS_NB, groups=-(-blocked.blocks(fout) // BLOCKS_NB),
                          act=act or "CNN_ACT_NONE",
                          scalar_act=act is None and "activation" in node.meta)
        return dict(in_features=node.attrs["in_features"], out_features=fout,
                    rows=dict(unroll=ROW_UNROLL, blocks=-(-fout // ROW_UNROLL)),
                    blocks=blocks, blocked=int(blocks is not None),
                    parallel=int(parallel_worth_it(node)))
