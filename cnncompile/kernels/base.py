"""A kernel: one way to compute an op, with everything code generation needs from it.

The op (cnncompile/ops/) says what a layer computes; a kernel says how: which layers it can
compute (``applies``), whether select_kernels should pick it for a layer (``preferred``), the
layouts it reads and writes, its weights as the C reads them (``pack``), its temporary
memory (``scratch``), and the constants its template receives (``lower``). Kernels are named
``<layout>.<algorithm>``, the way TVM names ``conv2d_NCHWc.x86`` and XNNPACK
``f32-gemm-4x8-avx512``: the name says what it computes on which layout.
"""
from ..layout import PLANES


class Kernel:
    ops = ()               # the op names (ops.REGISTRY keys) it computes
    name = None            # "<layout>.<algorithm>"
    template = None        # templates/ops/<template>
    layout_in = PLANES     # the layout of the input it reads (PLANES or BLOCKS)
    layout_out = PLANES    # ... and of the output it writes
    per_layer = True       # select_kernels may pick it from one layer's shapes (False: only
    #                        as part of a run of layers on channel blocks)

    def applies(self, node):
        """Whether it can compute this layer (checked for a kernel override too)."""
        return True

    def preferred(self, node, ins):
        """Whether select_kernels picks it for this layer, it being the first kernel in the
        registry's order that applies and is preferred."""
        return True

    def template_for(self, node):
        return self.template

    def pack(self, node):
        """The arrays the C reads, by name (templates see their symbols as p.<name>)."""
        return node.params

    def packed_shapes(self, node):
        """The shapes of pack(node)'s arrays, without packing when that is costly (a cached
        build never packs)."""
        return {name: a.shape for name, a in self.pack(node).items()}

    def scratch(self, node, ins, out_shape):
        """Floats of temporary memory while the layer runs (placed by plan_memory)."""
        return 0

    def lower(self, node, ins, out_shape):
        """The constants its template receives."""
        return {}

    def group_layout(self, node, ins, out_shape, samples):
        """For kernels that compute several samples at once (the template's <fn>_group): the
        constants for up to ``samples`` samples, with their ``scratch`` floats; else None."""
        return None

    def __repr__(self):
        return f"<kernel {self.name}>"
