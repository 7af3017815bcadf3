"""Conv1d, Conv2d, Conv3d: y[k] = b[k] + sum over the group's input channels c of
w[k, c] (*) x[c], with stride, zero padding (or 'same'/'valid'), dilation and groups.

One op per rank, one template for all: a 1-D conv runs as a 2-D conv of height 1, and only
the 3-D case emits the loops over depth. Padding modes other than zeros are turned into a
separate pad layer by passes/lower_padding_mode.py; the reference here handles them all.
"""
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ShapeError
from ..ir import layer_error
from . import Op, blocked, register, winograd
from .common import describe_source, out_size, parallel_worth_it

NUMPY_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                  "circular": "wrap"}


def conv_pads(attrs):
    """Per spatial dimension (before, after). 'same' puts the odd pixel after, as torch does."""
    padding, kernel, dilation = attrs["padding"], attrs["kernel_size"], attrs["dilation"]
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "same":
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
    return [(p, p) for p in padding]


def describe_spatial(dims):
    return "x".join(str(d) for d in dims)


MR = 8              # rows per weight panel: CNN_MR in runtime/cnn_gemm.h
NR_MAX = 32         # the widest micro-kernel's columns: chunks are multiples of it
GEMM_KC = 256       # CNN_GEMM_KC
IM2COL_FLOATS = 1 << 17  # an im2col chunk of at most 512 KiB, to stay in L2
# Output pixels up to which a convolution's GEMM puts pixels in rows and output channels in
# the vector columns (im2row_gemm): a 2x2 image fills 4 of a 32-column block otherwise.
IM2ROW_MAX_PIXELS = 64
# ... when the weights are large enough to repay copying the patches: 16 -> 32 channels on
# a 7x7 output ran at half the shifted GEMM's speed, 512 channels on 2x2-7x7 up to 2x faster.
IM2ROW_MIN_CHANNELS = 128
# For 1x1 kernels gemm_1x1 reads the input as it is: im2row only repays on fewer pixels
# (measured, one thread: 512 -> 512 on 4x4 0.14 ms against 0.26; on 7x7, 960 -> 160 0.21
# against 0.19 and the 256 -> 512 stride-2 downsample 0.37 against 0.25)
IM2ROW_MAX_PIXELS_1X1 = 32
# activations the GEMM micro-kernel applies as it stores its block of C (runtime/cnn_vec.h,
# CNN_ACT_*), with the bias, saving a pass over the output; others run after the GEMM
GEMM_ACTIVATIONS = {None: "CNN_ACT_NONE", "cnn_relu": "CNN_ACT_RELU",
                    "cnn_relu6": "CNN_ACT_RELU6"}


def inner_range(size, out, k, s, p, d):
    """Output indices whose whole window lies inside an input dimension: [lo, hi)."""
    lo = min(-(-p // s), out)
    return lo, max(lo, min(out, (size - 1 + p - (k - 1) * d) // s + 1))


def gemm_shape(node, ins, out_shape):
    """(M, K, N) of the convolution as a matrix product per group: weights (M x K) times
    input patches (K x N), with N the output pixels."""
    a = node.attrs
    return (a["out_channels"] // a["groups"], a["in_channels"] // a["groups"] *
            math.prod(a["kernel_size"]), math.prod(out_shape[2:]))


def im2col_columns(kdim, n):
    """Output pixels per im2col chunk: a multiple of NR_MAX that keeps the chunk in L2."""
    cols = max(NR_MAX, IM2COL_FLOATS // kdim // NR_MAX * NR_MAX)
    return min(cols, -(-n // NR_MAX) * NR_MAX)


def packed_params(node, matrix, groups):
    """The arrays a GEMM kernel reads: ``matrix`` (groups * M x K) in MR-row panels, and the
    bias as it is."""
    packed = {"weight": pack_panels(matrix, groups)}
    if "bias" in node.params:
        packed["bias"] = node.params["bias"]
    return packed


def pack_panels(w, groups):
    """Weights (K, C/g, *k) -> per group, MR-row panels of the M x K matrix, rows padded with
    zeros to a multiple of MR: a[g][panel][k][MR], the order the micro-kernel reads."""
    m = w.shape[0] // groups
    kdim = int(np.prod(w.shape[1:]))
    mpad = -(-m // MR) * MR
    a = np.zeros((groups, mpad, kdim), np.float32)
    a[:, :m] = w.reshape(groups, m, kdim)
    return np.ascontiguousarray(a.reshape(groups, mpad // MR, MR, kdim).transpose(0, 1, 3, 2))


def pack_columns(b):
    """A K x N matrix (or a stack of them) -> N padded with zeros to a multiple of NR_MAX and
    cut into panels of NR_MAX columns: b[..., panel][k][NR_MAX], the layout
    cnn_gemm_bpacked_block reads (runtime/cnn_gemm.h)."""
    *lead, k, n = b.shape
    panels = -(-n // NR_MAX)
    out = np.zeros((*lead, panels, k, NR_MAX), np.float32)
    for p in range(panels):
        cols = b[..., p * NR_MAX:(p + 1) * NR_MAX]
        out[..., p, :, :cols.shape[-1]] = cols
    return out


def im2row_layout(node, ins, out_shape):
    """The im2row_gemm kernel's scratch: the patches as MR-row panels (pixels x K), then the
    transposed output (pixels x out channels padded to NR_MAX)."""
    _, kdim, n = gemm_shape(node, ins, out_shape)
    rows = -(-n // MR) * MR
    ldc = -(-out_shape[1] // NR_MAX) * NR_MAX
    c_offset = -(-rows * kdim // 16) * 16
    return dict(rows=rows, ldc=ldc, c_offset=c_offset, scratch=c_offset + rows * ldc)


def depthwise_planes_floats(node):
    """Stack floats of the depthwise_planes kernel: one channel's phase planes and its grid."""
    sh = shifted_layout(node, node.meta["in_shapes"][0], node.meta["shape"])
    return sh["planes_floats"] + sh["grid"]


# Convolutions with at most this many taps (in_channels x kernel area) skip the GEMM, whose
# micro-kernel would store its whole tile of C every few multiply-adds. Measured against
# shifted_gemm, one thread: 4 taps (1 -> 16 channels, 2x2 stride 2 on 200x200) 0.53x the
# time, 3 taps (a 1x1 conv of 3 channels) 0.65x; 8 taps 1.4x, 9-27 taps 1.4-3x.
TAPS_MAX = 4
# depthwise_planes keeps a channel's padded planes and sums on each thread's stack
DEPTHWISE_STACK_FLOATS = 1 << 15  # 128 KiB
# how many times longer a depthwise kernel takes per FLOP than the GEMM (measured 4-10x in
# MobileNetV2): its layers are worth threads at that fraction of the GEMM's FLOP threshold
DEPTHWISE_SLOWDOWN = 8
# ... and the blocked depthwise kernel (60-90 GFLOP/s) from half of it: MobileNetV2's 7x7
# layers of 960 channels (0.85 MFLOP) read what both threads of the 1x1 layer before them
# wrote, which one thread alone fetched half of from the other core
BLOCKED_DEPTHWISE_SLOWDOWN = 2


def shifted_layout(node, in_shape, out_shape):
    """The shifted_gemm kernel's geometry. The input is copied into zero-padded phase planes
    (runtime/cnn_im2col.h: cnn_pad_phases): for stride s, plane (c, ph, pw) holds every s-th
    padded row and column from (ph, pw). Kernel tap (c, kh, kw) then reads plane
    (c, kh*dh % sh, kw*dw % sw) from row kh*dh // sh, column kw*dw // sw onwards, the same
    slice for every output pixel. The product is computed over a grid of OH rows of Wq
    columns (the last Wq - OW of each discarded) into scratch, then compacted."""
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
    # the product is computed a few grid rows at a time, and each chunk goes through the
    # epilogue while it is still in L2; a chunk's last column block may run up to NR_MAX - 1
    # columns past its end, hence the extra columns of C
    chunk_rows = max(1, min(out[0], SHIFTED_CHUNK_FLOATS // (m * wq)))
    # without padding, shifted_nchwc reads the input in place (tap offsets into the input,
    # pixels stride_w and rows stride_h input rows apart) instead of copying it into phases
    in_place = all(p == (0, 0) for p in pads)
    in_offsets = ((c * size[0] + kh) * size[1] + kw).ravel().tolist()
    return dict(in_place=in_place, in_offsets=in_offsets, row_step=stride[0] * size[1],
                hq=hq, wq=wq, stride_h=stride[0], stride_w=stride[1], phases_h=nph, phases_w=npw,
                pad_top=pads[0][0],
                pad_left=pads[1][0], ldc=-(-grid // NR_MAX) * NR_MAX + NR_MAX, grid=grid,
                slack=slack, offsets=offsets, chunk_rows=chunk_rows,
                planes_floats=phases * plane + slack,
                c_offset=-(-(cg * phases * plane + slack) // 16) * 16)


SHIFTED_CHUNK_FLOATS = 1 << 16  # C chunk of at most 256 KiB: in L2 for the epilogue


def _strided(node):
    """A 1x1 convolution with a stride: gemm_1x1 gathers the pixels it reads first (one of
    the stride phases; shifted_gemm read that phase through an offset table, measured 1.4-1.7x
    slower on ResNet-18's downsamples: 64 -> 128 0.19 against 0.14 ms, 128 -> 256 0.26
    against 0.15, one thread)."""
    return any(s != 1 for s in node.attrs["stride"])


def _winograd_on_blocks(node):
    """A Winograd layer inside a blocked run (passes/select_layout.py): its input copied from
    blocks into the padded planes the input transform reads, its output tiles stored as
    16-channel vectors."""
    return node.meta.get("kernel") in winograd.VARIANTS and node.meta.get("layout") == "blocks"


class ConvNd(Op):
    arity = None  # the input, and a residual when passes/fuse_residual.py gave it one
    template = "conv.c.j2"
    kernels = {"direct": "conv.c.j2", "gemm_1x1": "conv_gemm.c.j2",
               "im2col_gemm": "conv_gemm.c.j2", "shifted_gemm": "conv_shifted.c.j2",
               "depthwise": "conv_depthwise.c.j2", "winograd_f4x4_3x3": "conv_winograd.c.j2",
               "winograd_f2x2_3x3": "conv_winograd.c.j2",
               "im2row_gemm": "conv_im2row.c.j2", "depthwise_planes": "conv_depthwise_planes.c.j2",
               "taps": "conv_taps.c.j2", "pointwise_nchwc": "conv_pointwise_nchwc.c.j2",
               "depthwise_nchwc": "conv_depthwise_nchwc.c.j2",
               "shifted_nchwc": "conv_shifted_nchwc.c.j2",
               "direct_nchwc": "conv_direct_nchwc.c.j2"}
    epilogue = True
    rank = 2
    # a depthwise layer that computes its 1x1 producer's rows (passes/pipeline_pointwise.py)
    pipelined_template = "conv_pointwise_depthwise_nchwc.c.j2"

    def supports(self, node, kernel):
        a = node.attrs
        if kernel == "direct":
            return True
        if self.rank == 3:
            return False
        if kernel in winograd.VARIANTS:
            return winograd.applies(node)
        if kernel in blocked.ALL:
            return blocked.supports(node, kernel)
        if kernel == "im2row_gemm":
            return a["groups"] == 1
        if kernel == "depthwise":  # one input channel per group
            return a["in_channels"] == a["groups"]
        if kernel == "taps":
            return a["groups"] == 1
        if kernel == "depthwise_planes":  # ... and its padded planes fit on the stack
            return (a["in_channels"] == a["groups"]
                    and depthwise_planes_floats(node) <= DEPTHWISE_STACK_FLOATS)
        if kernel == "gemm_1x1":  # the input itself (strided: its pixels gathered) is K x N
            return all(k == 1 for k in a["kernel_size"]) and all(p == (0, 0) for p in conv_pads(a))
        return kernel in ("im2col_gemm", "shifted_gemm")

    def select_kernel(self, node, ins):
        a = node.attrs
        if self.rank == 3:
            return "direct"
        if a["in_channels"] == a["groups"] > 1:  # one input channel per output: no GEMM
            # stride 1 only: splitting a plane into stride phases costs more than it saves
            # (measured: 3x3 stride 2 on 112x112 and 64x64 2.4x slower than the row kernel;
            # stride 1 on 14x14 6x faster, 28x28 2.2x, 56x56 1.3x)
            if all(s == 1 for s in a["stride"]) and self.supports(node, "depthwise_planes"):
                return "depthwise_planes"
            return "depthwise"
        out_shape = self.infer_shape(node, ins)
        for kernel in winograd.VARIANTS:  # 4x4 tiles first; 2x2 where too few 4x4 tiles
            if winograd.applies(node) and winograd.efficient(node, ins, out_shape, kernel):
                return kernel
        if gemm_shape(node, ins, out_shape)[1] <= TAPS_MAX and self.supports(node, "taps"):
            return "taps"
        pointwise = all(k == 1 for k in a["kernel_size"])
        if self.supports(node, "im2row_gemm") and a["out_channels"] >= IM2ROW_MIN_CHANNELS \
                and math.prod(out_shape[2:]) <= (IM2ROW_MAX_PIXELS_1X1 if pointwise
                                                 else IM2ROW_MAX_PIXELS):
            return "im2row_gemm"
        for kernel in ("gemm_1x1", "shifted_gemm"):
            if self.supports(node, kernel):
                return kernel
        return "im2col_gemm"

    def pack(self, node):
        if node.meta.get("kernel") in blocked.ALL:
            return blocked.pack(node)
        if node.meta.get("kernel") in winograd.VARIANTS:
            bias = blocked.padded_bias(node, node.params["weight"].shape[0]) \
                if _winograd_on_blocks(node) else {}
            return dict(node.params, weight=winograd.transform_weights(node.params["weight"],
                                                                        node.meta["kernel"]),
                        **bias)
        if node.meta.get("kernel") == "im2row_gemm":
            w = node.params["weight"]
            return dict(node.params, weight=pack_columns(w.reshape(w.shape[0], -1).T))
        if node.meta.get("kernel") in ("gemm_1x1", "im2col_gemm", "shifted_gemm"):
            return packed_params(node, node.params["weight"], node.attrs["groups"])
        return node.params

    def packed_shapes(self, node):
        kernel, w, g = node.meta.get("kernel"), node.params["weight"], node.attrs["groups"]
        if kernel in blocked.ALL:
            return blocked.packed_shapes(node)
        k, kdim = w.shape[0], math.prod(w.shape[1:])
        cols = (-(-k // NR_MAX), kdim, NR_MAX)  # pack_columns of the kdim x K matrix
        shapes = {"gemm_1x1": (g, -(-k // g // MR), kdim, MR), "im2row_gemm": cols}
        shapes.update({name: (winograd.positions(name), -(-k // NR_MAX), w.shape[1], NR_MAX)
                       for name in winograd.VARIANTS})
        shapes["im2col_gemm"] = shapes["shifted_gemm"] = shapes["gemm_1x1"]
        if kernel not in shapes:
            return super().packed_shapes(node)
        packed = dict({n: a.shape for n, a in node.params.items()}, weight=shapes[kernel])
        if _winograd_on_blocks(node) and "bias" in packed:
            packed["bias"] = (blocked.blocks(k) * blocked.BLOCK,)
        return packed

    def group_layout(self, node, ins, out_shape, samples):
        """im2row_gemm: the patches of all the samples stacked, one product, the weights (the
        bulk of such a layer's data) read once for the group."""
        if node.meta.get("kernel") != "im2row_gemm":
            return None
        _, kdim, n = gemm_shape(node, ins, out_shape)
        rows = -(-samples * n // MR) * MR
        ldc = im2row_layout(node, ins, out_shape)["ldc"]
        c_offset = -(-rows * kdim // 16) * 16
        return dict(samples=samples, c_offset=c_offset, scratch=c_offset + rows * ldc)

    def scratch_floats(self, node, ins, out_shape):
        kernel = node.meta.get("kernel")
        m, kdim, n = gemm_shape(node, ins, out_shape)
        if kernel == "im2col_gemm":  # the patches, and two ints per column for their origins
            return (kdim + 2) * im2col_columns(kdim, n)
        if kernel == "gemm_1x1" and _strided(node):  # the gathered input
            return ins[0].shape[1] * n
        if kernel == "shifted_gemm":
            sh = shifted_layout(node, ins[0].shape, out_shape)
            return sh["c_offset"] + m * sh["ldc"]
        if kernel == blocked.ENTRY:  # the phase planes, unless the input is read in place
            sh = shifted_layout(node, ins[0].shape, out_shape)
            return 0 if sh["in_place"] else sh["c_offset"]
        if kernel == "taps":  # the phase planes
            return shifted_layout(node, ins[0].shape, out_shape)["c_offset"]
        if kernel in winograd.VARIANTS:
            return winograd.layout(node, ins, out_shape, kernel)["scratch"]
        if "pipelined_from" in node.meta:  # the rings of the 1x1 layer's rows
            return blocked.rings(node, ins)["floats"]
        if kernel == "direct_nchwc":  # the padded input
            return blocked.padded_input(node, ins)["floats"]
        if kernel == "im2row_gemm":
            return im2row_layout(node, ins, out_shape)["scratch"]
        return 0

    @property
    def what(self):
        return f"Conv{self.rank}d"

    def infer_shape(self, node, ins):
        a, x, r, what = node.attrs, ins[0], self.rank, self.what
        k, c, groups = a["out_channels"], a["in_channels"], a["groups"]
        kernel, stride, dilation = a["kernel_size"], a["stride"], a["dilation"]
        if min(stride) <= 0 or min(dilation) <= 0 or min(kernel) <= 0:
            raise layer_error(node, f"{what} kernel_size {kernel}, stride {stride} and dilation "
                              f"{dilation} must be positive")
        if len(x.shape) != r + 2:
            layout = "(N, C, " + ", ".join("DHW"[3 - r:]) + ")" if r > 1 else "(N, C, L)"
            raise layer_error(node, f"{what} expects a {r + 2}-D input {layout} but receives "
                              f"{len(x.shape)}-D {describe_source(x)}", ShapeError)
        if x.shape[1] != c:
            raise layer_error(node, f"{what} expects {c} input channels but receives "
                              f"{x.shape[1]} {describe_source(x)}; use "
                              f"nn.{what}({x.shape[1]}, {k}, ...)", ShapeError)
        w = node.params["weight"]
        if w.shape != (k, c // groups) + tuple(kernel):
            raise layer_error(node, f"{what} weight has shape {w.shape}, expected "
                              f"{(k, c // groups) + tuple(kernel)}", ShapeError)
        if "bias" in node.params and node.params["bias"].shape != (k,):
            raise layer_error(node, f"{what} bias has shape {node.params['bias'].shape}, "
                              f"expected ({k},)", ShapeError)
        pads = conv_pads(a)
        size = x.shape[2:]
        spans = [d * (kk - 1) + 1 for kk, d in zip(kernel, dilation)]
        padded = [s + p0 + p1 for s, (p0, p1) in zip(size, pads)]
        if any(sp > pd for sp, pd in zip(spans, padded)):
            span = (f" (dilation {describe_spatial(dilation)}, so it spans "
                    f"{describe_spatial(spans)})" if any(d != 1 for d in dilation) else "")
            raise layer_error(node, f"{what} kernel {describe_spatial(kernel)}{span} is larger "
                              f"than its padded input {describe_spatial(padded)} "
                              f"({describe_spatial(size)} {describe_source(x, shape=False)} "
                              f"plus padding {','.join(str(p0 + p1) for p0, p1 in pads)}); use a "
                              "smaller kernel, more padding, or a larger input_shape", ShapeError)
        mode = a.get("padding_mode", "zeros")
        for s, (p0, p1) in zip(size, pads):
            if mode == "reflect" and max(p0, p1) >= s:
                raise layer_error(node, f"{what} padding_mode='reflect' needs padding "
                                  f"{max(p0, p1)} smaller than the input size {s}", ShapeError)
            if mode == "circular" and max(p0, p1) > s:
                raise layer_error(node, f"{what} padding_mode='circular' needs padding "
                                  f"{max(p0, p1)} at most the input size {s}", ShapeError)
        out = [out_size(s, p0 + p1, sp, st) for s, (p0, p1), sp, st in
               zip(size, pads, spans, stride)]
        return (x.shape[0], k) + tuple(out)

    def reference(self, node, arrays):
        a, r = node.attrs, self.rank
        x = arrays[0].astype(np.float64)
        w = node.params["weight"].astype(np.float64)
        kernel, stride, dilation, g = a["kernel_size"], a["stride"], a["dilation"], a["groups"]
        n, c = x.shape[:2]
        xp = np.pad(x, [(0, 0), (0, 0)] + conv_pads(a),
                    mode=NUMPY_PAD_MODE[a.get("padding_mode", "zeros")])
        spatial = tuple(range(2, 2 + r))
        win = sliding_window_view(xp, [d * (k - 1) + 1 for k, d in zip(kernel, dilation)],
                                  axis=spatial)
        win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)
                  + tuple(slice(None, None, d) for d in dilation)]
        out = win.shape[2:2 + r]
        win = win.reshape((n, g, c // g) + out + tuple(kernel))
        wg = w.reshape((g, w.shape[0] // g, c // g) + tuple(kernel))
        o, kk = "dhw"[3 - r:], "pqr"[3 - r:]  # output and kernel positions
        y = np.einsum(f"NGC{o}{kk},GKC{kk}->NGK{o}", win, wg, optimize=True)
        y = y.reshape((n, -1) + out)
        if "bias" in node.params:
            y += node.params["bias"].astype(np.float64).reshape((1, -1) + (1,) * r)
        return y.astype(np.float32)

    def flops(self, node, ins, out_shape):
        a = node.attrs
        return 2 * math.prod(out_shape[1:]) * (a["in_channels"] // a["groups"]) * math.prod(
            a["kernel_size"])

    @staticmethod
    def _epilogue_in_gemm(node):
        """The CNN_ACT_ code when the GEMM micro-kernel can apply the whole epilogue, else None."""
        if "residual" in node.meta:
            return None
        return GEMM_ACTIVATIONS.get(node.meta.get("activation", {}).get("fn"))

    def lower(self, node, ins, out_shape):
        a = node.attrs
        assert a.get("padding_mode", "zeros") == "zeros", "lower_padding_mode did not run"
        c, k, g = ins[0].shape[1], out_shape[1], a["groups"]
        # as 3-D: (depth, height, width), a 1-D conv being 1 x 1 x L and a 2-D one 1 x H x W
        lead = 3 - self.rank
        size = (1,) * lead + tuple(ins[0].shape[2:])
        out = (1,) * lead + tuple(out_shape[2:])
        kernel = (1,) * lead + tuple(a["kernel_size"])
        stride = (1,) * lead + tuple(a["stride"])
        dil = (1,) * lead + tuple(a["dilation"])
        pads = [(0, 0)] * lead + conv_pads(a)
        m, kdim, n = gemm_shape(node, ins, out_shape)
        kernel_name = node.meta.get("kernel")
        gemm_epilogue = self._epilogue_in_gemm(node)
        if kernel_name == "im2col_gemm":
            columns = im2col_columns(kdim, n)
        elif kernel_name == "gemm_1x1" and not gemm_epilogue:
            # chunks whose output stays in L2 for the epilogue pass
            columns = min(n, max(NR_MAX, IM2COL_FLOATS // 2 // m // NR_MAX * NR_MAX))
        else:
            columns = n
        gemm = dict(m=m, kdim=kdim, n=n, a_group=-(-m // MR) * MR * kdim, columns=columns,
                    cols_inner=inner_range(size[2], out[2], kernel[2], stride[2], pads[2][0], dil[2]),
                    taps=[dict(k=i, off=i * dil[2]) for i in range(kernel[2])],
                    x_group=c // g * (n if kernel_name == "gemm_1x1" else math.prod(size)),
                    y_group=m * n,
                    coords=kdim * (im2col_columns(kdim, n) if node.meta.get("kernel") == "im2col_gemm" else 0),
                    im2col=kernel_name == "im2col_gemm",
                    subsample=kernel_name == "gemm_1x1" and _strided(node),
                    gemm_epilogue=gemm_epilogue)
        if kernel_name in ("shifted_gemm", "depthwise_planes", "taps", blocked.ENTRY):
            gemm["shifted"] = shifted_layout(node, ins[0].shape, out_shape)
            gemm["dw_taps"] = [dict(k=i, off=off) for i, off in enumerate(gemm["shifted"]["offsets"])]
        if kernel_name in winograd.VARIANTS:
            gemm["wino"] = winograd.layout(node, ins, out_shape, kernel_name)
        gemm["on_blocks"] = _winograd_on_blocks(node)
        if gemm["on_blocks"]:
            gemm.update(blocked.lower(node, ins))
        if kernel_name == "im2row_gemm":
            gemm["im2row"] = im2row_layout(node, ins, out_shape)
        if kernel_name in blocked.ALL:
            gemm.update(blocked.lower(node, ins))
        if "pipelined_from" in node.meta:
            gemm["rings"] = blocked.rings(node, ins)
        slowdown = (DEPTHWISE_SLOWDOWN if kernel_name in ("depthwise", "depthwise_planes")
                    else BLOCKED_DEPTHWISE_SLOWDOWN if kernel_name == "depthwise_nchwc" else 1)
        return dict(gemm, rank3=self.rank == 3, residual="residual" in node.meta,
                    in_channels=c, out_channels=k, parallel=int(parallel_worth_it(node, slowdown)),
                    groups=g, c_per_group=c // g, k_per_group=k // g,
                    in_d=size[0], in_h=size[1], in_w=size[2], in_plane=size[1] * size[2],
                    in_vol=math.prod(size), out_d=out[0], out_h=out[1], out_w=out[2],
                    out_plane=out[1] * out[2], out_vol=math.prod(out),
                    kd=kernel[0], kh=kernel[1], kw=kernel[2], kernel_area=kernel[1] * kernel[2],
                    kernel_vol=math.prod(kernel), stride_d=stride[0], stride_h=stride[1],
                    stride_w=stride[2], dil_d=dil[0], dil_h=dil[1], dil_w=dil[2],
                    pad_front=pads[0][0], pad_top=pads[1][0], pad_left=pads[2][0])


for _rank in (1, 2, 3):
    register(type(f"Conv{_rank}d", (ConvNd,), dict(name=f"conv{_rank}d", rank=_rank)))
