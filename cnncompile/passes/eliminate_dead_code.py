"""Remove layers whose output never reaches a model output (computed but unused in forward)."""
import networkx as nx


def eliminate_dead_code(graph):
    live = set(graph.outputs) | set(graph.inputs)
    for out in graph.outputs:
        live |= nx.ancestors(graph.nx, out)
    for name in list(graph.nx.nodes):
        if name not in live:
            graph.nx.remove_node(name)
    return graph
