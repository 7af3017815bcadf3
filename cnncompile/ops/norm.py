"""LayerNorm and GroupNorm: normalisation by statistics of each sample's own values.

layer_norm normalises each row of the last ``len(normalized_shape)`` dimensions, with a weight
and bias per element of the row; channel_norm is LayerNorm over the channels (dim 1) at each
position of an (N, C, *) value, as ConvNeXt's LayerNorm between permutes computes it without
them (passes/cancel_permutes.py); group_norm normalises each of ``num_groups`` groups of
channels (with their spatial extent), with a weight and bias per channel. InstanceNorm is
group_norm with one channel per group. Both use the biased variance, as torch does.

The C centres the values on the row's first element before it sums them, and normalises
``(x - first) - mean_of_the_differences``: the sums then stay at the scale of the spread, not
of the mean, so inputs far from 0 keep float accuracy.
"""
import math

import numpy as np

from ..errors import ShapeError, UnsupportedError, layer_error
from ..layout import BLOCK, blocks
from ..literals import c_float
from . import Op, register
from .common import describe_source, numel_per_sample, parallel_pass_worth_it


def _normalise(x, axes, eps):
    """(x - mean) / sqrt(biased var + eps) over ``axes``, in float64."""
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _check_param(node, key, expected, hint):
    if key in node.params and node.params[key].shape != tuple(expected):
        raise layer_error(node, f"{node.op} {key} has shape {node.params[key].shape}, expected "
                          f"{tuple(expected)}; {hint}", ShapeError)


def _channel_affine(node, y):
    """y (N, C, *) times the weight plus the bias of each channel, where the layer has them."""
    bshape = (1, y.shape[1]) + (1,) * (y.ndim - 2)
    if "weight" in node.params:
        y = y * node.params["weight"].reshape(bshape)
    if "bias" in node.params:
        y = y + node.params["bias"].reshape(bshape)
    return y.astype(np.float32)


# partial sums a row's statistics run in (templates/ops/_moments.c.j2): a vector of 8 floats
LANES = 8


def _moments(count, eps):
    """The constants of the moments macro for rows of ``count`` values."""
    return dict(count=count, whole=count - count % LANES, lanes=LANES,
                inv_count=c_float(1.0 / count), eps=c_float(eps))


def _flops(node, out_shape):
    # sum, centre, square-add, normalise (2); the affine weight and bias 1 each
    return (5 + ("weight" in node.params) + ("bias" in node.params)) * numel_per_sample(out_shape)


@register
class LayerNorm(Op):
    name = "layer_norm"
    template = "layer_norm.c.j2"
    inplace = True

    def infer_shape(self, node, ins):
        x, norm = ins[0], tuple(node.attrs["normalized_shape"])
        shape = tuple(x.shape)
        if not norm:
            raise layer_error(node, "LayerNorm needs at least one normalised dimension; give "
                              "normalized_shape as the trailing dimensions, e.g. "
                              f"nn.LayerNorm({shape[-1]})", ShapeError)
        if len(norm) >= len(shape):
            raise layer_error(node, f"LayerNorm{norm} normalises over every dimension of the "
                              f"{len(shape)}-D input {shape}, the batch included; the compiled "
                              "model treats samples independently: use "
                              f"nn.LayerNorm({list(shape[1:])})", UnsupportedError)
        if shape[-len(norm):] != norm:
            raise layer_error(node, f"LayerNorm expects trailing dimensions {list(norm)} but "
                              f"receives {describe_source(x)}; use "
                              f"nn.LayerNorm({list(shape[-len(norm):])})", ShapeError)
        for key in ("weight", "bias"):
            _check_param(node, key, norm, "it must match normalized_shape")
        return x.shape

    def reference(self, node, arrays):
        x = arrays[0].astype(np.float64)
        k = len(node.attrs["normalized_shape"])
        y = _normalise(x, tuple(range(x.ndim - k, x.ndim)), node.attrs["eps"])
        if "weight" in node.params:
            y = y * node.params["weight"]
        if "bias" in node.params:
            y = y + node.params["bias"]
        return y.astype(np.float32)

    def flops(self, node, ins, out_shape):
        return _flops(node, out_shape)

    def lower(self, node, ins, out_shape):
        count = math.prod(node.attrs["normalized_shape"])
        return dict(rows=numel_per_sample(out_shape) // count, **_moments(count, node.attrs["eps"]),
                    weight="weight" in node.params, bias="bias" in node.params)


def _steps(plane, most):
    """channel_norm's steps over ``plane`` positions, at most ``most`` a step: the positions
    of a step, the number of steps, and the positions of the last one."""
    tile = min(most, plane)
    tiles = -(-plane // tile)
    return dict(tile=tile, tiles=tiles, last=plane - (tiles - 1) * tile)


# channel_norm's positions per step: the statistics of this many positions at a time, summed
# over the channels in vectors of positions (a tile of 96 channels stays in L1); on channel
# blocks, over the blocks in one 16-channel vector per position
CHANNEL_NORM_TILE = 64
CHANNEL_NORM_BLOCKS_TILE = 8


@register
class ChannelNorm(Op):
    name = "channel_norm"
    template = "channel_norm.c.j2"
    on_blocks_template = "channel_norm_blocks.c.j2"
    inplace = True

    def runs_on_blocks(self, node, ins):
        """A 4-D value: the statistics leave out the padding channels, whose weight and bias
        are zero, so they stay zero."""
        return len(node.meta["shape"]) == 4

    def pack(self, node):
        if node.meta.get("layout") != "blocks":
            return node.params
        c = node.meta["shape"][1]
        n = blocks(c) * BLOCK
        weight = node.params.get("weight", np.ones(c, np.float32))
        bias = node.params.get("bias", np.zeros(c, np.float32))
        return {"weight": np.pad(weight, (0, n - c)), "bias": np.pad(bias, (0, n - c))}

    def infer_shape(self, node, ins):
        shape = tuple(ins[0].shape)
        if len(shape) < 2:
            raise layer_error(node, f"channel_norm takes (N, C, *) inputs but receives "
                              f"{describe_source(ins[0])}", ShapeError)
        for key in ("weight", "bias"):
            _check_param(node, key, (shape[1],), "it must have one value per channel")
        return ins[0].shape

    def reference(self, node, arrays):
        x = arrays[0].astype(np.float64)
        return _channel_affine(node, _normalise(x, 1, node.attrs["eps"]))

    def flops(self, node, ins, out_shape):
        return _flops(node, out_shape)

    def lower(self, node, ins, out_shape):
        channels = out_shape[1]
        plane = numel_per_sample(out_shape) // channels
        if node.meta.get("layout") == "blocks":
            return self._lower_blocks(node, channels, plane)
        return dict(channels=channels, plane=plane, **_steps(plane, CHANNEL_NORM_TILE),
                    inv_count=c_float(1.0 / channels), eps=c_float(node.attrs["eps"]),
                    weight="weight" in node.params, bias="bias" in node.params,
                    parallel=int(parallel_pass_worth_it(numel_per_sample(out_shape))))

    def _lower_blocks(self, node, channels, plane):
        rem = channels % BLOCK
        return dict(blocks=blocks(channels), full=channels // BLOCK, rem=rem,
                    keep=["1.0f"] * rem + ["0.0f"] * (BLOCK - rem),
                    plane=plane, **_steps(plane, CHANNEL_NORM_BLOCKS_TILE),
                    inv_count=c_float(1.0 / channels), eps=c_float(node.attrs["eps"]),
                    parallel=int(parallel_pass_worth_it(blocks(channels) * BLOCK * plane)))


@register
class GroupNorm(Op):
    name = "group_norm"
    template = "group_norm.c.j2"
    inplace = True

    def infer_shape(self, node, ins):
        x, groups = ins[0], node.attrs["num_groups"]
        shape = tuple(x.shape)
        if len(shape) < 2:
            raise layer_error(node, f"GroupNorm takes (N, C, *) inputs but receives "
                              f"{describe_source(x)}", ShapeError)
        c = shape[1]
        if groups <= 0 or c % groups:
            fit = max(g for g in range(1, min(groups, c) + 1) if c % g == 0) if groups > 0 else 1
            raise layer_error(node, f"GroupNorm({groups} groups) cannot split the {c} channels "
                              f"of {describe_source(x)} evenly; use a number of groups that "
                              f"divides {c}, such as {fit}", ShapeError)
        for key in ("weight", "bias"):
            _check_param(node, key, (c,), "it must have one value per channel")
        return x.shape

    def reference(self, node, arrays):
        x = arrays[0].astype(np.float64)
        n, groups = x.shape[0], node.attrs["num_groups"]
        y = _normalise(x.reshape(n, groups, -1), 2, node.attrs["eps"]).reshape(x.shape)
        return _channel_affine(node, y)

    def flops(self, node, ins, out_shape):
        return _flops(node, out_shape)

    def lower(self, node, ins, out_shape):
        channels, groups = out_shape[1], node.attrs["num_groups"]
        plane = numel_per_sample(out_shape) // channels
        per_group = channels // groups
        return dict(groups=groups, per_group=per_group, plane=plane,
                    **_moments(per_group * plane, node.attrs["eps"]),
                    weight="weight" in node.params, bias="bias" in node.params)
