"""Choose each layer's kernel from its shapes (ops with several: Op.kernels), recorded in
node.meta["kernel"]. graph.meta["kernel_overrides"] (layer -> kernel) forces a choice, for
tests and for comparing kernels. node.meta["in_shapes"] records the input shapes a kernel's
Op.supports may need."""
from .. import ops


def select_kernels(graph):
    overrides = dict(graph.meta.get("kernel_overrides") or {})
    for node in graph.nodes():
        op = ops.REGISTRY[node.op]
        if not op.kernels:
            continue
        ins = graph.input_values(node.name)
        node.meta["in_shapes"] = [tuple(v.shape) for v in ins]
        kernel = overrides.pop(node.name, None) or op.select_kernel(node, ins)
        if not op.supports(node, kernel):
            usable = [k for k in op.kernels if op.supports(node, k)]
            raise ValueError(f"{node.name}: kernel {kernel!r} cannot compute this {node.op}; "
                             f"choose from {', '.join(usable)}")
        node.meta["kernel"] = kernel
    if overrides:
        raise ValueError(f"kernel overrides name layers that have no kernel choice: "
                         f"{', '.join(overrides)}")
    return graph
