"""The op registry. One file per op family; each declares, once, everything the pipeline needs:

- ``infer_shape(node, ins)``: the output shape, or a CompileError naming the layer;
- ``reference(node, arrays)``: the numpy implementation, the oracle for every test;
- ``flops(node, ins, out_shape)``: floating-point operations per sample (2 per multiply-add);
- ``param_count(node)``: number of learned values, as torch counts them;
- ``template`` and ``lower(node, ins, out_shape)``: the C template under templates/ops/ and
  the precomputed constants it receives; ``pack(node)``: the arrays it reads. Ops with
  several implementations (convolutions, linear) leave these to their kernels
  (cnncompile/kernels/), which have the same methods.

Adding an op: a new module in this package with a class decorated by ``@register``; the
tests find it here.
"""
import importlib
import math
import pkgutil

from ..errors import UnsupportedError
from ..op_registry import REGISTRY  # op name -> Op, filled by register()


class Op:
    name = None
    template = None      # templates/ops/<template>; None for ops that emit no code
    arity = 1            # number of inputs; None for variadic
    epilogue = False     # can apply a fused elementwise activation to its output
    activation = None    # activation ops: the runtime C function (cnn_runtime.h) they apply
    alias = False        # output shares its input's memory (no code is emitted)
    inplace = False      # may write its output over its input
    folds_batch_norm = False  # weight and bias per output channel: a BatchNorm after it folds in
    takes_residual = False    # adds a residual operand as it stores (passes/fuse_residual.py)
    reads_blocks_template = None  # reads channel blocks, writes planes (reads_blocks)
    on_blocks_template = None     # reads and writes channel blocks, inside a run (runs_on_blocks)
    pipelined_template = None     # computes its 1x1 producer (passes/pipeline_pointwise.py)

    def check_attrs(self, node):
        """Reject options cnncompile does not support (UnsupportedError). Needs no input
        shapes, so the tracer runs it even after an unsupported layer."""

    def infer_shape(self, node, ins):
        raise NotImplementedError

    def reference(self, node, arrays):
        raise NotImplementedError

    def flops(self, node, ins, out_shape):
        return 0

    def param_count(self, node):
        return sum(int(p.size) for p in node.params.values())

    def lower(self, node, ins, out_shape):
        return {}

    def template_for(self, node):
        if "pipelined_from" in node.meta:
            return self.pipelined_template
        if node.meta.get("reads") == "blocks":
            return self.reads_blocks_template
        if node.meta.get("layout") == "blocks" and self.on_blocks_template:
            return self.on_blocks_template
        return self.template

    def reads_blocks(self, node, ins):
        """Whether the layer can read its input in channel blocks (cnncompile/layout.py) and write
        planes, with reads_blocks_template: select_kernels then puts no reorder before it."""
        return False

    def runs_on_blocks(self, node, ins):
        """Whether the layer can read and write channel blocks (on_blocks_template), and so be
        part of a run on blocks (passes/select_kernels.py) without reorders around it."""
        return False

    def group_layout(self, node, ins, out_shape, samples):
        """Layers that can compute several samples at once (the template's <fn>_group): the
        constants that variant needs for up to ``samples`` samples, including its
        ``scratch`` floats; None for layers that run per sample."""
        return None

    def scratch(self, node, ins, out_shape):
        """Floats of temporary memory the layer needs while it runs (placed by plan_memory)."""
        return 0

    def pack(self, node):
        """The arrays the C reads, by name (templates see their symbols as p.<name>): the
        params as they are, unless the kernel wants them transformed at compile time."""
        return node.params

    def packed_shapes(self, node):
        """The shapes of pack(node)'s arrays, by name. Ops whose packing is costly say so
        without doing it, so that a cached build need not pack at all."""
        return {name: a.shape for name, a in self.pack(node).items()}

    def activation_args(self, node):
        """Activation ops: the extra constant arguments of their C function, as C literals."""
        return []


def register(cls):
    if cls.name in REGISTRY:
        raise ValueError(f"op {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls()
    return cls


def get(name, node=None):
    try:
        return REGISTRY[name]
    except KeyError:
        layer = node.name if node is not None else None
        raise UnsupportedError(f"op {name!r} is not supported by cnncompile", layer=layer) from None


def numel(shape):
    return math.prod(shape)


def _discover():
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


_discover()
