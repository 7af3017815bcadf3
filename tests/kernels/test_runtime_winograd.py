"""Winograd F(4x4, 3x3) and F(2x2, 3x3), called directly: the input transforms (from padded
planes, runtime/cnn_winograd.h, and from channel blocks, runtime/cnn_nchw16c_winograd.h), the 36 (16)
products, and the output transforms, against the matrices of cnncompile/ops/winograd.py."""
import numpy as np
import pytest

import c_harness
from c_harness import PARALLEL, assert_close, assert_equal, filled, ptr, random

HEADERS = ["cnn_winograd.h", "cnn_nchw16c_winograd.h"]

SOURCE = r"""
void constants(int *out)
{
    out[0] = CNN_MR;
    out[1] = CNN_WINO_KB;
}

void winograd_input(int tile, const float *xp, int channels, int hq, int wq, int tiles_w,
                    int first, int count, int rows, float *v, int parallel)
{
    if (tile == 4)
        cnn_winograd_input(xp, channels, hq, wq, tiles_w, first, count, rows, v, parallel);
    else
        cnn_winograd2_input(xp, channels, hq, wq, tiles_w, first, count, rows, v, parallel);
}

void winograd_output(int tile, const float *m, size_t stride, float *o)
{
    if (tile == 4)
        cnn_winograd_output(m, stride, (float (*)[CNN_WINO_KB])o);
    else
        cnn_winograd2_output(m, stride, (float (*)[CNN_WINO_KB])o);
}

void winograd_gemm(int positions, int tiles_pad, int channels, int kpad, const float *v,
                   const float *u, float *m, int parallel)
{
    cnn_winograd_gemm(positions, tiles_pad, channels, kpad, v, u, m, parallel);
}

void winograd_panel_gemm(int positions, int channels, int kpad, const float *v,
                         const float *u, float *m)
{
    cnn_winograd_panel_gemm(positions, channels, kpad, v, u, m);
}

/* what the tasks of winograd_blocks_input() share: the geometry, the tiles and the tensors */
struct blocks_input_args {
    int channels, in_h, in_w, pad_top, pad_left, size, tiles_w, first, count, rows;
    const float *x;
    float *v;
};

/* panels [q0, q1): panel q is rows q * CNN_MR on of v */
static inline void blocks_input_task(void *ctx, int q0, int q1, int slot)
{
    const struct blocks_input_args *a = ctx;
    (void)slot;
    for (int q = q0; q < q1; ++q)
        cnn_winograd_blocks_input(a->x, a->channels, a->in_h, a->in_w, a->pad_top, a->pad_left,
                                  a->size, a->tiles_w, a->first, a->count, a->rows, a->v,
                                  q * CNN_MR);
}

/* every panel of tiles [first, first + count), as conv_winograd.c.j2 runs them */
void winograd_blocks_input(const float *x, int channels, int in_h, int in_w, int pad_top,
                           int pad_left, int size, int tiles_w, int first, int count,
                           int rows, float *v, int parallel)
{
    struct blocks_input_args a = {.channels = channels, .in_h = in_h, .in_w = in_w,
                                  .pad_top = pad_top, .pad_left = pad_left, .size = size,
                                  .tiles_w = tiles_w, .first = first, .count = count,
                                  .rows = rows, .x = x, .v = v};
    cnn_parallel(parallel, (rows + CNN_MR - 1) / CNN_MR, blocks_input_task, &a);
}
"""

lib = c_harness.fixture(HEADERS, SOURCE)

MR = 8  # tiles per panel: CNN_MR, checked below
VARIANT = {4: c_harness.WINOGRAD["nchw.winograd_f4x4"], 2: c_harness.WINOGRAD["nchw.winograd_f2x2"]}


def test_constants(lib):
    out = np.zeros(2, np.int32)
    lib.lib.constants(ptr(lib, out))
    assert out.tolist() == [MR, c_harness.BLOCK]


def transformed_inputs(xp, tile, tiles_w, first, count, rows):
    """V = B^T d B of the patches of tiles [first, first + count) of the planes xp (channels x
    hq x wq), as v[xi][tile / MR][c][tile % MR], and |B^T| |d| |B| (the size of its terms)."""
    b_t = VARIANT[tile]["b_t"]
    size, channels = tile + 2, xp.shape[0]
    v = np.zeros((size * size, rows // MR, channels, MR))
    mag = np.zeros_like(v)
    for l in range(count):
        t = first + l
        r0, c0 = t // tiles_w * tile, t % tiles_w * tile
        d = xp[:, r0:r0 + size, c0:c0 + size].astype(np.float64)
        v[:, l // MR, :, l % MR] = (b_t @ d @ b_t.T).reshape(channels, -1).T
        mag[:, l // MR, :, l % MR] = (abs(b_t) @ abs(d) @ abs(b_t.T)).reshape(channels, -1).T
    return v, mag


# (channels, tiles_h, tiles_w, first, count): all the tiles, or a block of them from `first`
TILINGS = [(1, 1, 1, 0, 1), (3, 2, 3, 0, 6), (2, 3, 5, 0, 15), (17, 4, 9, 0, 36),
           (4, 5, 7, 9, 13), (2, 3, 2, 2, 3)]


@pytest.mark.parametrize("tile", [4, 2])
@pytest.mark.parametrize("tiling", TILINGS)
def test_input_transform(lib, tile, tiling):
    channels, tiles_h, tiles_w, first, count = tiling
    rng = np.random.default_rng(channels * tiles_w + first)
    hq, wq = tile * tiles_h + 2, tile * tiles_w + 3
    rows = -(-count // MR) * MR
    # the planes, then what the reads past a patch row may reach (NaN: never a result)
    xp = np.concatenate([random(rng, channels * hq * wq), filled(64)])
    planes = xp[:channels * hq * wq].reshape(channels, hq, wq)
    expected, mag = transformed_inputs(planes, tile, tiles_w, first, count, rows)
    for parallel, threads in PARALLEL:
        v = filled((tile + 2) ** 2 * rows * channels)
        with c_harness.threads(lib, threads):
            lib.lib.winograd_input(tile, ptr(lib, xp), channels, hq, wq, tiles_w, first, count,
                                   rows, ptr(lib, v), parallel)
        assert_close(v.reshape(expected.shape), expected, mag,
                     f"parallel {parallel}, {threads} threads")


@pytest.mark.parametrize("tile", [4, 2])
@pytest.mark.parametrize("stride", [16, 21])
def test_output_transform(lib, tile, stride):
    a_t = VARIANT[tile]["a_t"]
    size = tile + 2
    rng = np.random.default_rng(tile + stride)
    m = random(rng, size * size * stride, -10, 10)
    o = filled((tile * tile, c_harness.BLOCK))
    lib.lib.winograd_output(tile, ptr(lib, m), stride, ptr(lib, o))
    mk = m.reshape(size, size, stride)[:, :, :c_harness.BLOCK].astype(np.float64)
    expected = np.einsum("ia,abk,jb->ijk", a_t, mk, a_t).reshape(tile * tile, -1)
    mag = np.einsum("ia,abk,jb->ijk", abs(a_t), abs(mk), abs(a_t)).reshape(tile * tile, -1)
    assert_close(o, expected, mag)


def products(v, u, k):
    """M_xi = V_xi U_xi: v[xi][tile / MR][c][tile % MR], u (xi, c, k) -> (xi, tiles, k)."""
    vt = v.transpose(0, 1, 3, 2).reshape(v.shape[0], -1, v.shape[2]).astype(np.float64)
    return vt @ u, abs(vt) @ abs(u)


@pytest.mark.parametrize("positions", [36, 16])
@pytest.mark.parametrize("tiles_pad,channels,k", [(8, 1, 1), (16, 3, 33), (24, 300, 40),
                                                  (8, 17, 64)])
def test_products(lib, positions, tiles_pad, channels, k):
    rng = np.random.default_rng(tiles_pad + channels + k)
    kpad = -(-k // c_harness.BPANEL) * c_harness.BPANEL
    v = random(rng, (positions, tiles_pad // MR, channels, MR))
    u = random(rng, (positions, channels, k))
    expected, mag = products(v, u, k)
    for parallel, threads in PARALLEL:
        m = filled((positions, tiles_pad, kpad))
        with c_harness.threads(lib, threads):
            lib.lib.winograd_gemm(positions, tiles_pad, channels, kpad, ptr(lib, v),
                                  ptr(lib, c_harness.pack_columns(u)), ptr(lib, m), parallel)
        what = f"parallel {parallel}, {threads} threads"
        assert_close(m[:, :, :k], expected, mag, what)
        assert_equal(m[:, :, k:], np.zeros((positions, tiles_pad, kpad - k)),
                     f"{what}: padding columns")


@pytest.mark.parametrize("positions", [36, 16])
@pytest.mark.parametrize("channels,k", [(1, 1), (5, 33), (16, 64), (19, 7)])
def test_panel_products(lib, positions, channels, k):
    rng = np.random.default_rng(channels + k)
    kpad = -(-k // c_harness.BPANEL) * c_harness.BPANEL
    v = random(rng, (positions, 1, channels, MR))
    u = random(rng, (positions, channels, k))
    m = filled((positions, MR, kpad))
    lib.lib.winograd_panel_gemm(positions, channels, kpad, ptr(lib, v),
                                ptr(lib, c_harness.pack_columns(u)), ptr(lib, m))
    expected, mag = products(v, u, k)
    assert_close(m[:, :, :k], expected, mag)


def conv3x3(x, w, pad):
    """The reference: a 3x3, stride-1 convolution, zero padding pad on each side."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
    oh, ow = xp.shape[1] - 2, xp.shape[2] - 2
    y = np.zeros((w.shape[0], oh, ow))
    mag = np.zeros_like(y)
    for i in range(3):
        for j in range(3):
            patch = xp[:, i:i + oh, j:j + ow]
            y += np.einsum("kc,chw->khw", w[:, :, i, j], patch)
            mag += np.einsum("kc,chw->khw", abs(w[:, :, i, j]), abs(patch))
    return y, mag


@pytest.mark.parametrize("tile", [4, 2])
@pytest.mark.parametrize("c,k,h,w", [(1, 1, 3, 3), (3, 5, 7, 6), (17, 33, 11, 9)])
def test_convolution(lib, tile, c, k, h, w):
    """The three steps with the weight transform the compiler packs (G g G^T, in
    transform_weights): transforms and matrices agree, and the tiles make the convolution."""
    name = {4: "nchw.winograd_f4x4", 2: "nchw.winograd_f2x2"}[tile]
    rng = np.random.default_rng(c * k)
    x = random(rng, (c, h, w))
    wt = random(rng, (k, c, 3, 3))
    tiles_h, tiles_w = -(-h // tile), -(-w // tile)  # padding 1: the output is h x w
    tiles, rows = tiles_h * tiles_w, -(-tiles_h * tiles_w // MR) * MR
    hq, wq = tile * tiles_h + 2, tile * tiles_w + 2
    xp = np.zeros(c * hq * wq + 64, np.float32)
    xp[:c * hq * wq].reshape(c, hq, wq)[:, 1:h + 1, 1:w + 1] = x
    positions = (tile + 2) ** 2
    v = filled(positions * rows * c)
    lib.lib.winograd_input(tile, ptr(lib, xp), c, hq, wq, tiles_w, 0, tiles, rows,
                           ptr(lib, v), 0)
    u = c_harness.transform_weights(wt, name)
    kpad = u.shape[1] * c_harness.BPANEL
    m = filled((positions, rows, kpad))
    lib.lib.winograd_gemm(positions, rows, c, kpad, ptr(lib, v), ptr(lib, u), ptr(lib, m), 0)
    y = np.zeros((k, tiles_h * tile, tiles_w * tile), np.float32)
    o = filled((tile * tile, c_harness.BLOCK))
    for t in range(tiles):
        for k0 in range(0, k, c_harness.BLOCK):
            lib.lib.winograd_output(tile, ptr(lib, np.ascontiguousarray(m[:, t, k0:])),
                                    kpad - k0, ptr(lib, o))
            ks = min(c_harness.BLOCK, k - k0)
            r0, c0 = t // tiles_w * tile, t % tiles_w * tile
            y[k0:k0 + ks, r0:r0 + tile, c0:c0 + tile] = o[:, :ks].T.reshape(ks, tile, tile)
    expected, mag = conv3x3(x, wt, 1)
    # the transforms scale the terms by up to 100 (F(4x4, 3x3)), which rounding follows
    assert_close(y[:, :h, :w], expected, 100 * mag if tile == 4 else 4 * mag)


# (channels, in_h, in_w, pad_top, pad_left, first, count): all the tiles, or `count` from
# `first`; padding 1 on both sides, or (padding (1, 0) of a layer) on the left and right
BLOCK_CASES = [(1, 3, 3, 1, 1, 0, None), (5, 7, 6, 1, 1, 0, None), (16, 9, 9, 0, 0, 0, None),
               (21, 13, 10, 1, 1, 3, 5), (33, 6, 13, 1, 0, 0, None), (3, 1, 1, 1, 1, 0, None),
               (17, 8, 11, 0, 1, 1, 4)]


@pytest.mark.parametrize("tile", [4, 2])
@pytest.mark.parametrize("case", BLOCK_CASES)
def test_blocks_input_transform(lib, tile, case):
    channels, h, w, top, left, first, count = case
    out_h, out_w = h + 2 * top - 2, w + 2 * left - 2
    tiles_h, tiles_w = -(-out_h // tile), -(-out_w // tile)
    count = tiles_h * tiles_w if count is None else count
    rows = -(-count // MR) * MR
    rng = np.random.default_rng(channels * h + w)
    x = random(rng, (channels, h, w))
    # the same as from padded planes with the tiles' patches inside them
    hq, wq = tile * tiles_h + 2, tile * tiles_w + 2
    planes = np.zeros((channels, max(hq, h + top), max(wq, w + left)), np.float32)
    planes[:, top:top + h, left:left + w] = x
    expected, mag = transformed_inputs(planes, tile, tiles_w, first, count, rows)
    for parallel, threads in PARALLEL:
        v = filled((tile + 2) ** 2 * rows * channels)
        with c_harness.threads(lib, threads):
            lib.lib.winograd_blocks_input(ptr(lib, c_harness.to_blocks(x)), channels, h, w, top,
                                          left, tile + 2, tiles_w, first, count, rows,
                                          ptr(lib, v), parallel)
        assert_close(v.reshape(expected.shape), expected, mag,
                     f"parallel {parallel}, {threads} threads")
