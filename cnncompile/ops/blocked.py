"""Convolutions on channel-blocked tensors (runtime/cnn_nchw16c*.h): which layers they compute,
their weights packed in blocks, and the constants their templates receive.

A blocked tensor of C channels and P pixels is ceil(C / BLOCK) blocks of P pixels of BLOCK
channels, the padding channels zero (oneDNN's nChw16c, ONNX Runtime's NCHWc).
passes/select_layout.py chooses the layers that run on it and puts reorders around them.
"""
import numpy as np

from . import conv  # conv.py imports this module: names are read at call time

BLOCK = 16  # CNN_CB in runtime/cnn_nchw16c.h
KERNELS = ("pointwise_nchwc", "depthwise_nchwc", "direct_nchwc")  # blocks in, blocks out
ENTRY = "shifted_nchwc"  # planes in, blocks out: a convolution feeding a blocked run
# ... chosen for the layer before a run when its weights per output block pair stay in L1
# (a network's stem: 3 channels x 3 x 3 taps); larger ones keep shifted_gemm and a reorder
ENTRY_MAX_TAPS = 256
ALL = KERNELS + (ENTRY,)  # every kernel whose output is blocked
# the planes kernels direct_nchwc replaces inside a run (one layer at a time, with reorders
# around it: 16 -> 32 channels 3x3 on 50x50 0.28 against 0.32 ms; Winograd, GEMMs on 1x1 and
# im2row on small images stay faster than it)
DIRECT_INSTEAD_OF = ("shifted_gemm", "gemm_1x1")  # gemm_1x1 here: strided, pointwise the rest
# ... and im2row_gemm on output rows of this many pixels or more: 256 -> 512 channels 3x3
# stride 2, one thread, reorders around direct_nchwc: out 7x7 1.14 against 1.39 ms, 6x6 0.95
# against 1.03, 5x5 0.68 against 0.82; out 4x4 0.52 against 0.45 (and VGG-11's 512 -> 512 on
# 4x4 1.09 against 0.91), the GEMM's 16-row tiles then doing better than 4-pixel ones
DIRECT_MIN_WIDTH = 5
# direct_nchwc with output blocks outermost: steps of a group of output blocks by a band of
# output rows, at least this many steps for the threads to share (the fewest groups being
# a quarter of the output blocks: 4 blocks a group with AVX-512, fewer elsewhere)
DIRECT_MIN_STEPS = 8


def direct_gains(node):
    """Whether direct_nchwc should replace the layer's planes kernel in a run: one it beats
    (DIRECT_INSTEAD_OF; im2row_gemm on rows of DIRECT_MIN_WIDTH pixels or more), and input
    channels that fill their blocks to 4/5 or more (each padding channel costs as much as a
    real one; a stem on 3 channels would do 16 channels' work: shifted_nchwc computes it
    from planes instead)."""
    kernel = node.meta.get("kernel")
    replaces = kernel in DIRECT_INSTEAD_OF or (
        kernel == "im2row_gemm" and node.meta["shape"][3] >= DIRECT_MIN_WIDTH)
    return replaces and fills_blocks(node.attrs["in_channels"])


def fills_blocks(channels):
    """Whether ``channels`` fill their blocks to 4/5 or more."""
    return 4 * blocks(channels) * BLOCK <= 5 * channels


def blocks(channels):
    return -(-channels // BLOCK)


def floats(shape):
    """Floats per sample of a blocked tensor of ``shape`` (N, C, *spatial)."""
    return blocks(shape[1]) * BLOCK * int(np.prod(shape[2:], dtype=np.int64))


def supports(node, kernel):
    a = node.attrs
    if len(a["kernel_size"]) != 2 or node.meta.get("activation", {}).get("fn") \
            not in conv.GEMM_ACTIVATIONS:
        return False
    if kernel == "depthwise_nchwc":
        return a["in_channels"] == a["groups"] == a["out_channels"]
    if kernel == ENTRY:
        return a["groups"] == 1 and "residual" not in node.meta
    if kernel == "direct_nchwc":
        return a["groups"] == 1
    return (a["groups"] == 1 and tuple(a["kernel_size"]) == (1, 1) and tuple(a["stride"]) == (1, 1)
            and conv.conv_pads(a) == [(0, 0), (0, 0)])


def padded_bias(node, channels):
    if "bias" not in node.params:
        return {}
    b = np.zeros(blocks(channels) * BLOCK, np.float32)
    b[:channels] = node.params["bias"]
    return {"bias": b}


def _inner(node):
    """Values per output channel in the packed weights: pointwise, the input channels padded
    to whole blocks; depthwise, the taps; shifted_nchwc, input channels x taps; direct, the
    input channels padded to whole blocks x taps."""
    w = node.params["weight"]
    return {"pointwise_nchwc": blocks(w.shape[1]) * BLOCK,
            "depthwise_nchwc": int(np.prod(w.shape[2:])),
            "direct_nchwc": blocks(w.shape[1]) * BLOCK * int(np.prod(w.shape[2:])),
            ENTRY: int(np.prod(w.shape[1:]))}[node.meta["kernel"]]


def pack(node):
    """w[out block][inner][16]: pointwise inner = input channel, depthwise = kh * kw + kw,
    shifted_nchwc = (c * kh + kh) * kw + kw, direct = ((c / 16 * kh + kh) * kw + kw) * 16 +
    c % 16; zeros past the real channels."""
    w = node.params["weight"]
    if node.meta["kernel"] == "direct_nchwc":  # input channels padded, blocks outside the taps
        k, c, kh, kw = w.shape
        padded = np.zeros((k, blocks(c) * BLOCK, kh, kw), np.float32)
        padded[:, :c] = w
        w = padded.reshape(k, blocks(c), BLOCK, kh, kw).transpose(0, 1, 3, 4, 2)
    return pack_rows(node, w.reshape(w.shape[0], -1), _inner(node))


def pack_rows(node, m, inner):
    """An output-by-inner matrix m (k x cols, cols <= inner) as w[k / 16][inner][16], zeros
    past its rows and columns, and the node's bias padded to whole blocks (linear_blocks
    packs a linear layer's weights so too)."""
    k, cols = m.shape
    p = np.zeros((blocks(k) * BLOCK, inner), np.float32)
    p[:k, :cols] = m
    packed = p.reshape(blocks(k), BLOCK, inner).transpose(0, 2, 1)
    return dict(node.params, weight=np.ascontiguousarray(packed), **padded_bias(node, k))


def packed_shapes(node):
    return packed_rows_shapes(node, _inner(node))


def packed_rows_shapes(node, inner):
    """The shapes of pack_rows(node, ..., inner)'s arrays."""
    k = node.params["weight"].shape[0]
    shapes = {"weight": (blocks(k), inner, BLOCK)}
    if "bias" in node.params:
        shapes["bias"] = (blocks(k) * BLOCK,)
    return shapes


def lower(node, ins):
    """What the blocked templates add to the conv's constants. by_output: a pointwise layer
    whose weights outweigh its image loops over output blocks outermost, so that each block's
    weights are read once rather than once per pixel tile (MobileNetV2's 7x7 layers: 960 ->
    320 channels streamed 1.2 MB of weights per 8 pixels)."""
    a = node.attrs
    act = conv.GEMM_ACTIVATIONS[node.meta.get("activation", {}).get("fn")]
    plane = int(np.prod(node.meta["shape"][2:]))
    # the wide tile (CNN_PWW_*: 6 pixels x 4 output blocks with AVX-512) for the pointwise,
    # stem and direct kernels when the output blocks come in fours, so that no group is left
    # narrow: seed_separable 0.96x the time at one and two threads, MobileNetV2 0.98x (every
    # 1x1 layer wide: 0.99x), ResNet-18's stem 2.10 -> 1.95 ms
    wide = blocks(a["out_channels"]) % 4 == 0
    # the pixels a tile's run covers: a pointwise layer's whole plane, or an output row (a
    # pointwise layer pipelined into a depthwise one computes a row at a time)
    whole_plane = node.meta["kernel"] == "pointwise_nchwc" and not _rows_for_depthwise(node)
    run = plane if whole_plane else node.meta["shape"][3]
    return dict(in_blocks=blocks(a["in_channels"]), out_blocks=blocks(a["out_channels"]),
                blocked_act=act, pw_mr=pixel_tile(run, wide),
                pw_nb="CNN_PWW_NB" if wide else "CNN_PW_NB",
                by_output=plane < a["out_channels"] and blocks(a["out_channels"]) > 2,
                direct=padded_input(node, ins) if node.meta["kernel"] == "direct_nchwc" else None)


def _rows_for_depthwise(node):
    """Whether a 1x1 layer is computed row by row by the depthwise layer that reads it."""
    return node.meta.get("reader") == "depthwise"


# pixels a tile with AVX-512 (runtime/cnn_nchw16c.h): the wide tile, the narrow one, and the
# 7-pixel variant of either; elsewhere all three are the same size
TILE_PIXELS = {"CNN_PWW_MR": 6, "CNN_PW_MR": 8, "CNN_PW7_MR": 7}


def pixel_tile(run, wide):
    """The tile's pixel count (a macro of runtime/cnn_nchw16c.h) for runs of `run` pixels (a
    pointwise layer's plane; an output row for the kernels that tile rows): 7 where it
    computes at least 1/16 fewer pixels than the usual 6 or 8, a run's last partial tile
    counting whole (it is either done as the full tile ending at the run's end, or is a
    smaller tile doing less per weight loaded). 7x7 images: 7 tiles of 7 pixels, against 9 of
    6 or 7 of 8 (MobileNetV2's 320 -> 1280 on 7x7: 0.444 -> 0.411 ms at one thread); rows of
    14, 28 or 56 pixels: no leftover tile of 2 or 4. Large planes keep the usual tile."""
    usual = "CNN_PWW_MR" if wide else "CNN_PW_MR"

    def computed(name):
        return -(-run // TILE_PIXELS[name]) * TILE_PIXELS[name]
    gains = run >= 7 and 16 * computed("CNN_PW7_MR") <= 15 * computed(usual)
    return "CNN_PW7_MR" if gains else usual


def padded_input(node, ins):
    """direct_nchwc's input extent: hp x wp pixels a block, the input copied into scratch with
    its zero padding when the layer has any, else the input itself."""
    a = node.attrs
    (top, _), (left, _) = conv.conv_pads(a)
    out_h, out_w = node.meta["shape"][2:]
    kh, kw = a["kernel_size"]
    (sh, sw), (dh, dw) = a["stride"], a["dilation"]
    in_h, in_w = ins[0].shape[2:]
    hp, wp = (out_h - 1) * sh + (kh - 1) * dh + 1, (out_w - 1) * sw + (kw - 1) * dw + 1
    padded = top > 0 or left > 0 or hp > in_h or wp > in_w
    if not padded:
        hp, wp = in_h, in_w
    # output blocks outermost when the weights outweigh the (padded) input: each group's
    # weights then stay in L2 for every output row instead of all of them streaming from L3
    # once per row (ResNet-18's 256 -> 512 stride-2 layer: 4.7 MB of weights, 7 rows)
    by_output = kh * kw * BLOCK * blocks(a["out_channels"]) > hp * wp
    # ... and then in bands of rows: each chunk of input blocks is added into every row of
    # the band while its weights are in L1 (ResNet-18's 256 -> 512 stride-2 layer on 7x7,
    # one thread: 1.45 -> 1.37 ms with the 7 rows in one band; the whole model 0.98-0.99x
    # the time at one and two threads)
    bands = min(out_h, -(-DIRECT_MIN_STEPS // -(-blocks(a["out_channels"]) // 4)))
    return dict(padded=padded, hp=hp, wp=wp, by_output=by_output, band=-(-out_h // bands),
                floats=blocks(a["in_channels"]) * BLOCK * hp * wp if padded else 0)


# A depthwise layer that computes its 1x1 producer's rows (passes/pipeline_pointwise.py)
# shares bands of its output rows among up to this many threads, each band with its own rings
PIPELINE_BANDS = 4


def rings(node, ins):
    """The scratch of a pipelined depthwise layer: for each band and output block, a ring of
    the `rows` rows of the 1x1 layer's output that one output row reads (input row h at row
    h % rows); `block` floats a ring."""
    a = node.attrs
    rows = (a["kernel_size"][0] - 1) * a["dilation"][0] + 1
    block = rows * ins[0].shape[3] * BLOCK
    return dict(rows=rows, block=block, bands=PIPELINE_BANDS,
                floats=PIPELINE_BANDS * blocks(a["out_channels"]) * block)
