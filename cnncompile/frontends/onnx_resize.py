"""ONNX Resize (opsets 10 to 19) and Upsample -> the interpolate op, with ONNX Runtime's
coordinate arithmetic (the op's convention 'onnx': coordinates divided by the scale).

Only the spatial dimensions (2 and up) may change; roi is read only by tf_crop_and_resize,
which is refused, as are cubic, antialias and keep_aspect_ratio_policy other than stretch.
"""
import math

import numpy as np

from .. import trace
from ..trace import Tensor
from .onnx_node import converter

COORDS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
          "tf_half_pixel_for_nn")
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _mode(node):
    mode = node.attrs.get("mode", "nearest")
    if mode == "cubic":
        raise node.unsupported("mode 'cubic' is not supported; use mode 'linear' (bilinear)")
    if mode not in ("nearest", "linear"):
        raise node.bad(f"mode {mode!r} is not nearest, linear or cubic")
    return mode


def _values(node, value, what, dtype):
    if value is None:
        return None
    if isinstance(value, Tensor):
        raise node.unsupported(f"{what} must be a constant (an initializer); here it is "
                               "computed from the input")
    value = np.asarray(value).reshape(-1)
    if value.size == 0:
        return None
    if dtype == "float" and not np.issubdtype(value.dtype, np.floating):
        raise node.bad(f"{what} is a tensor of {value.dtype}; it must be float")
    if dtype == "int" and not np.issubdtype(value.dtype, np.integer):
        raise node.bad(f"{what} is a tensor of {value.dtype}; it must be int64")
    return value


def _full(node, value, axes, rank, fill, what):
    """``value`` for the listed ``axes``, as a list over all ``rank`` dimensions."""
    if value is None:
        return None
    if len(value) != len(axes):
        raise node.bad(f"{what} has {len(value)} values for {len(axes)} axes (rank {rank})")
    full = list(fill)
    for axis, v in zip(axes, value):
        full[axis] = v
    return full


def resize_to(node, x, scales, sizes, mode, coord, rounding):
    """The interpolate node for ONNX ``scales`` (floats over every dimension) or ``sizes``."""
    rank = x.dim()
    if not 3 <= rank <= 5:
        raise node.unsupported(f"resizing a rank-{rank} input; cnncompile resizes (N, C, L), "
                               "(N, C, H, W) and (N, C, D, H, W)")
    shape = list(x.shape)
    if (scales is None) == (sizes is None):
        raise node.bad("exactly one of scales and sizes must be given")
    if scales is not None:
        if any(not math.isfinite(s) or s <= 0 for s in scales):
            raise node.bad(f"scales {list(scales)} must be positive")
        if scales[0] != 1 or scales[1] != 1:
            raise node.unsupported(f"scales {list(scales)} resize the batch or the channels; "
                                   "only the spatial dimensions (2 and up) can be resized")
        out = [int(np.floor(np.float32(s) * np.float32(n))) for s, n in zip(scales, shape)]
        spatial_scales = tuple(float(np.float32(s)) for s in scales[2:])
    else:
        out = [int(s) for s in sizes]
        if out[1] != shape[1]:  # the batch entry is whatever the exporter traced with
            raise node.unsupported(f"sizes {out} change the channels ({shape[1]}); only the "
                                   "spatial dimensions (2 and up) can be resized")
        spatial_scales = (None,) * (rank - 2)
    if min(out[2:]) <= 0 or max(out[2:]) > 1 << 20:
        raise node.bad(f"output spatial size {out[2:]} is not a sensible size")
    return trace.apply("interpolate", [x], {
        "size": tuple(out[2:]), "mode": mode, "coord": coord, "nearest_mode": rounding,
        "scales": spatial_scales, "convention": "onnx", "antialias": False})


@converter("Resize")
def resize(node, x, *rest):
    x = node.tensor(x)
    rank = x.dim()
    mode = _mode(node)
    if node.opset < 11:  # Resize-10: (X, scales), asymmetric coordinates, Upsample's rounding
        scales = _values(node, rest[0] if rest else None, "scales", "float")
        return resize_to(node, x, scales, None, mode, "asymmetric", "simple")
    _, scales, sizes = (list(rest) + [None] * 3)[:3]
    coord = node.attrs.get("coordinate_transformation_mode", "half_pixel")
    if coord not in COORDS:
        raise node.unsupported(f"coordinate_transformation_mode {coord!r} is not supported; "
                               f"use one of {', '.join(COORDS)}")
    rounding = node.attrs.get("nearest_mode", "round_prefer_floor")
    if rounding not in NEAREST:
        raise node.bad(f"nearest_mode {rounding!r} is not one of {', '.join(NEAREST)}")
    if node.attrs.get("antialias", 0):
        raise node.unsupported("antialias=1 is not supported; use antialias=0")
    policy = node.attrs.get("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        raise node.unsupported(f"keep_aspect_ratio_policy {policy!r} is not supported; give "
                               "the output sizes (policy 'stretch')")
    axes = list(range(rank))
    if "axes" in node.attrs:
        axes = [a + rank if a < 0 else a for a in node.attrs["axes"]]
        if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
            raise node.bad(f"axes {node.attrs['axes']} are not distinct axes of a rank-{rank} "
                           "input")
    scales = _full(node, _values(node, scales, "scales", "float"), axes, rank, [1.0] * rank,
                   "scales")
    sizes = _full(node, _values(node, sizes, "sizes", "int"), axes, rank, list(x.shape), "sizes")
    return resize_to(node, x, scales, sizes, mode, coord, rounding)


@converter("Upsample")
def upsample(node, x, scales=None):
    """Upsample-7 (scales attribute) and -9 (scales input): asymmetric coordinates."""
    x = node.tensor(x)
    mode = node.attrs.get("mode", "nearest")
    mode = "linear" if mode == "bilinear" else mode
    node.attrs["mode"] = mode
    mode = _mode(node)
    if scales is None and "scales" in node.attrs:
        scales = np.asarray(node.attrs["scales"], np.float32)
    scales = _values(node, scales, "scales", "float")
    if scales is None or len(scales) != x.dim():
        raise node.bad(f"scales must have one value per dimension ({x.dim()})")
    return resize_to(node, x, [float(s) for s in scales], None, mode, "asymmetric", "simple")
