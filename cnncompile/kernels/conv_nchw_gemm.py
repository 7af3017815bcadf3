"""Convolutions on planes as a matrix product per group (runtime/cnn_gemm.h): weights
(M x K) in MR-row panels times the input's K x N columns, N the output pixels. The kernels
differ in how they present the input as that matrix."""
import math

from ..ops.conv import conv_pads
from .conv_base import ConvKernel
from .gemm import (MR, NR_MAX, epilogue_in_gemm, gemm_shape, pack_columns, packed_params,
                   panels_shape)
from .phases import shifted_extra, shifted_layout

IM2COL_FLOATS = 1 << 17  # an im2col chunk of at most 512 KiB, to stay in L2
# Output pixels up to which im2row_gemm puts pixels in rows and output channels in the vector
# columns (a 2x2 image would fill 4 of a 32-column block otherwise) ...
IM2ROW_MAX_PIXELS = 64
# ... when the weights are large enough to repay copying the patches
IM2ROW_MIN_CHANNELS = 128
# ... and for 1x1 kernels, which gemm_1x1 reads as they are, on fewer pixels still
IM2ROW_MAX_PIXELS_1X1 = 32


def im2col_columns(kdim, n):
    """Output pixels per im2col chunk: a multiple of NR_MAX that keeps the chunk in L2."""
    cols = max(NR_MAX, IM2COL_FLOATS // kdim // NR_MAX * NR_MAX)
    return min(cols, -(-n // NR_MAX) * NR_MAX)


def strided(node):
    return any(s != 1 for s in node.attrs["stride"])


class PanelsGemm(ConvKernel):
    """The weights in MR-row panels (pack_panels), the bias as it is."""

    def pack(self, node):
        return packed_params(node, node.params["weight"], node.attrs["groups"])

    def packed_shapes(self, node):
        w = node.params["weight"]
        return dict({n: a.shape for n, a in node.params.items()},
                    weight=panels_shape(w.shape[0], math.prod(w.shape[1:]), node.attrs["groups"]))


class Gemm1x1(PanelsGemm):
    """A 1x1 kernel without padding: the input is the K x N matrix as it is (strided: its
    pixels gathered into scratch first)."""
    name = "nchw.gemm_1x1"
    template = "conv_gemm.c.j2"

    def applies(self, node):
        a = node.attrs
        return (super().applies(node) and all(k == 1 for k in a["kernel_size"])
                and all(p == (0, 0) for p in conv_pads(a)))

    def columns(self, node, m, kdim, n):
        if epilogue_in_gemm(node):
            return n
        # chunks whose output stays in L2 for the epilogue pass
        return min(n, max(NR_MAX, IM2COL_FLOATS // 2 // m // NR_MAX * NR_MAX))

    def x_group(self, node, c, g, size, n):
        return c // g * n

    def scratch(self, node, ins, out_shape):  # the gathered input
        return ins[0].shape[1] * gemm_shape(node, out_shape)[2] if strided(node) else 0

    def extra(self, node, ins, out_shape):
        return dict(coords=0, im2col=False, subsample=strided(node))


class Im2colGemm(PanelsGemm):
    """The input's patches copied into columns, a chunk of pixels at a time."""
    name = "nchw.im2col_gemm"
    template = "conv_gemm.c.j2"

    def columns(self, node, m, kdim, n):
        return im2col_columns(kdim, n)

    def scratch(self, node, ins, out_shape):  # the patches, and two ints per column
        _, kdim, n = gemm_shape(node, out_shape)
        return (kdim + 2) * im2col_columns(kdim, n)

    def extra(self, node, ins, out_shape):
        _, kdim, n = gemm_shape(node, out_shape)
        return dict(coords=kdim * im2col_columns(kdim, n), im2col=True, subsample=False)


class ShiftedGemm(PanelsGemm):
    """Each tap reads the same slice of a phase plane for every output pixel (phases.py):
    the product runs over the planes through a table of tap offsets, no patches copied."""
    name = "nchw.shifted_gemm"
    template = "conv_shifted.c.j2"

    def scratch(self, node, ins, out_shape):
        sh = shifted_layout(node, ins[0].shape, out_shape)
        return sh["c_offset"] + gemm_shape(node, out_shape)[0] * sh["ldc"]

    def extra(self, node, ins, out_shape):
        return shifted_extra(node, ins, out_shape)


class Im2rowGemm(ConvKernel):
    """Small images with many output channels: pixels in the rows of the product, output
    channels in its vector columns, the patches copied as MR-row panels."""
    name = "nchw.im2row_gemm"
    template = "conv_im2row.c.j2"

    def applies(self, node):
        return super().applies(node) and node.attrs["groups"] == 1

    def preferred(self, node, ins):
        a = node.attrs
        pointwise = all(k == 1 for k in a["kernel_size"])
        return (a["out_channels"] >= IM2ROW_MIN_CHANNELS and math.prod(node.meta["shape"][2:])
                <= (IM2ROW_MAX_PIXELS_1X1 if pointwise else IM2ROW_MAX_PIXELS))

    def pack(self, node):
        w = node.params["weight"]
        return dict(node.params, weight=pack_columns(w.reshape(w.shape[0], -1).T))

    def packed_shapes(self, node):
        w = node.params["weight"]
        return dict({n: a.shape for n, a in node.params.items()},
                    weight=(-(-w.shape[0] // NR_MAX), math.prod(w.shape[1:]), NR_MAX))

    def scratch(self, node, ins, out_shape):
        return im2row_layout(node, out_shape)["scratch"]

    def extra(self, node, ins, out_shape):
        return dict(im2row=im2row_layout(node, out_shape))

    def group_layout(self, node, ins, out_shape, samples):
        """The patches of all the samples stacked, one product: the weights (the bulk of
        such a layer's data) read once for the group."""
        _, kdim, n = gemm_shape(node, out_shape)
        rows = -(-samples * n // MR) * MR
        ldc = im2row_layout(node, out_shape)["ldc"]
        c_offset = -(-rows * kdim // 16) * 16
        return dict(samples=samples, c_offset=c_offset, scratch=c_offset + rows * ldc)


def im2row_layout(node, out_shape):
    """im2row_gemm's scratch: the patches as MR-row panels (pixels x K), then the transposed
    output (pixels x out channels padded to NR_MAX)."""
    _, kdim, n = gemm_shape(node, out_shape)
    rows = -(-n // MR) * MR
    ldc = -(-out_shape[1] // NR_MAX) * NR_MAX
    c_offset = -(-rows * kdim // 16) * 16
    return dict(rows=rows, ldc=ldc, c_offset=c_offset, scratch=c_offset + rows * ldc)
