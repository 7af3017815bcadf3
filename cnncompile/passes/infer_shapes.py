"""Static shape inference: every node's output shape and FLOPs, checked by its op's rule."""
from .. import ops


def infer_shapes(graph):
    for node in graph.nodes():
        op = ops.get(node.op, node)
        ins = graph.input_values(node.name)
        shape = tuple(op.infer_shape(node, ins))
        node.meta["shape"] = shape
        node.meta["flops"] = op.flops(node, ins, shape)
    return graph
