"""Pooling on channel blocks (runtime/cnn_nchwc.h), called directly: the global average (whole,
or in parts that threads share, global_pool_blocks.c.j2), the global average that computes
its input through a 1x1 convolution (global_pool_pointwise_blocks.c.j2), and max pooling
(max_pool2d_blocks.c.j2)."""
import numpy as np
import pytest

import c_harness
from c_harness import (ACTIVATIONS, BLOCK, PARALLEL, TILES, assert_close, assert_equal, filled,
                       ptr, random)

HEADERS = ["cnn_nchw16c_pool.h"]

SOURCE = c_harness.TILES_C + r"""
/* the parts' sums added in order, each block's average stored */
static void average(const float *sums, int parts, int blocks, int channels, float divisor,
                    float *y)
{
    for (int b = 0; b < blocks; ++b) {
        cnn_vb s = cnn_bload(sums + b * CNN_CB);
        for (int q = 1; q < parts; ++q)
            s = cnn_badd(s, cnn_bload(sums + ((size_t)q * blocks + b) * CNN_CB));
        cnn_global_avg_store(s, channels, divisor, y, b);
    }
}

/* what the tasks of global_avg() share: the sizes and the tensors */
struct sum_args {
    int blocks, plane, parts;
    const float *x;
    float *scratch;
};

/* parts [q0, q1): part q's sums at scratch + q * blocks * CNN_CB */
static inline void sum_parts_task(void *ctx, int q0, int q1, int slot)
{
    const struct sum_args *a = ctx;
    (void)slot;
    for (int q = q0; q < q1; ++q)
        cnn_global_sum_part(a->x, a->blocks, a->plane, a->parts, q,
                            a->scratch + (size_t)q * a->blocks * CNN_CB);
}

/* parts 1: each block's sum at once; more: the parts' sums into scratch, then added */
void global_avg(const float *x, int channels, int plane, int parts, float divisor, float *y,
                float *scratch, int parallel)
{
    const int blocks = (channels + CNN_CB - 1) / CNN_CB;
    if (parts == 1) {
        for (int b = 0; b < blocks; ++b)
            cnn_global_avg_store(cnn_block_sum(x + (size_t)b * plane * CNN_CB, 0, plane),
                                 channels, divisor, y, b);
        return;
    }
    struct sum_args a = {.blocks = blocks, .plane = plane, .parts = parts, .x = x,
                         .scratch = scratch};
    cnn_parallel(parallel, parts, sum_parts_task, &a);
    average(scratch, parts, blocks, channels, divisor, y);
}

static __attribute__((noinline)) void
pool_part(int tile, int k_n, int blocks, int plane, int parts, int pixels, int q,
          const float *x, const float *w, const float *bias, int act, float *sums)
{
    if (distinct_tile(tile) == 0)
        cnn_pointwise_pool_part((cnn_conv16_geom){.mr = CNN_TILE_MR, .nb = CNN_TILE_NB,
                                                  .in_channels = k_n, .out_blocks = blocks,
                                                  .out_h = 1, .out_w = plane, .act = act},
                                parts, pixels, q, x, w, bias, sums);
    else
        cnn_pointwise_pool_part((cnn_conv16_geom){.mr = CNN_TILE7_MR, .nb = CNN_WIDE_NB,
                                                  .in_channels = k_n, .out_blocks = blocks,
                                                  .out_h = 1, .out_w = plane, .act = act},
                                parts, pixels, q, x, w, bias, sums);
}

/* what the tasks of pointwise_avg() share: the tile, the sizes and the tensors */
struct pool_part_args {
    int tile, k_n, blocks, plane, parts, pixels, act;
    const float *x, *w, *bias;
    float *scratch;
};

/* parts [q0, q1): part q's sums at scratch + q * blocks * CNN_CB */
static inline void pool_parts_task(void *ctx, int q0, int q1, int slot)
{
    const struct pool_part_args *a = ctx;
    (void)slot;
    for (int q = q0; q < q1; ++q)
        pool_part(a->tile, a->k_n, a->blocks, a->plane, a->parts, a->pixels, q, a->x, a->w,
                  a->bias, a->act, a->scratch + (size_t)q * a->blocks * CNN_CB);
}

/* the average of act(W x + b) over the plane, its pixels in parts and runs of `pixels`;
 * tile 0 (narrow) or 3 (wide, 7 pixels) */
void pointwise_avg(int tile, int k_n, int channels, int plane, int parts, int pixels,
                   const float *x, const float *w, const float *bias, int act, float *y,
                   float *scratch, int parallel)
{
    const int blocks = (channels + CNN_CB - 1) / CNN_CB;
    struct pool_part_args a = {.tile = tile, .k_n = k_n, .blocks = blocks, .plane = plane,
                               .parts = parts, .pixels = pixels, .act = act, .x = x, .w = w,
                               .bias = bias, .scratch = scratch};
    cnn_parallel(parallel, parts, pool_parts_task, &a);
    average(scratch, parts, blocks, channels, (float)plane, y);
}

/* g: in_h, in_w, out_h, out_w, kh, kw, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w,
 * col_lo, col_hi */
static __attribute__((noinline)) void
max_pool_row(const int *g, const float *x, float *y, int act, int r)
{
    cnn_max_pool_block_row(g[0], g[1], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11],
                           g[12], g[13], x, y + (size_t)r * g[3] * CNN_CB, act, r / g[2],
                           r % g[2]);
}

/* what the tasks of max_pool() share: the geometry and the tensors */
struct max_pool_args {
    const int *g;
    const float *x;
    float *y;
    int act;
};

/* output rows [r0, r1): row r % out_h of block r / out_h */
static inline void max_pool_task(void *ctx, int r0, int r1, int slot)
{
    const struct max_pool_args *a = ctx;
    (void)slot;
    for (int r = r0; r < r1; ++r)
        max_pool_row(a->g, a->x, a->y, a->act, r);
}

void max_pool(const int *g, int blocks, const float *x, float *y, int act, int parallel)
{
    struct max_pool_args a = {.g = g, .x = x, .y = y, .act = act};
    cnn_parallel(parallel, blocks * g[2], max_pool_task, &a);
}
"""

lib = c_harness.fixture(HEADERS, SOURCE, c_harness.BLOCKED_FLAVOURS)


@pytest.mark.parametrize("channels", [1, 16, 21, 40])
@pytest.mark.parametrize("plane", [1, 3, 7, 50])
@pytest.mark.parametrize("parts", [1, 2, 8])
def test_global_average(lib, channels, plane, parts):
    parts = min(parts, plane)
    rng = np.random.default_rng(channels * plane)
    x = random(rng, (channels, plane), -4, 4)
    xb = c_harness.to_blocks(x)
    blocks = xb.shape[0]
    divisor = float(plane)
    for parallel, threads in PARALLEL:
        y = filled(blocks * BLOCK)
        scratch = filled(parts * blocks * BLOCK)
        with c_harness.threads(lib, threads):
            lib.lib.global_avg(ptr(lib, xb), channels, plane, parts, divisor, ptr(lib, y),
                               ptr(lib, scratch), parallel)
        what = f"parallel {parallel}, {threads} threads"
        assert_close(y[:channels], x.astype(np.float64).mean(axis=1),
                     np.abs(x).mean(axis=1), what)
        assert np.isnan(y[channels:]).all(), f"{what}: written past the channels"


@pytest.mark.parametrize("k_n,channels,plane", [(1, 3, 1), (5, 16, 7), (16, 40, 30),
                                                (17, 70, 50), (33, 20, 9)])
@pytest.mark.parametrize("tile_name", ["narrow", "wide7"])
@pytest.mark.parametrize("parts,pixels", [(1, 24), (8, 24), (3, 5)])
@pytest.mark.parametrize("act,bias", [(0, False), (2, True)])
def test_pointwise_average(lib, k_n, channels, plane, tile_name, parts, pixels, act, bias):
    """The pipelined pool: each part's pixels through the 1x1 layer in runs, summed as each
    tile finishes, the parts added in order."""
    parts, pixels = min(parts, plane), min(pixels, plane)
    rng = np.random.default_rng(k_n * channels + plane)
    x = random(rng, (k_n, plane))
    w = random(rng, (channels, k_n, 1, 1))
    b = random(rng, channels, -8, 8) if bias else None
    wp, bp = c_harness.pack_blocked("nchw16c.pointwise", w, b)
    blocks = -(-channels // BLOCK)
    z = w.reshape(channels, k_n).astype(np.float64) @ x
    mag = np.abs(w.reshape(channels, k_n)) @ np.abs(x)
    if bias:
        z += b[:, None]
        mag += np.abs(b)[:, None]
    expected = ACTIVATIONS[act](z).mean(axis=1)
    for parallel, threads in PARALLEL:
        y = filled(blocks * BLOCK)
        scratch = filled(parts * blocks * BLOCK)
        with c_harness.threads(lib, threads):
            lib.lib.pointwise_avg(TILES[tile_name], k_n, channels, plane, parts, pixels,
                                  ptr(lib, c_harness.to_blocks(x)), ptr(lib, wp), ptr(lib, bp),
                                  act, ptr(lib, y), ptr(lib, scratch), parallel)
        what = f"parallel {parallel}, {threads} threads"
        assert_close(y[:channels], expected, mag.mean(axis=1), what)


def pool_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def max_pool_reference(x, kernel, stride, padding, dilation):
    """The largest of each window's values inside the input (padding never wins), NaN
    winning."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    c, h, w = x.shape
    oh, ow = pool_out(h, kh, sh, ph, dh), pool_out(w, kw, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (ph, ph + sh), (pw, pw + sw)), constant_values=-np.inf)
    y = np.full((c, oh, ow), -np.inf, np.float32)
    for i in range(kh):
        for j in range(kw):
            y = np.fmax(y, xp[:, i * dh:i * dh + oh * sh:sh, j * dw:j * dw + ow * sw:sw])
    nan = np.zeros((c, oh, ow), bool)  # NaN wins: where any tap inside is NaN
    for i in range(kh):
        for j in range(kw):
            nan |= np.isnan(xp[:, i * dh:i * dh + oh * sh:sh, j * dw:j * dw + ow * sw:sw])
    y[nan] = np.nan
    return y


# (channels, in_h, in_w, kernel, stride, padding, dilation)
POOLS = [(1, 1, 1, (1, 1), (1, 1), (0, 0), (1, 1)),
         (16, 8, 8, (2, 2), (2, 2), (0, 0), (1, 1)),
         (5, 9, 11, (3, 3), (2, 2), (1, 1), (1, 1)),
         (20, 13, 7, (3, 2), (1, 2), (1, 1), (2, 1)),
         (33, 6, 17, (5, 5), (3, 1), (2, 2), (1, 2))]


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("act", [0, 1, 2])
@pytest.mark.parametrize("nan", [False, True], ids=["finite", "nan"])
def test_max_pool(lib, pool, act, nan):
    c, h, w, kernel, stride, padding, dilation = pool
    out_h = pool_out(h, kernel[0], stride[0], padding[0], dilation[0])
    out_w = pool_out(w, kernel[1], stride[1], padding[1], dilation[1])
    lo, hi = c_harness.inner_range(w, out_w, kernel[1], stride[1], padding[1], dilation[1])
    geometry = np.array([h, w, out_h, out_w, *kernel, *stride, *padding, *dilation, lo, hi],
                        np.int32)
    rng = np.random.default_rng(c * h * w)
    x = random(rng, (c, h, w), -8, 8)
    if nan:
        x[rng.random(x.shape) < 0.05] = np.nan
    blocks = -(-c // BLOCK)
    expected = max_pool_reference(x, kernel, stride, padding, dilation)
    with np.errstate(invalid="ignore"):
        expected = np.where(np.isnan(expected), expected, ACTIVATIONS[act](expected))
    for parallel, threads in PARALLEL:
        y = filled((blocks, out_h, out_w, BLOCK), 7.0)
        with c_harness.threads(lib, threads):
            lib.lib.max_pool(ptr(lib, geometry), blocks, ptr(lib, c_harness.to_blocks(x)),
                             ptr(lib, y), act, parallel)
        assert_equal(c_harness.from_blocks(y, c), expected,
                     f"parallel {parallel}, {threads} threads")
