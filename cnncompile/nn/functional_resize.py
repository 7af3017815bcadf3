"""torch.nn.functional's resizing functions: interpolate, upsample, upsample_nearest,
upsample_bilinear, with torch's signatures, defaults and argument checks.

torch's coordinates (ATen UpSample.h): nearest copies floor(dst * s), nearest-exact
floor((dst + 0.5) * s), linear reads max((dst + 0.5) * s - 0.5, 0) (or dst * (in - 1) /
(out - 1) with align_corners=True), where s = 1 / scale_factor when scale_factor is given and
recompute_scale_factor is not True, in / out otherwise.
"""
import numpy as np

from .. import trace
from ..ops.interpolate import output_size

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear"]

# torch mode -> (op mode, coordinate mapping, nearest rounding, input ranks it accepts)
TORCH_MODES = {
    "nearest": ("nearest", "asymmetric", "floor", (3, 4, 5)),
    "nearest-exact": ("nearest", "tf_half_pixel_for_nn", "floor", (3, 4, 5)),
    "linear": ("linear", None, "floor", (3,)),
    "bilinear": ("linear", None, "floor", (4,)),
    "trilinear": ("linear", None, "floor", (5,)),
}
REFUSED = ("bicubic", "area")  # torch modes cnncompile refuses (the op's check_attrs says so)
INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")


def _rank(input):
    return input.dim() if isinstance(input, trace.Tensor) else np.ndim(input)


def _spatial(input):
    shape = input.shape if isinstance(input, trace.Tensor) else np.shape(input)
    return [int(s) for s in shape[2:]]


def _per_dim(value, dims, what):
    if isinstance(value, (list, tuple)):
        if len(value) != dims:
            raise ValueError(f"Input and {what} must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{dims} and {what} of {list(value)}. Please provide input tensor "
                             f"in (N, C, d1, d2, ...,dK) format and {what} in (o1, o2, ...,oK) "
                             "format.")
        return list(value)
    return [value] * dims


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    rank = _rank(input)
    dims = rank - 2
    if mode in TORCH_MODES and mode in INTERPOLATING and rank in (3, 4, 5) \
            and rank not in TORCH_MODES[mode][3]:
        raise NotImplementedError(f"Got {rank}D input, but {mode} mode needs "
                                  f"{TORCH_MODES[mode][3][0]}D input")
    if rank not in (3, 4, 5):
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported "
                                  f"(got {rank}D) for the modes: nearest | linear | bilinear | "
                                  f"bicubic | trilinear | area | nearest-exact (got {mode})")
    if mode not in TORCH_MODES and mode not in REFUSED:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not one of torch's modes: "
                                  "nearest | linear | bilinear | bicubic | trilinear | area | "
                                  "nearest-exact")
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if antialias and not (mode in ("bilinear", "bicubic") and rank == 4):
        raise ValueError("Anti-alias option is restricted to bilinear and bicubic modes and "
                         "requires a 4-D tensor as input")
    in_sizes = _spatial(input)
    if size is not None:
        sizes = [int(s) for s in _per_dim(size, dims, "output size")]
        scales = [None] * dims
    else:
        factors = [float(f) for f in _per_dim(scale_factor, dims, "scale_factor")]
        sizes = [output_size(s, f) for s, f in zip(in_sizes, factors)]
        scales = [None] * dims if recompute_scale_factor or mode == "area" else factors
    return _resize(input, sizes, scales, mode, align_corners, antialias)


def _resize(input, sizes, scales, mode, align_corners=None, antialias=False):
    """The interpolate node: output ``sizes``; ``scales`` per dimension the scale factor the
    source coordinates use (None: in / out), as ATen's upsample ops take them."""
    op_mode, coord, rounding, _ = TORCH_MODES.get(mode, (mode, "asymmetric", "floor", ()))
    if coord is None:
        coord = "align_corners" if align_corners else "half_pixel"
    scales = tuple(float(s) if s is not None and s > 0 else None for s in scales)
    return trace.apply("interpolate", [input], {
        "size": tuple(int(s) for s in sizes), "mode": op_mode, "coord": coord,
        "nearest_mode": rounding, "scales": scales, "convention": "torch",
        "antialias": bool(antialias)})


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ATen's upsample ops (what torch.export records for F.interpolate) -> torch mode
ATEN_MODES = {"upsample_nearest": "nearest", "_upsample_nearest_exact": "nearest-exact",
              "upsample_linear": "linear", "upsample_bilinear": "bilinear",
              "upsample_trilinear": "trilinear"}


def interpolate_from_aten(name, input, output_size, *args):
    """One aten.upsample_* call (``name`` as 'upsample_bilinear2d.vec' or
    'upsample_nearest2d.default'), with ATen's arguments after the input:

    - ``.vec``: (output_size, [align_corners,] scale_factors): exactly one is given; it is
      F.interpolate(input, size=output_size) or F.interpolate(input, scale_factor=
      scale_factors) (recompute_scale_factor unset), with the align_corners given.
    - ``.default``: (output_size, [align_corners,] *scales): the output size, and the scale
      factors the coordinates use (None: in / out).
    """
    op, _, overload = name.partition(".")
    mode = ATEN_MODES.get(op[:-2])
    if mode is None or op[-2:] not in ("1d", "2d", "3d"):
        raise ValueError(f"{name} is not one of ATen's upsample ops")
    linear = mode not in ("nearest", "nearest-exact")
    align_corners = bool(args[0]) if linear else None
    rest = args[1:] if linear else args
    dims = int(op[-2])
    if overload == "vec":
        factors = rest[0] if rest else None
        if output_size is not None:
            return interpolate(input, size=list(output_size), mode=mode,
                               align_corners=align_corners)
        return interpolate(input, scale_factor=list(factors), mode=mode,
                           align_corners=align_corners)
    scales = (list(rest) + [None] * dims)[:dims]
    return _resize(input, list(output_size), scales, mode, align_corners)
