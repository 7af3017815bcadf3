"""Pipeline a 1x1 convolution into the layer that reads its output: a depthwise convolution,
or a global average pool.

Both run on channel blocks (pointwise_nchwc, then depthwise_nchwc or a pool that reads
blocks). One after the other, the 1x1 layer writes its whole output and the reader reads it
back: MobileNetV2's 16 -> 96 expansion on 112x112 writes 4.8 MB, which goes out to L3 or
memory and comes back. Pipelined, the reader's function computes the 1x1 layer's output a
little at a time, just before it reads it, and the 1x1 output is never stored whole:
- a depthwise layer computes it a row at a time into a ring that holds, for every block, the
  last rows one output row reads (3 for a 3x3 kernel), just before the output rows that
  read them;
- a global average pool computes it in runs of pixels, each tile of the 1x1 layer adding
  its outputs into the pool's sums instead of storing them.

Both layers stay in the graph with their weights, so the reference interpreter runs them as
before. The 1x1 layer gets meta["pipelined_into"] (and meta["reader"], the kind of reader:
its pixel tile is chosen for the runs it is computed in), no buffer and no call of its own; the
reader gets meta["pipelined_from"], reads the 1x1 layer's input, and keeps its rings or
sums in its scratch (blocked.rings, window_pool.pipelined_runs). Memory planning keeps that input
alive until the reader has run. Only a pair adjacent in the layer order is pipelined, so
that no layer runs between the two.

Measured on an AMD EPYC (Zen 4), one thread: MobileNetV2's 16 -> 96 on 112x112 with its
stride-2 depthwise 0.669 -> 0.510 ms, its 24 -> 144 on 56x56 with a stride-1 depthwise 0.391 ->
0.353 ms, with a stride-2 one 0.271 -> 0.259 ms; the model 0.986-0.988x the time at one
thread, about 0.98x at two. seed_separable's 128 -> 256 on 32x32 into its global pool: the
model 0.986-0.987x the time at one thread (minimum of interleaved runs). Outputs under 1 MB
(MobileNetV2's 28x28 and smaller layers) stay in L2 between two separate layers anyway and
measured the same or slower pipelined.
"""
from ..ops import blocked

# the 1x1 layer's output per sample from which pipelining pays
PIPELINE_MIN_BYTES = 1 << 20


def worth_pipelining(pw):
    return 4 * blocked.floats(pw.meta["shape"]) >= PIPELINE_MIN_BYTES


def reader_kind(node):
    """'depthwise' or 'pool' for a layer that can compute its 1x1 producer's output, or None."""
    if node.meta.get("kernel") == "depthwise_nchwc":
        return "depthwise"
    if node.op == "adaptive_avg_pool2d" and node.meta.get("reads") == "blocks":
        return "pool"  # a global average pool on blocks (WindowPool.reads_blocks)
    return None


def pipeline_pointwise(graph):
    order = graph.nodes()
    for pw, reader in zip(order, order[1:]):
        kind = reader_kind(reader)
        if (pw.meta.get("kernel") != "pointwise_nchwc" or kind is None
                or "residual" in pw.meta or pw.name in graph.outputs
                or graph.users(pw.name) != [reader.name]
                or graph.input_names(reader.name)[0] != pw.name
                or graph.input_names(reader.name).count(pw.name) != 1
                or "pipelined_from" in pw.meta or not worth_pipelining(pw)):
            continue
        pw.meta["pipelined_into"] = reader.name
        pw.meta["reader"] = kind
        reader.meta["pipelined_from"] = pw.name
        reader.meta.setdefault("fused", []).insert(0, {"layer": pw.name,
                                                        "op": "1x1 conv2d, pipelined"})
    return graph
