"""Conv padding_mode reflect/replicate/circular -> a pad layer, then a conv without padding,
which is how torch computes it (F.pad, then conv with padding 0)."""
from ..ir import Node
from ..ops.conv import conv_pads

CONVS = ("conv1d", "conv2d", "conv3d")


def lower_padding_mode(graph):
    for node in graph.nodes():
        mode = node.attrs.get("padding_mode", "zeros")
        if node.op not in CONVS or mode == "zeros":
            continue
        pads = conv_pads(node.attrs)
        pad = Node(graph.unique_name(f"{node.name}.pad"), "pad",
                   {"pads": ((0, 0),) + tuple(pads), "mode": mode, "value": 0.0},
                   meta={"source": node.meta.get("source")})
        graph.insert_before(node.name, pad)
        node.attrs["padding"] = (0,) * len(pads)
        node.attrs["padding_mode"] = "zeros"
    return graph
