"""The shape of a kernel: copy this file, rename the class, fill it in.

A kernel is one way to compute an op. To add one:
1. A class like the one below in its family's module (conv_nchw_gemm.py, conv_nchw16c.py...)
   or in a new module of this package: which layers it computes, which it should be chosen
   for, its weights as the C reads them, its scratch, and its template's constants.
2. One line in REGISTRY (kernels/__init__.py), at the place in the order where select_kernels
   should try it.
3. Its template, templates/ops/<template>: one C function per layer, `static void {{ fn }}(x,
   [res,] y[, scratch])`, calling the runtime's functions (runtime/*.h) with the constants
   ``lower`` gives it; no arithmetic in the template.
4. Its runtime code, if it needs new C: a section of the family's header in runtime/, with a
   C-level test in tests/kernels/.
tests/test_ops.py then forces the new kernel on every case of its op and compares it with the
numpy reference and torch; test_every_registered_kernel_is_tested_against_the_reference fails
until at least one case is one the kernel applies to (add one to CASES if needed).

This module is not imported by the registry: it only shows the shape.
"""
from ..layout import PLANES
from .conv_base import CONV2D, ConvKernel


class ExampleConv(ConvKernel):
    """One line: what it computes and how (the summary and the C's comments show ``name``)."""
    name = "nchw.example"           # <layout>.<algorithm>
    ops = CONV2D                    # the ops it computes (ops.REGISTRY keys)
    template = "conv_example.c.j2"  # under templates/ops/
    layout_in = PLANES              # PLANES or BLOCKS (cnncompile/layout.py)
    layout_out = PLANES
    per_layer = True                # False: only chosen for runs on channel blocks
    slowdown = 1                    # time per FLOP against the GEMM (the threads' threshold)

    def applies(self, node):
        """Whether it can compute this layer at all: a kernel override is checked with it."""
        a = node.attrs
        return super().applies(node) and a["groups"] == 1

    def preferred(self, node, ins):
        """Whether select_kernels should choose it, it being the first in REGISTRY's order
        that applies and prefers the layer. State the rule; its measurements go to
        benchmarks/RESULTS.md."""
        return node.attrs["out_channels"] >= 64

    def pack(self, node):
        """The arrays the template reads as p.<name>: the params, transformed at compile time
        into the order the C reads them (then also override packed_shapes)."""
        return node.params

    def scratch(self, node, ins, out_shape):
        """Floats of temporary memory while the layer runs: the template's `scratch`."""
        return 0

    def extra(self, node, ins, out_shape):
        """Constants the template needs beyond the geometry ConvKernel.lower gives (in_h,
        out_w, kh, stride_h, pad_top, in_channels, groups, residual, parallel...)."""
        return {}
