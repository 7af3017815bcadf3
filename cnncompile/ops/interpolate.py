"""Interpolate: resize the spatial dimensions of (N, C, L), (N, C, H, W) or (N, C, D, H, W)
by nearest-neighbour or (bi/tri)linear interpolation (F.interpolate, nn.Upsample, ONNX
Resize/Upsample).

Python computes, for each output index of each resized dimension, the input index (nearest)
or the two input indices and their weights (linear), with the exact float32 arithmetic of
torch (ATen UpSample.h) or of ONNX Runtime (``convention``); the C only gathers and blends.

Attributes: ``size`` the output spatial sizes; ``mode`` 'nearest' or 'linear'; ``coord`` how
an output index maps to an input coordinate (ONNX's coordinate_transformation_mode names:
asymmetric, half_pixel, pytorch_half_pixel, align_corners, tf_half_pixel_for_nn);
``nearest_mode`` how nearest rounds it (floor, ceil, round_prefer_floor, round_prefer_ceil,
simple); ``scales`` per dimension the out/in ratio the coordinates use, or None for
out_size/in_size; ``convention`` 'torch' (multiplies by 1/scale) or 'onnx' (divides by scale).
"""
import math

import numpy as np

from ..errors import ShapeError, UnsupportedError, layer_error
from ..literals import c_float
from . import Op, register
from .common import PARALLEL_MIN_FLOPS, describe_source, numel_per_sample

MODES = ("nearest", "linear")
COORDS = ("asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners",
          "tf_half_pixel_for_nn")
NEAREST = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil", "simple")
f32 = np.float32
# how many GEMM FLOPs' time one gathered (and blended) output takes, so that the threshold
# for threads is one of time, as for pooling
GATHER_SLOWDOWN = 16


def _multiplier(in_size, out_size, scale, convention):
    """What an output coordinate is multiplied by (torch), or divided by (onnx)."""
    if convention == "onnx":
        return f32(scale) if scale else f32(out_size) / f32(in_size)
    # torch's compute_scales_value: 1/scale in double, then float; else in/out in float
    return f32(1.0 / scale) if scale else f32(in_size) / f32(out_size)


def source_coords(attrs, dim, in_size, out_size):
    """The float32 input coordinate of every output index along spatial dimension ``dim``."""
    coord, convention = attrs["coord"], attrs["convention"]
    dst = np.arange(out_size, dtype=f32)
    half = f32(0.5)
    if coord == "align_corners":
        if out_size <= 1:
            return np.zeros(out_size, f32)
        if convention == "onnx":
            return dst * f32(in_size - 1) / f32(out_size - 1)
        return dst * (f32(in_size - 1) / f32(out_size - 1))
    m = _multiplier(in_size, out_size, attrs["scales"][dim], convention)
    scaled = (lambda v: v / m) if convention == "onnx" else (lambda v: v * m)
    if coord == "asymmetric":
        return scaled(dst)
    if coord == "tf_half_pixel_for_nn":
        return scaled(dst + half)
    src = scaled(dst + half) - half
    if coord == "pytorch_half_pixel" and out_size <= 1:
        return np.zeros(out_size, f32)
    return src


def nearest_index(attrs, dim, in_size, out_size):
    """The input index each output index copies, clamped into the input. torch's CPU kernel
    for 2-D nearest (not nearest-exact) leaves a dimension whose size does not change as it is,
    whatever the scale."""
    if (attrs["convention"], attrs["coord"], len(attrs["size"])) == ("torch", "asymmetric", 2) \
            and in_size == out_size:
        return np.arange(in_size)
    src = source_coords(attrs, dim, in_size, out_size).astype(np.float64)
    rounding = attrs["nearest_mode"]
    if rounding == "simple":  # ONNX Resize-10 and Upsample: ceil when shrinking
        rounding = "ceil" if out_size < in_size else "floor"
    if rounding == "floor":
        idx = np.floor(src)
    elif rounding == "ceil":
        idx = np.ceil(src)
    else:  # round half away from zero, or down at exact halves (std::round, as ONNX Runtime)
        idx = np.sign(src) * np.floor(np.abs(src) + 0.5)
        if rounding == "round_prefer_floor":
            idx = np.where(src == np.floor(src) + 0.5, np.floor(src), idx)
    return np.clip(idx, 0, in_size - 1).astype(np.int64)


def linear_taps(attrs, dim, in_size, out_size):
    """(i0, i1, w0, w1): output o = w0 * x[i0] + w1 * x[i1], the coordinate clamped into the
    input as torch (max(src, 0), i1 = i0 at the last index) and ONNX Runtime both do. torch's
    CPU kernel leaves a dimension whose size does not change as it is, whatever the scale."""
    if attrs["convention"] == "torch" and in_size == out_size:
        i = np.arange(in_size)
        return i, i, np.ones(in_size, f32), np.zeros(in_size, f32)
    src = np.clip(source_coords(attrs, dim, in_size, out_size), f32(0), f32(in_size - 1))
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = (src - i0.astype(f32)).astype(f32)
    return i0, i1, (f32(1) - w1).astype(f32), w1


def _dhw(shape):
    """A per-sample (C, *spatial) shape as (C, D, H, W), with 1 for missing dimensions."""
    return (shape[0],) + (1,) * (4 - len(shape)) + tuple(shape[1:])


@register
class Interpolate(Op):
    name = "interpolate"
    template = "interpolate.c.j2"

    def check_attrs(self, node):
        a = node.attrs
        if a.get("antialias"):
            raise layer_error(node, "interpolate with antialias=True is not supported; use "
                              "antialias=False (mode='bilinear' without it, or an avg_pool2d "
                              "before a downsampling resize)", UnsupportedError)
        if a["mode"] not in MODES:
            raise layer_error(node, f"interpolate mode {a['mode']!r} is not supported; use "
                              "mode='bilinear' (or 'nearest', 'nearest-exact', 'linear', "
                              "'trilinear')", UnsupportedError)
        if a["coord"] not in COORDS or a["nearest_mode"] not in NEAREST:
            raise layer_error(node, f"interpolate: coordinate mapping {a['coord']!r} / "
                              f"{a['nearest_mode']!r} is not supported", UnsupportedError)

    def infer_shape(self, node, ins):
        self.check_attrs(node)
        x, size = ins[0], tuple(node.attrs["size"])
        if not 3 <= len(x.shape) <= 5:
            raise layer_error(node, f"interpolate expects a 3-D, 4-D or 5-D input (N, C, "
                              f"*spatial) but receives {len(x.shape)}-D {describe_source(x)}",
                              ShapeError)
        if len(size) != len(x.shape) - 2:
            raise layer_error(node, f"interpolate: {len(size)} output sizes for the "
                              f"{len(x.shape) - 2} spatial dimensions of {describe_source(x)}",
                              ShapeError)
        if min(size) <= 0 or min(x.shape[2:]) <= 0:
            raise layer_error(node, f"interpolate: input and output sizes must be greater "
                              f"than 0; output size {size} for {describe_source(x)}", ShapeError)
        return tuple(x.shape[:2]) + size

    def tables(self, node, in_shape, out_shape):
        """Per spatial dimension: the nearest indices, or the linear taps."""
        if node.attrs["mode"] == "nearest":
            return [(nearest_index(node.attrs, d, i, o),) for d, (i, o) in
                    enumerate(zip(in_shape[2:], out_shape[2:]))]
        return [linear_taps(node.attrs, d, i, o) for d, (i, o) in
                enumerate(zip(in_shape[2:], out_shape[2:]))]

    def reference(self, node, arrays):
        x = arrays[0]
        out_shape = tuple(x.shape[:2]) + tuple(node.attrs["size"])
        y = x
        for d, table in enumerate(self.tables(node, x.shape, out_shape)):
            axis = 2 + d
            if node.attrs["mode"] == "nearest":
                y = np.take(y, table[0], axis=axis)
                continue
            i0, i1, w0, w1 = table
            bcast = [1] * y.ndim
            bcast[axis] = -1
            y = (np.take(y, i0, axis=axis) * w0.reshape(bcast)
                 + np.take(y, i1, axis=axis) * w1.reshape(bcast))
        return y.astype(np.float32)

    def flops(self, node, ins, out_shape):
        if node.attrs["mode"] == "nearest":
            return 0
        return 3 * (len(out_shape) - 2) * numel_per_sample(out_shape)

    def scratch(self, node, ins, out_shape):
        """3-D linear: a plane blended along D, then a row blended along H (2-D linear keeps
        its row on the stack, so that channels can run on several threads)."""
        if node.attrs["mode"] == "nearest" or len(out_shape) != 5:
            return 0
        _, _, h, w = _dhw(ins[0].shape[1:])
        return h * w + w

    def lower(self, node, ins, out_shape):
        c, d, h, w = _dhw(ins[0].shape[1:])
        _, od, oh, ow = _dhw(out_shape[1:])
        tables = self.tables(node, ins[0].shape, out_shape)
        tables = [None] * (3 - len(tables)) + tables  # (depth, height, width)
        strides = (h * w, w, 1)
        dims = []
        for name, table, stride, n in zip("dhw", tables, strides, (od, oh, ow)):
            if table is None:  # a dimension the input does not have: nearest reads index 0
                table = (np.zeros(1, np.int64),)
            dims.append(_lower_dim(name, table, stride, n))
        linear = node.attrs["mode"] == "linear"
        return dict(mode=node.attrs["mode"], channels=c, in_vol=d * h * w, out_vol=od * oh * ow,
                    in_plane=h * w, out_plane=oh * ow, in_w=w, out_w=ow,
                    d=dims[0], h=dims[1], w=dims[2],
                    blend_d=linear and len(out_shape) == 5, blend_h=linear and len(out_shape) >= 4,
                    plane_offset=w,  # in scratch, the blended plane follows the blended row
                    parallel=int(len(out_shape) < 5 and numel_per_sample(out_shape)
                                 * GATHER_SLOWDOWN >= PARALLEL_MIN_FLOPS))


def _lower_dim(name, table, stride, n):
    """C tables of one dimension: input offsets (index * stride) and, for linear, weights."""
    dim = dict(size=n, i0=f"{name}0", i1=f"{name}1", w0=f"{name}w0", w1=f"{name}w1")
    dim["off0"] = [int(i) * stride for i in table[0]]
    if len(table) > 1:
        dim["off1"] = [int(i) * stride for i in table[1]]
        dim["wt0"] = [c_float(v) for v in table[2]]
        dim["wt1"] = [c_float(v) for v in table[3]]
    return dim


def output_size(in_size, scale):
    """torch's and ONNX's output length for a scale factor: floor(in * scale)."""
    return int(math.floor(float(in_size) * float(scale)))
