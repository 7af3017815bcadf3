"""What every convolution kernel's template receives: the layer's geometry as 3-D (depth,
height, width; a 1-D conv is 1 x 1 x L, a 2-D one 1 x H x W), its matrix-product shape, and
whether it runs on threads. Each kernel adds its own constants in ``extra``."""
import math

from ..ops.common import parallel_worth_it
from ..ops.conv import conv_pads
from . import gemm
from .base import Kernel

CONV_OPS = ("conv1d", "conv2d")
CONV2D = ("conv2d",)


def inner_range(size, out, k, s, p, d):
    """Output indices whose whole window lies inside an input dimension: [lo, hi)."""
    lo = min(-(-p // s), out)
    return lo, max(lo, min(out, (size - 1 + p - (k - 1) * d) // s + 1))


def is_depthwise(node):
    """One input channel per group (and more than one group)."""
    a = node.attrs
    return a["in_channels"] == a["groups"] > 1


class ConvKernel(Kernel):
    ops = CONV_OPS
    # how many times longer it takes per FLOP than the GEMM, so that the FLOP threshold for
    # threads (ops/common.py: parallel_worth_it) stays one of time
    slowdown = 1

    def applies(self, node):
        return len(node.attrs["kernel_size"]) <= 2

    def columns(self, node, m, kdim, n):
        """Output pixels per step of the product."""
        return n

    def x_group(self, node, c, g, size, n):
        """Floats of the input one group reads."""
        return c // g * math.prod(size)

    def extra(self, node, ins, out_shape):
        """The kernel's own constants, added to the geometry."""
        return {}

    def lower(self, node, ins, out_shape):
        a = node.attrs
        assert a.get("padding_mode", "zeros") == "zeros", "lower_padding_mode did not run"
        c, k, g = ins[0].shape[1], out_shape[1], a["groups"]
        lead = 3 - len(a["kernel_size"])
        size = (1,) * lead + tuple(ins[0].shape[2:])
        out = (1,) * lead + tuple(out_shape[2:])
        kernel = (1,) * lead + tuple(a["kernel_size"])
        stride = (1,) * lead + tuple(a["stride"])
        dil = (1,) * lead + tuple(a["dilation"])
        pads = [(0, 0)] * lead + conv_pads(a)
        m, kdim, n = gemm.gemm_shape(node, out_shape)
        ctx = dict(m=m, kdim=kdim, n=n, a_group=-(-m // gemm.MR) * gemm.MR * kdim,
                   columns=self.columns(node, m, kdim, n),
                   cols_inner=inner_range(size[2], out[2], kernel[2], stride[2], pads[2][0],
                                          dil[2]),
                   taps=[dict(k=i, off=i * dil[2]) for i in range(kernel[2])],
                   x_group=self.x_group(node, c, g, size, n), y_group=m * n,
                   gemm_epilogue=gemm.epilogue_in_gemm(node), on_blocks=False,
                   rank3=len(a["kernel_size"]) == 3, residual="residual" in node.meta,
                   in_channels=c, out_channels=k,
                   parallel=int(parallel_worth_it(node, self.slowdown)),
                   groups=g, c_per_group=c // g, k_per_group=k // g,
                   in_d=size[0], in_h=size[1], in_w=size[2], in_plane=size[1] * size[2],
                   in_vol=math.prod(size), out_d=out[0], out_h=out[1], out_w=out[2],
                   out_plane=out[1] * out[2], out_vol=math.prod(out),
                   kd=kernel[0], kh=kernel[1], kw=kernel[2], kernel_area=kernel[1] * kernel[2],
                   kernel_vol=math.prod(kernel), stride_d=stride[0], stride_h=stride[1],
                   stride_w=stride[2], dil_d=dil[0], dil_h=dil[1], dil_w=dil[2],
                   pad_front=pads[0][0], pad_top=pads[1][0], pad_left=pads[2][0])
        ctx.update(self.extra(node, ins, out_shape))
        return ctx
