"""Conv padding_mode reflect/replicate/circular -> a pad layer, then a conv without padding,
which is how torch computes it (F.pad, then conv with padding 0)."""
from ..ir import Node
from .. import ops
from ..ops.conv import ConvNd, conv_pads


def lower_padding_mode(graph):
    for node in graph.nodes():
        mode = node.attrs.get("padding_mode", "zeros")
        if not isinstance(ops.REGISTRY[node.op], ConvNd) or mode == "zeros":
            continue
        pads = conv_pads(node.attrs)
        pad = Node(graph.unique_name(f"{node.name}.pad"), "pad",
                   {"pads": ((0, 0),) + tuple(pads), "mode": mode, "value": 0.0},
                   meta={"source": node.meta.get("source")})
        graph.insert_before(node.name, pad)
        node.attrs["padding"] = (0,) * len(pads)
        node.attrs["padding_mode"] = "zeros"
    return graph
