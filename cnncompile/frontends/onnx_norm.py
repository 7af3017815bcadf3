"""ONNX normalisations by a sample's own statistics -> cnncompile.nn.functional calls:
LayerNormalization, GroupNormalization (opset 18: a scale and bias per group; opset 21: per
channel) and InstanceNormalization (https://onnx.ai/onnx/operators/)."""
import numpy as np

from ..nn import functional as F
from .onnx_node import converter

# stash_type: the precision of the statistics; the C computes them in float on centred sums,
# as accurate as float (1) allows, and as close to double (11) as float values let it be
STASH_TYPES = (1, 11)


def _stash_type(node):
    stash = node.integer("stash_type", 1)
    if stash not in STASH_TYPES:
        raise node.unsupported(f"stash_type={stash}: statistics are computed in float "
                               "(stash_type=1)")


def _only_first_output(node, what):
    if any(node.proto.output[1:]):
        raise node.unsupported(f"only the normalised output is supported, not {what}; remove "
                               "the extra outputs from the node")


def _per_channel(node, value, what, shape):
    """A constant float tensor broadcast to ``shape`` (ONNX's unidirectional broadcast)."""
    value = node.floats(value, what)
    try:
        return np.ascontiguousarray(np.broadcast_to(value, shape))
    except ValueError:
        raise node.bad(f"{what} has shape {list(value.shape)}, which does not broadcast to "
                       f"{list(shape)}") from None


@converter("LayerNormalization")
def layer_normalization(node, x, scale, bias=None):
    x = node.tensor(x)
    _stash_type(node)
    _only_first_output(node, "Mean and InvStdDev")
    axis = node.integer("axis", -1)
    if not -x.dim() <= axis < x.dim():
        raise node.bad(f"axis {axis} is out of range for a {x.dim()}-D input")
    shape = tuple(x.shape[axis % x.dim():])
    weight = _per_channel(node, scale, "Scale", shape)
    bias = None if bias is None else _per_channel(node, bias, "B", shape)
    return F.layer_norm(x, shape, weight, bias, eps=node.number("epsilon", 1e-5))


@converter("GroupNormalization")
def group_normalization(node, x, scale, bias):
    x = node.tensor(x)
    _stash_type(node)
    groups = node.integer("num_groups")
    c = x.shape[1] if x.dim() > 1 else 0
    if groups <= 0 or c % groups:
        raise node.bad(f"num_groups={groups} does not divide the {c} channels")
    # opset 18 gives one scale and bias per group, opset 21 one per channel
    count = groups if node.opset < 21 else c
    params = [node.floats(v, what) for v, what in ((scale, "scale"), (bias, "bias"))]
    if any(p.shape != (count,) for p in params):
        raise node.bad(f"scale and bias must each have {count} values (one per "
                       f"{'group' if node.opset < 21 else 'channel'} in opset {node.opset}), "
                       f"got {[list(p.shape) for p in params]}")
    if count != c:
        params = [np.repeat(p, c // groups) for p in params]
    return F.group_norm(x, groups, params[0], params[1], eps=node.number("epsilon", 1e-5))


@converter("InstanceNormalization")
def instance_normalization(node, x, scale, bias):
    x = node.tensor(x)
    c = x.shape[1] if x.dim() > 1 else 0
    params = [node.floats(v, what) for v, what in ((scale, "scale"), (bias, "B"))]
    if any(p.shape != (c,) for p in params):
        raise node.bad(f"scale and B must each have {c} values (the channels), got "
                       f"{[list(p.shape) for p in params]}")
    return F.group_norm(x, c, params[0], params[1], eps=node.number("epsilon", 1e-5))
