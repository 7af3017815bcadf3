"""The optimisation pipeline: plain functions Graph -> Graph, run in the order listed here.

``run(graph, after="fuse_activation")`` stops after the named pass, so the graph can be
inspected at any point (``cnncompile inspect --after fuse_activation``).
"""
from .cancel_permutes import cancel_permutes
from .eliminate_dead_code import eliminate_dead_code
from .eliminate_identity import eliminate_identity
from .fold_batch_norm import fold_batch_norm
from .fuse_activation import fuse_activation
from .fuse_residual import fuse_residual
from .infer_shapes import infer_shapes
from .lower_padding_mode import lower_padding_mode
from .pipeline_pointwise import pipeline_pointwise
from .plan_memory import plan_memory
from .select_kernels import select_kernels
from .select_layout import select_layout

PIPELINE = [
    lower_padding_mode,   # conv padding_mode reflect/replicate/circular -> pad + conv
    infer_shapes,         # static shapes and FLOPs; every layer checked before any C exists
    eliminate_dead_code,  # layers whose output never reaches the model output
    eliminate_identity,   # Identity, and Dropout (a no-op at inference)
    cancel_permutes,      # permute -> LayerNorm/activations -> inverse permute: no permutes
    fold_batch_norm,      # BatchNorm after a conv/linear -> that layer's weights and bias
    fuse_residual,        # conv(x) + r -> the conv adds r as it writes its output
    fuse_activation,      # conv/linear/pool + ReLU -> one layer with an epilogue
    infer_shapes,         # refresh after rewriting
    select_kernels,       # each layer's kernel and layout: runs of layers on channel blocks
    select_layout,        # a reorder wherever a layer reads another layout than it is given
    pipeline_pointwise,   # 1x1 -> depthwise/global pool: the 1x1 output computed by its reader
    plan_memory,          # one static workspace, buffers reused by liveness
]

PASS_NAMES = [p.__name__ for p in PIPELINE]


def run(graph, after=None, skip=(), lint=False, on_pass=None):
    """Run the pipeline on ``graph`` (modified in place and returned).

    after: stop after the last pass of that name. skip: names of passes not to run (memory
    planning cannot be skipped before code generation). lint: check invariants between passes.
    on_pass(name, graph): called after each pass, e.g. to print the graph.
    """
    if after is not None and after not in PASS_NAMES:
        raise ValueError(f"unknown pass {after!r}; passes are: {', '.join(dict.fromkeys(PASS_NAMES))}")
    unknown = set(skip) - set(PASS_NAMES)
    if unknown:
        raise ValueError(f"unknown pass(es) {sorted(unknown)}; passes are: "
                         f"{', '.join(dict.fromkeys(PASS_NAMES))}")
    last = max(i for i, n in enumerate(PASS_NAMES) if n == after) if after else len(PIPELINE) - 1
    for p in PIPELINE[:last + 1]:
        if p.__name__ in skip:
            continue
        graph = p(graph)
        if lint:
            graph.lint()
        if on_pass is not None:
            on_pass(p.__name__, graph)
    return graph
