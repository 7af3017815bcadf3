"""Phase planes: the zero-padded input split by stride phase, which the shifted GEMM, the
taps and depthwise_planes kernels and the entry kernel onto channel blocks read
(runtime/cnn_im2col.h: cnn_pad_phases).

For stride s, plane (c, ph, pw) holds every s-th padded row and column from (ph, pw). Kernel
tap (c, kh, kw) then reads plane (c, kh*dh % sh, kw*dw % sw) from row kh*dh // sh, column
kw*dw // sw onwards: the same slice for every output pixel. A product is computed over a grid
of OH rows of Wq columns (the last Wq - OW of each discarded) and then compacted.
"""
import numpy as np

from ..ops.conv import conv_pads
from .gemm import NR_MAX

CHUNK_FLOATS = 1 << 16  # a chunk of C of at most 256 KiB, in L2 for the epilogue


def _aligned(n):
    return -(-n // 16) * 16


def shifted_layout(node, in_shape, out_shape):
    a = node.attrs
    rank = len(a["kernel_size"])
    lead = (1,) * (2 - rank)
    size = lead + tuple(in_shape[2:])
    kernel, dil = lead + tuple(a["kernel_size"]), lead + tuple(a["dilation"])
    stride = lead + tuple(a["stride"])
    pads = [(0, 0)] * (2 - rank) + conv_pads(a)
    out = lead + tuple(out_shape[2:])
    taps = [[(k * d) // s for k in range(n)] for n, d, s in zip(kernel, dil, stride)]
    hq, wq = (max(-(-(sz + sum(p)) // s), o + t[-1])
              for sz, p, s, o, t in zip(size, pads, stride, out, taps))
    cg = a["in_channels"] // a["groups"]
    plane = hq * wq
    # only the phases some tap reaches are built: min(stride, kernel span) per dimension
    nph, npw = (min(s, (k - 1) * d + 1) for s, k, d in zip(stride, kernel, dil))
    phases = nph * npw
    grid = out[0] * wq
    c, kh, kw = np.meshgrid(np.arange(cg), np.arange(kernel[0]) * dil[0],
                            np.arange(kernel[1]) * dil[1], indexing="ij")
    offsets = ((c * phases + kh % stride[0] * npw + kw % stride[1]) * plane
               + kh // stride[0] * wq + kw // stride[1]).ravel().tolist()
    slack = taps[1][-1] + NR_MAX
    m = a["out_channels"] // a["groups"]
    # the product goes a few grid rows at a time, each chunk through the epilogue while in
    # L2; a chunk's last column block may run up to NR_MAX - 1 columns past its end, hence
    # the extra columns of C
    chunk_rows = max(1, min(out[0], CHUNK_FLOATS // (m * wq)))
    # without padding, the entry kernel reads the input in place (tap offsets into the
    # input, pixels stride_w and rows stride_h input rows apart) instead of copying phases
    in_place = all(p == (0, 0) for p in pads)
    in_offsets = ((c * size[0] + kh) * size[1] + kw).ravel().tolist()
    return dict(in_place=in_place, in_offsets=in_offsets, row_step=stride[0] * size[1],
                hq=hq, wq=wq, stride_h=stride[0], stride_w=stride[1], phases_h=nph, phases_w=npw,
                pad_top=pads[0][0],
                pad_left=pads[1][0], ldc=-(-grid // NR_MAX) * NR_MAX + NR_MAX, grid=grid,
                slack=slack, offsets=offsets, chunk_rows=chunk_rows,
                planes_floats=phases * plane + slack,
                c_offset=_aligned(cg * phases * plane + slack))


def shifted_extra(node, ins, out_shape):
    """The template constants of a kernel that reads phase planes."""
    sh = shifted_layout(node, ins[0].shape, out_shape)
    return dict(shifted=sh, dw_taps=[dict(k=i, off=off) for i, off in enumerate(sh["offsets"])])
