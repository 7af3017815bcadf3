"""Fuse an elementwise activation into the epilogue of the layer that produces its input.

conv -> relu becomes conv with meta["activation"]: the activation is applied to each output
value as it is written, saving one pass over memory. Only when the producer's output has no
other user (otherwise they would see the activated values) and is not itself a model output.
"""
from .. import ops


def fuse_activation(graph):
    for node in graph.nodes():
        act = ops.REGISTRY[node.op]
        if act.activation is None:
            continue
        (src,) = graph.input_names(node.name)
        producer = graph.node(src)
        if not ops.REGISTRY[producer.op].epilogue or "activation" in producer.meta:
            continue
        if len(graph.users(src)) != 1 or src in graph.outputs:
            continue
        producer.meta["activation"] = {"op": node.op, "layer": node.name, "attrs": node.attrs,
                                       "fn": act.activation,
                                       "args": act.activation_args(node)}
        producer.meta.setdefault("fused", []).append({"layer": node.name, "op": node.op})
        graph.replace_all_uses(node.name, src)
        graph.remove(node.name)
    return graph
