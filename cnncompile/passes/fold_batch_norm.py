"""Fold an inference BatchNorm into the conv or linear layer before it:
w' = w * scale, b' = b * scale + shift per output channel, with scale = gamma / sqrt(var + eps)
and shift = beta - mean * scale (computed in float64 and rounded once). The BatchNorm layer
disappears; the summary lists it as fused into the conv."""
import numpy as np

from .. import ops
from ..ops.batch_norm import scale_shift


def fold_batch_norm(graph):
    for node in graph.nodes():
        if node.op != "batch_norm":
            continue
        (src,) = graph.input_names(node.name)
        producer = graph.node(src)
        if (not ops.REGISTRY[producer.op].folds_batch_norm or len(graph.users(src)) != 1 or src in graph.outputs
                or "activation" in producer.meta or "residual" in producer.meta):
            continue
        scale, shift = scale_shift(node)
        w = producer.params["weight"].astype(np.float64)
        bias = producer.params.get("bias")
        b = np.zeros(len(scale)) if bias is None else bias.astype(np.float64)
        # new arrays: the originals may be the model's own parameters
        producer.params["weight"] = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        producer.params["bias"] = (b * scale + shift).astype(np.float32)
        producer.meta.setdefault("fused", []).append({"layer": node.name, "op": node.op})
        graph.replace_all_uses(node.name, src)
        graph.remove(node.name)
    return graph
