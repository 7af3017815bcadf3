"""Winograd F(4x4, 3x3) and F(2x2, 3x3) for 3x3 stride-1 convolutions
(runtime/cnn_winograd.h): the layout of their scratch and the weight transform, done here at
compile time.

Matrices from Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016);
F(4x4, 3x3) with interpolation points 0, 1, -1, 2, -2 and infinity. An m x m output tile is
A^T [(G g G^T) . (B^T d B)] A for a 3x3 kernel g and the (m + 2) x (m + 2) input patch d under
the tile.
"""
import math

import numpy as np

from . import conv  # conv.py imports this module: names are read at call time


G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]])
B_T = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=float)
A_T = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=float)
# F(2x2, 3x3): points 0, 1, -1 and infinity
G2 = np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]])
B2_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
A2_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)

# kernel -> output tile side, the three matrices (G is applied here, B^T and A^T by the
# runtime's transforms, written out in runtime/cnn_winograd.h), and those transforms
VARIANTS = {
    "winograd_f4x4_3x3": dict(tile=4, g=G, b_t=B_T, a_t=A_T, input_fn="cnn_winograd_input",
                              output_fn="cnn_winograd_output"),
    "winograd_f2x2_3x3": dict(tile=2, g=G2, b_t=B2_T, a_t=A2_T, input_fn="cnn_winograd2_input",
                              output_fn="cnn_winograd2_output"),
}


def applies(node):
    """A 2-D, 3x3, stride-1, undilated, ungrouped convolution."""
    a = node.attrs
    return (len(a["kernel_size"]) == 2 and tuple(a["kernel_size"]) == (3, 3)
            and tuple(a["stride"]) == (1, 1) and tuple(a["dilation"]) == (1, 1)
            and a["groups"] == 1)


def positions(kernel):
    """Values per transformed tile: 36 for F(4x4, 3x3), 16 for F(2x2, 3x3)."""
    return (VARIANTS[kernel]["tile"] + 2) ** 2


def tiles(out_shape, tile):
    return -(-out_shape[2] // tile), -(-out_shape[3] // tile)


def layout(node, ins, out_shape, kernel):
    """The kernel's geometry and where its three buffers sit in scratch (floats, 64-byte
    aligned): the zero-padded input (none for a layer on blocks), V (36 x block x C) and M
    (36 x block x K).

    Tiles go through in blocks. When the 36 weight matrices are small enough to stay in L2
    across blocks, a block is sized so that its V and M stay in L2 too between the
    transforms and the products (ResNet-18's 56x56 layers: 4 blocks); otherwise one block
    holds every tile and the weights are read once. On blocks, when V and M of one panel of
    MR tiles fit in PANEL_BYTES, the layer goes panel by panel instead (``panels``), V and M
    on each thread's stack and none in scratch."""
    variant = VARIANTS[kernel]
    tile = variant["tile"]
    n = positions(kernel)
    (pt, pb), (pl, pr) = conv.conv_pads(node.attrs)
    c, (h, w) = ins[0].shape[1], ins[0].shape[2:]
    k = out_shape[1]
    th, tw = tiles(out_shape, tile)
    t = th * tw
    tiles_pad = -(-t // conv.MR) * conv.MR
    kpad = -(-k // conv.NR_MAX) * conv.NR_MAX
    block = tiles_pad
    if n * c * kpad * 4 <= BLOCK_WEIGHT_BYTES:
        fit = BLOCK_BYTES // (n * 4 * (c + kpad)) // conv.MR * conv.MR
        block = min(tiles_pad, max(conv.MR, fit))
    hq, wq = max(h + pt + pb, tile * th + 2), max(w + pl + pr, tile * tw + 2)

    def aligned(n):
        return -(-n // 16) * 16
    # on blocks, the input transform reads the blocks themselves: no padded copy
    on_blocks = node.meta.get("layout") == "blocks"
    # few channels: each thread takes one panel of tiles through all three steps, its V and M
    # on its stack
    panels = on_blocks and n * conv.MR * (c + kpad) * 4 <= PANEL_BYTES
    if panels:
        block = conv.MR
    v_offset = 0 if on_blocks else aligned(c * hq * wq)
    m_offset = v_offset + aligned(n * block * c)
    return dict(tiles_h=th, tiles_w=tw, tiles=t, block=block, kpad=kpad, hq=hq, wq=wq,
                v_offset=v_offset, m_offset=m_offset, tile=tile, tile_pixels=tile * tile,
                patch=tile + 2, panels=panels, v_floats=n * block * c,
                m_floats=n * block * kpad, positions=n, input_fn=variant["input_fn"],
                output_fn=variant["output_fn"],
                scratch=0 if panels else m_offset + n * block * kpad)


# Tile blocks: weights up to 1 MiB stay in L2 across blocks; V and M of a block take 1 MiB.
BLOCK_WEIGHT_BYTES = 1 << 20
BLOCK_BYTES = 1 << 20
# V and M of one panel of tiles, at most, for a layer on blocks to go panel by panel, on each
# thread's stack (128 KiB, as depthwise_planes). Against the tile blocks, one thread: 32 -> 32
# channels on 50x50 0.77x the time, 32 -> 48 on 32x32 0.75x, 48 -> 48 on 24x24 0.84x.
# ResNet-18's 64 -> 64 layers (147 KiB) gained 1% and stay in blocks.
PANEL_BYTES = 128 << 10


def transform_weights(w, kernel):
    """(K, C, 3, 3) -> U = G g G^T for every (k, c), as 36 (16) matrices C x K, output
    channels padded with zeros to a multiple of NR_MAX and packed in panels of NR_MAX columns:
    u[xi][panel][c][NR_MAX], xi = 6 (4) * row + column of the transformed tile."""
    k, c = w.shape[:2]
    g = VARIANTS[kernel]["g"]
    n = len(g)
    # G g G^T as two matrix products over every (c, k) at once, laid out (a, b, c, k) as
    # they come (an einsum of the same took ~0.6 s for ResNet-18)
    wt = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=np.float64)  # (i, j, c, k)
    t = (g @ wt.reshape(3, -1)).reshape(n, 3, c * k)  # (a, j, c k)
    return conv.pack_columns(np.matmul(g, t).reshape(n * n, c, k))


def efficient(node, ins, out_shape, kernel):
    """Worth choosing over the shifted GEMM: enough tiles for the 36 products to fill the
    micro-kernel's rows, and enough channels that the products, not the transforms, are the
    bulk of the work (on planes; on blocks see gains_on_blocks). The weights grow 4x (36
    values for 9), so a layer with few tiles would mostly stream weights. Measured, one
    thread, on planes: 16 -> 32 channels on 50x50 ran at 0.7x the
    shifted GEMM, 32 -> 32 at 0.9x, 32 -> 64 on 32x32 1.6x, 64 -> 128 on 16x16 1.8x.
    F(2x2, 3x3) (16 positions, the weights 1.8x) covers images with 16-63 2x2 tiles: 512
    channels on 7x7 ran 1.3x im2row_gemm, 256 on 8x8 2x; 512 on 4x4 (4 tiles) 0.7x."""
    t = math.prod(tiles(out_shape, VARIANTS[kernel]["tile"]))
    return (t >= WINOGRAD_MIN_TILES and ins[0].shape[1] >= WINOGRAD_MIN_CHANNELS
            and out_shape[1] >= WINOGRAD_MIN_OUT_CHANNELS)


def gains_on_blocks(node):
    """Whether F(4x4, 3x3) on blocks should replace direct_nchwc on a layer `efficient` leaves
    to other kernels for its few output channels: on blocks there is no padded copy and no
    per-pixel store, and small layers go panel by panel. Measured against direct_nchwc, each
    model a 3x3 convolution, ReLU and 2x2 max pool with the input reordered into blocks,
    time at one / two threads (ranges over two or three runs): 16 -> 16 channels on 50x50
    0.92-0.93 / 0.93-0.94, on 24x24 0.92-0.95 / 0.75-0.86; 16 -> 32 on 50x50 0.65-0.73 /
    0.72-0.96, on 16x16 0.65 / 0.74; 32 -> 32 on 50x50 0.60 / 0.60; 32 -> 48 on 32x32
    0.54 / 0.56; 48 -> 48 on 24x24 0.59 / 0.70."""
    return (applies(node) and node.attrs["in_channels"] >= WINOGRAD_MIN_CHANNELS
            and math.prod(tiles(node.meta["shape"], VARIANTS[ON_BLOCKS]["tile"]))
            >= WINOGRAD_MIN_TILES)


ON_BLOCKS = "winograd_f4x4_3x3"  # the variant gains_on_blocks gives


WINOGRAD_MIN_TILES = 16
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_OUT_CHANNELS = 64
