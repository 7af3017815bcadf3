"""Winograd F(4x4, 3x3) and F(2x2, 3x3) for 3x3 stride-1 convolutions
(runtime/cnn_winograd.h): the weight transform, done here at compile time, and the layout of
the kernels' scratch.

Matrices from Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016);
F(4x4, 3x3) with interpolation points 0, 1, -1, 2, -2 and infinity, F(2x2, 3x3) with 0, 1, -1
and infinity. An m x m output tile is A^T [(G g G^T) . (B^T d B)] A for a 3x3 kernel g and the
(m + 2) x (m + 2) input patch d under it. G is applied here; B^T and A^T are written out in
the runtime's transforms.
"""
import math

import numpy as np

from ..layout import BLOCK, BLOCKS, blocks
from ..ops.conv import conv_pads
from .conv_base import CONV2D, ConvKernel
from .conv_nchw16c import blocked_lower, padded_bias
from .gemm import MR, NR_MAX, activation_code, pack_columns

G4 = np.array([[1 / 4, 0, 0],
               [-1 / 6, -1 / 6, -1 / 6],
               [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6],
               [0, 0, 1]])
B4_T = np.array([[4, 0, -5, 0, 1, 0],
                 [0, -4, -4, 1, 1, 0],
                 [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0],
                 [0, 2, -1, -2, 1, 0],
                 [0, 4, 0, -5, 0, 1]], dtype=float)
A4_T = np.array([[1, 1, 1, 1, 1, 0],
                 [0, 1, -1, 2, -2, 0],
                 [0, 1, 1, 4, 4, 0],
                 [0, 1, -1, 8, -8, 1]], dtype=float)
G2 = np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]])
B2_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
A2_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)

# a layer is worth Winograd with enough tiles for the products to fill the micro-kernel's
# rows and enough channels that the products, not the transforms, are the bulk of the work
MIN_TILES = 16
MIN_CHANNELS = 16
MIN_OUT_CHANNELS = 64
# tile blocks: weights up to 1 MiB stay in L2 across blocks; V and M of a block take 1 MiB
BLOCK_WEIGHT_BYTES = 1 << 20
BLOCK_BYTES = 1 << 20
# V and M of one panel of tiles, at most, for a layer on blocks to go panel by panel, on
# each thread's stack (128 KiB, as depthwise_planes)
PANEL_BYTES = 128 << 10


def applies_3x3(node):
    """A 2-D, 3x3, stride-1, undilated, ungrouped convolution."""
    a = node.attrs
    return (len(a["kernel_size"]) == 2 and tuple(a["kernel_size"]) == (3, 3)
            and tuple(a["stride"]) == (1, 1) and tuple(a["dilation"]) == (1, 1)
            and a["groups"] == 1)


def tiles(out_shape, tile):
    return -(-out_shape[2] // tile), -(-out_shape[3] // tile)


class Winograd(ConvKernel):
    ops = CONV2D
    template = "conv_winograd.c.j2"
    tile = None
    g = b_t = a_t = None
    input_fn = output_fn = None

    @property
    def positions(self):
        """Values per transformed tile: 36 for F(4x4, 3x3), 16 for F(2x2, 3x3)."""
        return (self.tile + 2) ** 2

    def applies(self, node):
        return applies_3x3(node)

    def preferred(self, node, ins):
        """Enough tiles and channels: the weights grow 4x (36 values for 9), so a layer
        with few tiles would mostly stream weights."""
        out_shape = node.meta["shape"]
        return (math.prod(tiles(out_shape, self.tile)) >= MIN_TILES
                and ins[0].shape[1] >= MIN_CHANNELS and out_shape[1] >= MIN_OUT_CHANNELS)

    def pack(self, node):
        return dict(node.params, weight=self.transform_weights(node.params["weight"]))

    def packed_shapes(self, node):
        w = node.params["weight"]
        return dict({n: a.shape for n, a in node.params.items()},
                    weight=(self.positions, -(-w.shape[0] // NR_MAX), w.shape[1], NR_MAX))

    def transform_weights(self, w):
        """(K, C, 3, 3) -> U = G g G^T for every (k, c), as 36 (16) matrices C x K, output
        channels padded with zeros to a multiple of NR_MAX and packed in panels of NR_MAX
        columns: u[xi][panel][c][NR_MAX], xi = 6 (4) * row + column of the tile."""
        k, c = w.shape[:2]
        g = self.g
        n = len(g)
        # G g G^T as two matrix products over every (c, k) at once, laid out (a, b, c, k)
        wt = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=np.float64)  # (i, j, c, k)
        t = (g @ wt.reshape(3, -1)).reshape(n, 3, c * k)  # (a, j, c k)
        return pack_columns(np.matmul(g, t).reshape(n * n, c, k))

    def scratch(self, node, ins, out_shape):
        return self.layout(node, ins, out_shape)["scratch"]

    def extra(self, node, ins, out_shape):
        return dict(wino=self.layout(node, ins, out_shape))

    def layout(self, node, ins, out_shape):
        """The geometry and where the three buffers sit in scratch (floats, 64-byte aligned):
        the zero-padded input (none on blocks), V (positions x block x C) and M (positions x
        block x K). Tiles go through in blocks: when the weight matrices stay in L2 across
        blocks, a block is sized so that its V and M stay in L2 too; otherwise one block holds
        every tile and the weights are read once. On blocks, when V and M of one panel of MR
        tiles fit in PANEL_BYTES, the layer goes panel by panel (``panels``), V and M on each
        thread's stack."""
        tile = self.tile
        n = self.positions
        (pt, pb), (pl, pr) = conv_pads(node.attrs)
        c, (h, w) = ins[0].shape[1], ins[0].shape[2:]
        k = out_shape[1]
        th, tw = tiles(out_shape, tile)
        t = th * tw
        tiles_pad = -(-t // MR) * MR
        kpad = -(-k // NR_MAX) * NR_MAX
        block = tiles_pad
        if n * c * kpad * 4 <= BLOCK_WEIGHT_BYTES:
            fit = BLOCK_BYTES // (n * 4 * (c + kpad)) // MR * MR
            block = min(tiles_pad, max(MR, fit))
        hq, wq = max(h + pt + pb, tile * th + 2), max(w + pl + pr, tile * tw + 2)

        def aligned(n):
            return -(-n // 16) * 16
        on_blocks = self.layout_in == BLOCKS  # the transform reads the blocks: no copy
        panels = on_blocks and n * MR * (c + kpad) * 4 <= PANEL_BYTES
        if panels:
            block = MR
        v_offset = 0 if on_blocks else aligned(c * hq * wq)
        m_offset = v_offset + aligned(n * block * c)
        return dict(tiles_h=th, tiles_w=tw, tiles=t, block=block, kpad=kpad, hq=hq, wq=wq,
                    v_offset=v_offset, m_offset=m_offset, tile=tile, tile_pixels=tile * tile,
                    patch=tile + 2, panels=panels, v_floats=n * block * c,
                    m_floats=n * block * kpad, positions=n, input_fn=self.input_fn,
                    output_fn=self.output_fn, scratch=0 if panels else m_offset + n * block * kpad)


class WinogradF4x4(Winograd):
    name = "nchw.winograd_f4x4"
    tile, g, b_t, a_t = 4, G4, B4_T, A4_T
    input_fn, output_fn = "cnn_winograd_input", "cnn_winograd_output"


class WinogradF2x2(Winograd):
    """For images with 16-63 2x2 tiles, too few 4x4 ones; the weights grow 1.8x."""
    name = "nchw.winograd_f2x2"
    tile, g, b_t, a_t = 2, G2, B2_T, A2_T
    input_fn, output_fn = "cnn_winograd2_input", "cnn_winograd2_output"


class OnBlocks:
    """A Winograd kernel inside a run on channel blocks: the input transform reads the
    blocks, the output tiles are stored as 16-channel vectors; small layers go panel by
    panel."""
    layout_in = BLOCKS
    layout_out = BLOCKS
    per_layer = False

    def applies(self, node):
        return applies_3x3(node) and activation_code(node) is not None

    def pack(self, node):
        return dict(super().pack(node), **padded_bias(node, node.params["weight"].shape[0]))

    def packed_shapes(self, node):
        shapes = super().packed_shapes(node)
        if "bias" in shapes:
            shapes["bias"] = (blocks(node.params["weight"].shape[0]) * BLOCK,)
        return shapes

    def extra(self, node, ins, out_shape):
        return dict(super().extra(node, ins, out_shape), on_blocks=True,
                    **blocked_lower(node, ins, rows=True))


class WinogradF4x4Blocks(OnBlocks, WinogradF4x4):
    name = "nchw16c.winograd_f4x4"


class WinogradF2x2Blocks(OnBlocks, WinogradF2x2):
    name = "nchw16c.winograd_f2x2"


def gains_on_blocks(node):
    """Whether F(4x4, 3x3) on blocks should replace nchw16c.direct on a layer the planes
    rule leaves to other kernels for its few output channels: on blocks there is no padded
    copy and no per-pixel store, and small layers go panel by panel."""
    return (applies_3x3(node) and node.attrs["in_channels"] >= MIN_CHANNELS
            and math.prod(tiles(node.meta["shape"], WinogradF4x4.tile)) >= MIN_TILES)
