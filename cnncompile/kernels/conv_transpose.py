"""ConvTranspose2d kernels: the direct scatter, and the product columns = W^T x (a GEMM of
(K/g * kH * kW) x (C/g) weights by the input read in place), whose columns are then added
into the output at their taps (col2im), or, where the taps tile the output, interleaved into
it with the bias and the activation, one write per pixel."""
import math

from ..ops.common import parallel_worth_it
from .base import Kernel
from .gemm import MR, packed_params


def tiles_output(node):
    """Whether the kernel's taps tile the output without overlap or gaps: kernel == stride,
    no padding, no dilation, no output_padding. Input pixel (i, j) then owns the output block
    [i*s, i*s + s) x [j*s, j*s + s), tap (a, b) its pixel (i*s + a, j*s + b)."""
    a = node.attrs
    return (tuple(a["kernel_size"]) == tuple(a["stride"]) and not any(a["padding"])
            and all(d == 1 for d in a["dilation"]) and not any(a["output_padding"]))


class TransposeKernel(Kernel):
    ops = ("conv_transpose2d",)

    def lower(self, node, ins, out_shape):
        a = node.attrs
        _, c, h, w = ins[0].shape
        _, k, oh, ow = out_shape
        g = a["groups"]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (a["kernel_size"], a["stride"], a["padding"],
                                                  a["dilation"])
        rows = k // g * kh * kw
        return dict(gemm_rows=rows, a_group=-(-rows // MR) * MR * (c // g),
                    parallel=int(parallel_worth_it(node)), out_vol=k * oh * ow,
                    groups=g, c_per_group=c // g, k_per_group=k // g, in_h=h, in_w=w,
                    in_plane=h * w, out_h=oh, out_w=ow, out_plane=oh * ow, kh=kh, kw=kw,
                    kernel_area=kh * kw, tap_plane=kh * kw * h * w, stride_h=sh, stride_w=sw,
                    dil_h=dh, dil_w=dw, pad_top=ph, pad_left=pw)


class TransposeDirect(TransposeKernel):
    name = "nchw.direct"
    template = "conv_transpose2d.c.j2"

    def preferred(self, node, ins):
        return False  # only by override: the GEMM kernels compute every layer faster


class TransposeGemm(TransposeKernel):
    """Weights per group as rows (k, kh, kw) by columns c, in MR-row panels; the columns of
    the product in scratch."""

    def pack(self, node):
        w = node.params["weight"]  # (C, K/g, kH, kW)
        g = node.attrs["groups"]
        c, kg = w.shape[:2]
        wt = w.reshape(g, c // g, kg * w.shape[2] * w.shape[3]).transpose(0, 2, 1)
        return packed_params(node, wt.reshape(g * wt.shape[1], c // g), g)

    def scratch(self, node, ins, out_shape):
        a = node.attrs
        return (a["out_channels"] // a["groups"] * math.prod(a["kernel_size"])
                * math.prod(ins[0].shape[2:]))


class TransposeInterleave(TransposeGemm):
    name = "nchw.gemm_interleave"
    template = "conv_transpose2d_interleave.c.j2"

    def applies(self, node):
        return tiles_output(node)


class TransposeCol2im(TransposeGemm):
    name = "nchw.gemm_col2im"
    template = "conv_transpose2d_gemm.c.j2"
