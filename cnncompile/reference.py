"""The numpy interpreter of a Graph: the oracle every compiled model is tested against.

Each op's reference computes in float64 where it accumulates and returns float32.
"""
import numpy as np

from . import model_io, ops
from .ir import Node


def run(graph, *inputs):
    """Run ``graph`` on its inputs (each (N, ...), in the model's argument order) with numpy;
    returns the model's output as float32: one array, or the tuple, list or dict of arrays
    that forward() returns."""
    if len(inputs) != len(graph.inputs):
        raise ValueError(f"reference.run: the model takes {len(graph.inputs)} input(s), "
                         f"got {len(inputs)}")
    feeds = {}
    for name, x in zip(graph.inputs, inputs):
        x = np.asarray(x, dtype=np.float32)
        expected = tuple(graph.node(name).attrs["shape"][1:])
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"reference.run: expected input {name} of shape (N, "
                             f"{', '.join(map(str, expected))}), got {x.shape}")
        feeds[name] = x
    if len({x.shape[0] for x in feeds.values()}) > 1:
        raise ValueError(f"reference.run: the inputs have batch sizes "
                         f"{[x.shape[0] for x in feeds.values()]}; they must be the same")
    values = {}
    for node in graph.nodes():
        if node.op == "input":
            values[node.name] = feeds[node.name]
            continue
        args = [values[src] for src in graph.input_names(node.name)]
        y = ops.REGISTRY[node.op].reference(node, args)
        if "residual" in node.meta:  # a fused residual add: the second input
            y = (y.astype(np.float64) + args[-1]).astype(np.float32)
        act = node.meta.get("activation")
        if act is not None:
            act_node = Node(act["layer"], act["op"], act.get("attrs", {}))
            y = ops.REGISTRY[act["op"]].reference(act_node, [y])
        values[node.name] = y
    outs = [values[o] for o in graph.outputs]
    if "io" not in graph.meta:
        return outs[0]
    return model_io.rebuild(graph.meta["io"]["tree"], [o.copy() for o in outs])
