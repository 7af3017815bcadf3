"""Convolutions on channel blocks (cnncompile/layout.py, runtime/cnn_nchw16c_*.h): a 1x1
kernel, a depthwise one, a direct one, and the entry kernel that reads planes and writes
blocks for the run after it. Their weights are w[output block][inner][16]; select_kernels
chooses them for the runs of layers it puts on blocks, never for one layer alone."""
import numpy as np

from ..layout import BLOCK, BLOCKS, PLANES, blocks, fills_blocks
from ..ops.activations import VECTOR_ACTIVATIONS
from ..ops.conv import conv_pads
from .conv_base import CONV2D, ConvKernel
from .phases import shifted_extra, shifted_layout

# the entry kernel is chosen when its weights per output block pair stay in L1 (a network's
# stem: 3 channels x 3 x 3 taps); larger layers keep shifted_gemm and a reorder
ENTRY_MAX_TAPS = 256
# the planes kernels nchw16c.direct replaces inside a run; Winograd, the GEMM of unstrided
# 1x1 layers and im2row on narrow images stay faster than it
DIRECT_INSTEAD_OF = ("nchw.shifted_gemm", "nchw.gemm_1x1")
# ... and im2row_gemm on output rows of this many pixels or more
DIRECT_MIN_WIDTH = 5
# nchw16c.direct with output blocks outermost: at least this many (group, band of rows)
# steps for the threads to share
DIRECT_MIN_STEPS = 8
# the widths of convolution groups the direct kernel runs several of in one block: each
# costs 16 / width times the multiply-adds in vectors
GROUP_WIDTHS_IN_BLOCK = (8,)
# a depthwise layer that computes its 1x1 producer's rows (passes/pipeline_pointwise.py)
# shares bands of its output rows among up to this many threads, each band with its rings
PIPELINE_BANDS = 4
# the blocked depthwise kernel runs at about half the GEMM's FLOP rate
DEPTHWISE_SLOWDOWN = 2
# pixels a tile computes with AVX-512 (runtime/cnn_nchw16c.h): the wide tile, the narrow one,
# and the 7-pixel variant of either; elsewhere all three are the same size
TILE_PIXELS = {"CNN_WIDE_MR": 6, "CNN_TILE_MR": 8, "CNN_TILE7_MR": 7}


class BlockedConv(ConvKernel):
    ops = CONV2D
    layout_in = BLOCKS
    layout_out = BLOCKS
    per_layer = False

    def applies(self, node):
        return (len(node.attrs["kernel_size"]) == 2
                and node.meta.get("activation", {}).get("fn") in VECTOR_ACTIVATIONS)

    def inner(self, node):
        """Values per output channel in the packed weights."""
        raise NotImplementedError

    def pack(self, node):
        w = node.params["weight"]
        return pack_rows(node, w.reshape(w.shape[0], -1), self.inner(node))

    def packed_shapes(self, node):
        return packed_rows_shapes(node, self.inner(node))

    def extra(self, node, ins, out_shape):
        return blocked_lower(node, ins, rows=True)


class Pointwise(BlockedConv):
    """1x1, stride 1: tiles of pixels x output blocks, each input value broadcast against
    the weight vectors of the tile's output blocks."""
    name = "nchw16c.pointwise"
    template = "conv_pointwise_nchwc.c.j2"

    def applies(self, node):
        a = node.attrs
        return (super().applies(node) and a["groups"] == 1 and tuple(a["kernel_size"]) == (1, 1)
                and tuple(a["stride"]) == (1, 1) and conv_pads(a) == [(0, 0), (0, 0)])

    def inner(self, node):
        return blocks(node.params["weight"].shape[1]) * BLOCK

    def extra(self, node, ins, out_shape):
        # a layer pipelined into a depthwise one is computed a row at a time
        return blocked_lower(node, ins, rows=node.meta.get("reader") == "depthwise")


class Depthwise(BlockedConv):
    """One 16-channel vector multiply-add per pixel and tap; pipelined, it also computes
    the 1x1 layer before it a row at a time into rings."""
    name = "nchw16c.depthwise"
    template = "conv_depthwise_nchwc.c.j2"
    pipelined_template = "conv_pointwise_depthwise_nchwc.c.j2"
    slowdown = DEPTHWISE_SLOWDOWN

    def applies(self, node):
        a = node.attrs
        return super().applies(node) and a["in_channels"] == a["groups"] == a["out_channels"]

    def template_for(self, node):
        if "pipelined_from" in node.meta:
            return self.pipelined_template
        return self.template

    def inner(self, node):
        return int(np.prod(node.params["weight"].shape[2:]))

    def scratch(self, node, ins, out_shape):
        return rings(node, ins)["floats"] if "pipelined_from" in node.meta else 0

    def extra(self, node, ins, out_shape):
        ctx = super().extra(node, ins, out_shape)
        if "pipelined_from" in node.meta:
            ctx["rings"] = rings(node, ins)
        return ctx


class Direct(BlockedConv):
    """Any 2-D convolution whose groups, if any, keep to whole blocks (block_groups): each
    input value broadcast against the weight vectors of the tile's output blocks, tap by tap,
    from the (padded) input blocks of its group."""
    name = "nchw16c.direct"
    template = "conv_direct_nchwc.c.j2"

    def applies(self, node):
        return super().applies(node) and block_groups(node) is not None

    def inner(self, node):
        w = node.params["weight"]
        return block_groups(node)[0] * BLOCK * int(np.prod(w.shape[2:]))

    def pack(self, node):
        """Each output channel's row: the input channels of its output block's group padded
        to whole blocks (zeros for those of other convolution groups), the blocks outside
        the taps: inner = ((c / 16 * kh + kh) * kw + kw) * 16 + c % 16, c counted from the
        group's first input block."""
        w = node.params["weight"]
        k, c, kh, kw = w.shape  # c: input channels per convolution group
        in_blocks, out_blocks = block_groups(node)
        padded = np.zeros((k, in_blocks * BLOCK, kh, kw), np.float32)
        per_group = k // getattr(node, "attrs", {}).get("groups", 1)
        for o in range(k):
            # the channel the output block's group of input blocks starts at, and this
            # output channel's own first input channel
            first = o // BLOCK // out_blocks * in_blocks * BLOCK
            own = o // per_group * c - first if in_blocks * BLOCK != c else 0
            padded[o, own:own + c] = w[o]
        w = padded.reshape(k, in_blocks, BLOCK, kh, kw).transpose(0, 1, 3, 4, 2)
        return pack_rows(node, w.reshape(k, -1), self.inner(node))

    def scratch(self, node, ins, out_shape):  # the padded input
        return padded_input(node, ins)["floats"]

    def extra(self, node, ins, out_shape):
        ctx = dict(blocked_lower(node, ins, rows=True), direct=padded_input(node, ins))
        in_blocks, out_blocks = block_groups(node)
        grouped = node.attrs["groups"] > 1
        ctx.update(group_in_blocks=in_blocks if grouped else 0,
                   group_out_blocks=out_blocks if grouped else 0)
        if grouped and out_blocks % 2:  # a tile's output blocks never span two groups
            ctx.update(pw_mr="CNN_SINGLE_MR", pw_nb="1")
        elif grouped and out_blocks % 4:
            ctx.update(pw_mr=pixel_tile(node.meta["shape"][3], False), pw_nb="CNN_TILE_NB")
        return ctx


def block_groups(node):
    """(input blocks, output blocks) of each of the direct kernel's groups of whole blocks,
    or None when its convolution groups do not fit blocks. Ungrouped: all of them. Groups
    of multiples of 16 channels in and out are groups of blocks as they are; groups of a
    width in GROUP_WIDTHS_IN_BLOCK, as many channels out as in, share their blocks, each
    block one group of blocks whose weights are zero between channels of different groups
    (16 / width times the multiply-adds, in vectors; narrower groups run on planes)."""
    a = getattr(node, "attrs", None)
    w = node.params["weight"]
    g = a["groups"] if a else 1
    k, c = w.shape[:2]
    if g == 1:
        return blocks(c), blocks(k)
    if c % BLOCK == 0 and (k // g) % BLOCK == 0:
        return c // BLOCK, k // g // BLOCK
    if c == k // g and c in GROUP_WIDTHS_IN_BLOCK:
        return 1, 1
    return None


class Entry(BlockedConv):
    """Reads planes, writes blocks: a stem feeding a run computes its output blocks from
    phase planes (phases.py), or from the input in place when it has no padding."""
    name = "nchw_to_nchw16c.shifted"
    template = "conv_shifted_nchwc.c.j2"
    layout_in = PLANES

    def applies(self, node):
        return (super().applies(node) and node.attrs["groups"] == 1
                and "residual" not in node.meta)

    def inner(self, node):
        return int(np.prod(node.params["weight"].shape[1:]))

    def scratch(self, node, ins, out_shape):  # the phase planes, unless read in place
        sh = shifted_layout(node, ins[0].shape, out_shape)
        return 0 if sh["in_place"] else sh["c_offset"]

    def extra(self, node, ins, out_shape):
        return dict(shifted_extra(node, ins, out_shape), **blocked_lower(node, ins, rows=True))


def direct_gains(node):
    """Whether nchw16c.direct should replace the layer's planes kernel in a run: one it
    beats, and input channels that fill their blocks (a stem on 3 channels would do 16
    channels' work: the entry kernel computes it from planes instead)."""
    kernel = node.meta.get("kernel")
    replaces = kernel in DIRECT_INSTEAD_OF or (
        kernel == "nchw.im2row_gemm" and node.meta["shape"][3] >= DIRECT_MIN_WIDTH)
    return replaces and fills_blocks(node.attrs["in_channels"])


def padded_bias(node, channels):
    if "bias" not in node.params:
        return {}
    b = np.zeros(blocks(channels) * BLOCK, np.float32)
    b[:channels] = node.params["bias"]
    return {"bias": b}


def pack_rows(node, m, inner):
    """An output-by-inner matrix m (k x cols, cols <= inner) as w[k / 16][inner][16], zeros
    past its rows and columns, and the node's bias padded to whole blocks."""
    k, cols = m.shape
    p = np.zeros((blocks(k) * BLOCK, inner), np.float32)
    p[:k, :cols] = m
    packed = p.reshape(blocks(k), BLOCK, inner).transpose(0, 2, 1)
    return dict(node.params, weight=np.ascontiguousarray(packed), **padded_bias(node, k))


def packed_rows_shapes(node, inner):
    """The shapes of pack_rows(node, ..., inner)'s arrays."""
    k = node.params["weight"].shape[0]
    shapes = {"weight": (blocks(k), inner, BLOCK)}
    if "bias" in node.params:
        shapes["bias"] = (blocks(k) * BLOCK,)
    return shapes


def blocked_lower(node, ins, rows):
    """The constants of a kernel on blocks. rows: its tiles run along output rows rather
    than the whole plane. by_output: a layer whose weights outweigh its image loops over
    output blocks outermost, each block's weights read once rather than once per tile."""
    a = node.attrs
    plane = int(np.prod(node.meta["shape"][2:]))
    # the wide tile (CNN_WIDE_*) from four output blocks up, a last partial group being
    # one narrower tile of its own
    wide = blocks(a["out_channels"]) >= 4
    run = node.meta["shape"][3] if rows else plane
    return dict(in_blocks=blocks(a["in_channels"]), out_blocks=blocks(a["out_channels"]),
                blocked_act=VECTOR_ACTIVATIONS[node.meta.get("activation", {}).get("fn")],
                pw_mr=pixel_tile(run, wide), pw_nb="CNN_WIDE_NB" if wide else "CNN_TILE_NB",
                by_output=plane < a["out_channels"] and blocks(a["out_channels"]) > 2,
                direct=None)


def pixel_tile(run, wide):
    """The tile's pixel count (a macro of runtime/cnn_nchw16c.h) for runs of ``run`` pixels:
    7 where that computes at least 1/16 fewer pixels than the usual 6 or 8, a run's last
    partial tile counting whole (7x7 images; rows of 14, 28 or 56 pixels)."""
    usual = "CNN_WIDE_MR" if wide else "CNN_TILE_MR"

    def computed(name):
        return -(-run // TILE_PIXELS[name]) * TILE_PIXELS[name]
    gains = run >= 7 and 16 * computed("CNN_TILE7_MR") <= 15 * computed(usual)
    return "CNN_TILE7_MR" if gains else usual


def padded_input(node, ins):
    """nchw16c.direct's input extent: hp x wp pixels a block, the input copied into scratch
    with its zero padding when the layer has any, else the input itself."""
    a = node.attrs
    (top, _), (left, _) = conv_pads(a)
    out_h, out_w = node.meta["shape"][2:]
    kh, kw = a["kernel_size"]
    (sh, sw), (dh, dw) = a["stride"], a["dilation"]
    in_h, in_w = ins[0].shape[2:]
    hp, wp = (out_h - 1) * sh + (kh - 1) * dh + 1, (out_w - 1) * sw + (kw - 1) * dw + 1
    padded = top > 0 or left > 0 or hp > in_h or wp > in_w
    if not padded:
        hp, wp = in_h, in_w
    # output blocks outermost when the weights outweigh the (padded) input: each group's
    # weights then stay in L2 for every output row instead of streaming once per row ...
    out_blocks = (block_groups(node) or (0, blocks(a["out_channels"])))[1]
    by_output = kh * kw * BLOCK * out_blocks > hp * wp
    # ... and then in bands of rows, each chunk of input blocks added into every row of the
    # band while its weights are in L1
    bands = min(out_h, -(-DIRECT_MIN_STEPS // -(-blocks(a["out_channels"]) // 4)))
    return dict(padded=padded, hp=hp, wp=wp, by_output=by_output, band=-(-out_h // bands),
                floats=blocks(a["in_channels"]) * BLOCK * hp * wp if padded else 0)


def rings(node, ins):
    """A pipelined depthwise layer's scratch: for each band and output block, a ring of the
    ``rows`` rows of the 1x1 layer's output one output row reads (input row h at row
    h % rows); ``block`` floats a ring."""
    a = node.attrs
    rows = (a["kernel_size"][0] - 1) * a["dilation"][0] + 1
    block = rows * ins[0].shape[3] * BLOCK
    return dict(rows=rows, block=block, bands=PIPELINE_BANDS,
                floats=PIPELINE_BANDS * blocks(a["out_channels"]) * block)
