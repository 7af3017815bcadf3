"""The numpy interpreter of a Graph: the oracle every compiled model is tested against.

Each op's reference computes in float64 where it accumulates and returns float32.
"""
import numpy as np

from . import ops
from .ir import Node


def run(graph, x):
    """Run ``graph`` on ``x`` (N, ...) with numpy; returns the model output as float32."""
    x = np.asarray(x, dtype=np.float32)
    (inp,) = graph.inputs
    expected = tuple(graph.node(inp).attrs["shape"][1:])
    if tuple(x.shape[1:]) != expected:
        raise ValueError(f"reference.run: expected input of shape (N, "
                         f"{', '.join(map(str, expected))}), got {x.shape}")
    values = {}
    for node in graph.nodes():
        if node.op == "input":
            values[node.name] = x
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
    (out,) = graph.outputs
    return values[out]
