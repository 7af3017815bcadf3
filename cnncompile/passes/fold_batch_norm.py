"""Fold a per-channel affine map after a conv or linear layer into that layer's weights:
an inference BatchNorm, or a multiplication by a constant with one value per channel (a
scalar, or ConvNeXt's layer scale of shape (C, 1, 1)).

w' = w * scale, b' = b * scale + shift per output channel. For BatchNorm scale = gamma /
sqrt(var + eps) and shift = beta - mean * scale; for a constant, scale is that constant and
shift 0 (computed in float64 and rounded once). The folded layer disappears; the summary lists
it as fused into the conv."""
import numpy as np

from .. import ops
from ..ops.batch_norm import scale_shift


def _channel_scale(node, shape):
    """The one value per channel of a mul by a constant (its shape that of a sample) over
    values of ``shape``, or None when the constant varies along another dimension."""
    other = node.params.get("other")
    if node.op != "mul" or other is None or other.ndim > len(shape) - 1 or len(shape) < 2:
        return None
    try:
        full = np.broadcast_to(other, tuple(shape[1:]))
    except ValueError:
        return None
    per_channel = full[(slice(None),) + (slice(0, 1),) * (len(shape) - 2)]
    if not np.array_equal(full, np.broadcast_to(per_channel, full.shape)):
        return None
    return per_channel.reshape(-1).astype(np.float64)


def _affine(node, shape):
    """(scale, shift) per channel that ``node`` applies, or None."""
    if node.op == "batch_norm":
        return scale_shift(node)
    scale = _channel_scale(node, shape)
    return None if scale is None else (scale, np.zeros_like(scale))


def fold_batch_norm(graph):
    for node in graph.nodes():
        if node.op not in ("batch_norm", "mul") or len(graph.input_names(node.name)) != 1:
            continue
        (src,) = graph.input_names(node.name)
        producer = graph.node(src)
        if (not ops.REGISTRY[producer.op].folds_batch_norm or len(graph.users(src)) != 1 or src in graph.outputs
                or "activation" in producer.meta or "residual" in producer.meta):
            continue
        affine = _affine(node, producer.meta["shape"])
        if affine is None:
            continue
        scale, shift = affine
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
