"""Fuse a residual add into the epilogue of the convolution that computes one operand:
y = conv(x) + r becomes one layer that adds r to each output as it is written (then any
activation after the add fuses too). The other operand r must be computed before the conv
runs, so it becomes the conv's second input; the operand whose conv comes later is chosen."""
from .. import ops


def fuse_residual(graph):
    # one topological order serves the whole pass: it only removes adds and adds edges
    # from earlier nodes to later ones
    nodes = graph.nodes()
    order = {n.name: i for i, n in enumerate(nodes)}
    for node in nodes:
        if node.op != "add" or len(graph.input_names(node.name)) != 2:
            continue
        a, b = graph.input_names(node.name)
        for conv, other in sorted([(a, b), (b, a)], key=lambda pair: -order[pair[0]]):
            p = graph.node(conv)
            if (not ops.REGISTRY[p.op].takes_residual or conv == other or len(graph.users(conv)) != 1
                    or conv in graph.outputs or "activation" in p.meta or "residual" in p.meta
                    or p.meta["shape"] != node.meta["shape"]
                    or graph.node(other).meta["shape"] != node.meta["shape"]
                    or order[other] > order[conv]):
                continue
            graph.connect(other, conv, 1)
            p.meta["residual"] = {"layer": node.name, "value": other}
            p.meta.setdefault("fused", []).append({"layer": node.name, "op": "add"})
            graph.replace_all_uses(node.name, conv)
            graph.remove(node.name)
            break
    return graph
