"""The GEMM that several kernels share (runtime/cnn_gemm.h): its tile sizes, its weight
packing, and the epilogue its micro-kernel applies as it stores C.

C (M x N) = A (M x K) x B (K x N): A is the weights in panels of MR rows, B the input (or
its patches) in columns, N the output pixels.
"""
import math

import numpy as np

from ..ops.activations import VECTOR_ACTIVATIONS

MR = 8              # rows per weight panel: CNN_MR in runtime/cnn_gemm.h
NR_MAX = 32         # the widest micro-kernel's columns: chunks are multiples of it


def activation_code(node):
    """The CNN_ACT_ code of the layer's fused activation, or None when the micro-kernel
    cannot apply it."""
    return VECTOR_ACTIVATIONS.get(node.meta.get("activation", {}).get("fn"))


def epilogue_in_gemm(node):
    """The CNN_ACT_ code when the micro-kernel can apply the whole epilogue, else None."""
    return None if "residual" in node.meta else activation_code(node)


def gemm_shape(node, out_shape):
    """(M, K, N) of a convolution as a matrix product per group: weights (M x K) times input
    patches (K x N), with N the output pixels."""
    a = node.attrs
    return (a["out_channels"] // a["groups"], a["in_channels"] // a["groups"] *
            math.prod(a["kernel_size"]), math.prod(out_shape[2:]))


def pack_panels(w, groups):
    """Weights (K, C/g, *k) -> per group, MR-row panels of the M x K matrix, rows padded with
    zeros to a multiple of MR: a[g][panel][k][MR], the order the micro-kernel reads."""
    m = w.shape[0] // groups
    kdim = int(np.prod(w.shape[1:]))
    mpad = -(-m // MR) * MR
    a = np.zeros((groups, mpad, kdim), np.float32)
    a[:, :m] = w.reshape(groups, m, kdim)
    return np.ascontiguousarray(a.reshape(groups, mpad // MR, MR, kdim).transpose(0, 1, 3, 2))


def panels_shape(rows, kdim, groups):
    """The shape pack_panels gives ``rows`` rows of ``kdim`` values in ``groups`` groups."""
    return (groups, -(-rows // groups // MR), kdim, MR)


def packed_params(node, matrix, groups):
    """``matrix`` (groups * M x K) in MR-row panels, and the node's bias as it is."""
    packed = {"weight": pack_panels(matrix, groups)}
    if "bias" in node.params:
        packed["bias"] = node.params["bias"]
    return packed


def pack_columns(b):
    """A K x N matrix (or a stack of them) -> N padded with zeros to a multiple of NR_MAX and
    cut into panels of NR_MAX columns: b[..., panel][k][NR_MAX], the layout
    cnn_gemm_bpacked_block reads."""
    *lead, k, n = b.shape
    panels = -(-n // NR_MAX)
    out = np.zeros((*lead, panels, k, NR_MAX), np.float32)
    for p in range(panels):
        cols = b[..., p * NR_MAX:(p + 1) * NR_MAX]
        out[..., p, :, :cols.shape[-1]] = cols
    return out
