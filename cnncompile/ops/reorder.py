"""Reorder: a tensor between channel planes (N, C, H, W) and channel blocks (cnncompile/layout.py).
Not a layer a model contains: passes/select_layout.py puts one at each edge of a run of
layers that compute on blocks. The values are the same; only their order in memory changes,
so the reference is the identity."""
import math

from ..layout import blocks, floats
from . import Op, register
from .common import parallel_pass_worth_it


@register
class Reorder(Op):
    name = "reorder"
    template = "reorder.c.j2"

    def infer_shape(self, node, ins):
        return ins[0].shape

    def reference(self, node, arrays):
        return arrays[0]

    def lower(self, node, ins, out_shape):
        plane = math.prod(out_shape[2:])
        return dict(to_blocks=node.attrs["to"] == "blocks", channels=out_shape[1], plane=plane,
                    blocks=blocks(out_shape[1]),
                    parallel=int(parallel_pass_worth_it(floats(out_shape))))
