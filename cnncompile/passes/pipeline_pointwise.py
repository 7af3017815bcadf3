"""Pipeline a 1x1 convolution into the layer that reads its output: a depthwise convolution,
or a global average pool.

Both run on channel blocks (nchw16c.pointwise, then nchw16c.depthwise or a pool that reads
blocks). One after the other, the 1x1 layer writes its whole output and the reader reads it
back: a large 1x1 output (MobileNetV2's 16 -> 96 expansion on 112x112) goes out to L3 or
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
sums in its scratch (kernels/conv_nchw16c.py: rings; ops/window_pool.py: pipelined_runs).
Memory planning keeps that input alive until the reader has run. Only a pair adjacent in the layer order is pipelined, so
that no layer runs between the two.

Outputs under PIPELINE_MIN_BYTES stay in L2 between two separate layers anyway and gain
nothing (benchmarks/RESULTS.md).
"""
from ..layout import floats

# the 1x1 layer's output per sample from which pipelining pays
PIPELINE_MIN_BYTES = 1 << 20


def worth_pipelining(pw):
    return 4 * floats(pw.meta["shape"]) >= PIPELINE_MIN_BYTES


def reader_kind(node):
    """'depthwise' or 'pool' for a layer that can compute its 1x1 producer's output, or None."""
    if node.meta.get("kernel") == "nchw16c.depthwise":
        return "depthwise"
    if node.op == "adaptive_avg_pool2d" and node.meta.get("reads") == "blocks":
        return "pool"  # a global average pool on blocks (WindowPool.reads_blocks)
    return None


def pipeline_pointwise(graph):
    order = graph.nodes()
    for pw, reader in zip(order, order[1:]):
        kind = reader_kind(reader)
        if (pw.meta.get("kernel") != "nchw16c.pointwise" or kind is None
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
