"""Remove Identity and inference-time Dropout nodes: their users read their input directly."""


def eliminate_identity(graph):
    for node in graph.nodes():
        if node.op == "identity":
            (src,) = graph.input_names(node.name)
            graph.replace_all_uses(node.name, src)
            graph.remove(node.name)
    return graph
