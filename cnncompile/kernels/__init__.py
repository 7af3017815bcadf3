"""The kernel registry: how each op with several implementations can run (kernels/base.py).

REGISTRY lists every kernel, one line each, in the order select_kernels tries them for a
layer: the first that applies to the layer and prefers it wins (kernels with per_layer False
are chosen only for runs of layers on channel blocks). Adding a kernel: a class in its
family's module (or a new module; see TEMPLATE.py), a line here, and its template.
"""
from .. import ops
from ..layout import BLOCKS, PLANES
from . import conv_nchw16c, conv_nchw_direct, conv_nchw_gemm, conv_transpose, conv_winograd, linear

REGISTRY = [
    conv_nchw_direct.DepthwisePlanes(),
    conv_nchw_direct.DepthwiseRows(),
    conv_winograd.WinogradF4x4(),
    conv_winograd.WinogradF2x2(),
    conv_nchw_direct.Taps(),
    conv_nchw_gemm.Im2rowGemm(),
    conv_nchw_gemm.Gemm1x1(),
    conv_nchw_gemm.ShiftedGemm(),
    conv_nchw_gemm.Im2colGemm(),
    conv_nchw_direct.Direct(),
    conv_nchw16c.Pointwise(),
    conv_nchw16c.Depthwise(),
    conv_nchw16c.Direct(),
    conv_nchw16c.Entry(),
    conv_winograd.WinogradF4x4Blocks(),
    conv_winograd.WinogradF2x2Blocks(),
    linear.LinearRows(),
    linear.LinearBlocks(),
    conv_transpose.TransposeInterleave(),
    conv_transpose.TransposeCol2im(),
    conv_transpose.TransposeDirect(),
]


def _by_op():
    table = {}
    for kernel in REGISTRY:
        for op in kernel.ops:
            if kernel.name in table.setdefault(op, {}):
                raise ValueError(f"kernel {kernel.name!r} registered twice for {op}")
            table[op][kernel.name] = kernel
    return table


KERNELS = _by_op()  # op name -> {kernel name: Kernel}, in REGISTRY order


def for_op(op):
    """The kernels of an op, by name ({} for ops with one implementation)."""
    return KERNELS.get(op, {})


def get(node):
    """The kernel chosen for ``node`` (node.meta["kernel"]), or None."""
    name = node.meta.get("kernel")
    return KERNELS[node.op][name] if name else None


def choose(node, ins):
    """The kernel select_kernels gives one layer on its own."""
    return next(k for k in KERNELS[node.op].values()
                if k.per_layer and k.applies(node) and k.preferred(node, ins))


def implementation(node):
    """What generates a layer's code: its kernel when it has one, else its op (ops.Op has the
    same template_for / pack / packed_shapes / scratch / lower / group_layout methods)."""
    return get(node) or ops.REGISTRY[node.op]


def layouts(node):
    """(the layout a layer reads, the layout it writes), as select_kernels chose them."""
    kernel = get(node)
    if kernel is not None:
        return kernel.layout_in, kernel.layout_out
    out = BLOCKS if node.meta.get("layout") == "blocks" else PLANES
    if node.op == "reorder":
        return (PLANES if out == BLOCKS else BLOCKS), out
    return (BLOCKS if out == BLOCKS or node.meta.get("reads") == "blocks" else PLANES), out
