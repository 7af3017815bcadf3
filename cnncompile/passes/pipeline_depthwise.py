"""Pipeline a 1x1 convolution into the depthwise convolution that reads its output.

Both run on channel blocks (pointwise_nchwc, depthwise_nchwc). One after the other, the 1x1
layer writes its whole output and the depthwise layer reads it back: MobileNetV2's 16 -> 96
expansion on 112x112 writes 4.8 MB, which goes out to L3 or memory and comes back. Pipelined,
the depthwise layer's function computes the 1x1 layer's output a row at a time into a ring
that holds, for every block, the last rows one output row reads (3 for a 3x3 kernel), just
before the output rows that read them. The 1x1 output is never stored whole.

Both layers stay in the graph with their weights, so the reference interpreter runs them as
before. The 1x1 layer gets meta["pipelined_into"], no buffer and no call of its own; the
depthwise layer gets meta["pipelined_from"], reads the 1x1 layer's input, and keeps its rings
in its scratch (ops/blocked.py: rings). Memory planning keeps that input alive until the
depthwise layer has run. Only a pair adjacent in the layer order is pipelined, so that no
layer runs between the two.

Measured on an AMD EPYC (Zen 4), one thread: MobileNetV2's 16 -> 96 on 112x112 with its
stride-2 depthwise 0.669 -> 0.510 ms, its 24 -> 144 on 56x56 with a stride-1 depthwise 0.391 ->
0.353 ms, with a stride-2 one 0.271 -> 0.259 ms; the model 0.986-0.988x the time at one
thread, about 0.98x at two. Outputs under 1 MB (MobileNetV2's 28x28 and smaller layers)
stay in L2 between two separate layers anyway and measured the same or slower pipelined.
"""
from ..ops import blocked

# the 1x1 layer's output per sample from which pipelining pays
PIPELINE_MIN_BYTES = 1 << 20


def worth_pipelining(pw):
    return 4 * blocked.floats(pw.meta["shape"]) >= PIPELINE_MIN_BYTES


def pipeline_depthwise(graph):
    order = graph.nodes()
    for pw, dw in zip(order, order[1:]):
        if (pw.meta.get("kernel") != "pointwise_nchwc" or dw.meta.get("kernel") != "depthwise_nchwc"
                or "residual" in pw.meta or pw.name in graph.outputs
                or graph.users(pw.name) != [dw.name]
                or graph.input_names(dw.name).count(pw.name) != 1
                or graph.input_names(dw.name)[0] != pw.name
                or "pipelined_from" in pw.meta or not worth_pipelining(pw)):
            continue
        pw.meta["pipelined_into"] = dw.name
        dw.meta["pipelined_from"] = pw.name
        dw.meta.setdefault("fused", []).insert(0, {"layer": pw.name, "op": "1x1 conv2d, pipelined"})
    return graph
