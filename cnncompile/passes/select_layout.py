"""Insert the reorders that the chosen layouts imply (select_kernels chose them).

Requires: select_kernels. Ensures: every layer reads its inputs in the layout it expects
(kernels.layouts): a reorder into blocks where a layer that reads blocks has an input on
planes, back to planes where a layer that reads planes, or the model's output, has one on
blocks. A value read through several edges is reordered once.
"""
from .. import ir, kernels
from ..layout import BLOCKS, PLANES


def select_layout(graph):
    into, out_of = {}, {}
    for node in graph.nodes():
        wants = kernels.layouts(node)[0]
        for pos, src in enumerate(graph.input_names(node.name)):
            has = kernels.layouts(graph.node(src))[1]
            if wants == has:
                continue
            made = into if wants == BLOCKS else out_of
            if src not in made:
                made[src] = _reorder(graph, src, wants)
            graph.set_input(node.name, pos, made[src])
    for i, name in enumerate(graph.outputs):
        if kernels.layouts(graph.node(name))[1] == BLOCKS:
            if name not in out_of:
                out_of[name] = _reorder(graph, name, PLANES)
            graph.outputs[i] = out_of[name]
    return graph


def _reorder(graph, src, to):
    """A reorder layer of ``src``'s value into layout ``to``."""
    to = "blocks" if to == BLOCKS else "planes"
    shape = graph.node(src).meta["shape"]
    node = ir.Node(graph.unique_name(f"{src}.to_{to}"), "reorder", attrs={"to": to},
                   meta={"shape": shape, "flops": 0})
    if to == "blocks":
        node.meta["layout"] = "blocks"
    graph.add(node, [src])
    return node.name
