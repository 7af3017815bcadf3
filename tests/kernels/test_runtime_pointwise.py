"""The 1x1 convolution on channel blocks (runtime/cnn_nchw16c_pointwise.h), called directly: each tile shape
the compiler chooses from, both loop orders of conv_pointwise_nchwc.c.j2, and the row runs a
pipelined depthwise layer computes its input with (into a ring, or summed)."""
import numpy as np
import pytest

import c_harness
from c_harness import ACTIVATIONS, BLOCK, TILES, assert_close, filled, ptr, random

HEADERS = ["cnn_nchw16c_pointwise.h"]

SOURCE = c_harness.TILES_C + r"""
/* Pair u of the (group of output blocks, pixel step) pairs of a 1x1 convolution, in the
 * orders of conv_pointwise_nchwc.c.j2: chunks of pixel steps outermost, then the groups, then
 * the chunk's steps; or with by_output the groups outermost. */
static inline __attribute__((always_inline)) void
pointwise_pair(int mr, int nb, int k_n, int out_blocks, int plane, const float *x,
               const float *w, const float *bias, const float *res, float *y, int act,
               int by_output, int chunk, int u)
{
    const int steps = cnn_pointwise_steps(plane, mr);
    const int groups = cnn_pointwise_groups(out_blocks, nb);
    int g = u / steps, t = u % steps;
    if (!by_output) {
        const int c = u / (groups * chunk), r = u % (groups * chunk);
        const int size = cnn_min(chunk, steps - c * chunk);
        g = r / size;
        t = c * chunk + r % size;
    }
    cnn_pointwise_step((cnn_conv16_geom){.mr = mr, .nb = nb, .in_channels = k_n,
                                         .out_blocks = out_blocks, .out_h = 1, .out_w = plane,
                                         .act = act},
                       x, w, bias, res, y, g, t);
}

/* not inlined into the task below, which cnn_parallel may both inline and call through the
 * pool: one copy of each tile's kernel */
static __attribute__((noinline)) void
pointwise_unit(int tile, int k_n, int out_blocks, int plane, const float *x, const float *w,
               const float *bias, const float *res, float *y, int act, int by_output,
               int chunk, int u)
{
    tile = distinct_tile(tile);
    if (tile == 0)
        pointwise_pair(CNN_TILE_MR, CNN_TILE_NB, k_n, out_blocks, plane, x, w, bias, res, y, act,
                       by_output, chunk, u);
    else if (tile == 1)
        pointwise_pair(CNN_WIDE_MR, CNN_WIDE_NB, k_n, out_blocks, plane, x, w, bias, res, y, act,
                       by_output, chunk, u);
    else if (tile == 2)
        pointwise_pair(CNN_TILE7_MR, CNN_TILE_NB, k_n, out_blocks, plane, x, w, bias, res, y, act,
                       by_output, chunk, u);
    else
        pointwise_pair(CNN_TILE7_MR, CNN_WIDE_NB, k_n, out_blocks, plane, x, w, bias, res, y, act,
                       by_output, chunk, u);
}

/* what the task of pointwise() shares: the tile, the loop order and the tensors */
struct pointwise_args {
    int tile, k_n, out_blocks, plane, act, by_output, chunk;
    const float *x, *w, *bias, *res;
    float *y;
};

/* pairs [u0, u1) */
static inline void pointwise_task(void *ctx, int u0, int u1, int slot)
{
    const struct pointwise_args *a = ctx;
    (void)slot;
    for (int u = u0; u < u1; ++u)
        pointwise_unit(a->tile, a->k_n, a->out_blocks, a->plane, a->x, a->w, a->bias, a->res,
                       a->y, a->act, a->by_output, a->chunk, u);
}

void pointwise(int tile, int k_n, int out_blocks, int plane, const float *x, const float *w,
               const float *bias, const float *res, float *y, int act, int by_output,
               int parallel)
{
    tile = distinct_tile(tile);
    const int steps = cnn_pointwise_steps(plane, tile_mr(tile));
    const int groups = cnn_pointwise_groups(out_blocks, tile_nb(tile));
    const int chunk = cnn_pointwise_chunk((k_n + CNN_CB - 1) / CNN_CB, tile_mr(tile), steps,
                                          cnn_team_if(parallel));
    struct pointwise_args a = {.tile = tile, .k_n = k_n, .out_blocks = out_blocks,
                               .plane = plane, .act = act, .by_output = by_output,
                               .chunk = chunk, .x = x, .w = w, .bias = bias, .res = res, .y = y};
    cnn_parallel(parallel, groups * steps, pointwise_task, &a);
}

/* the runs in the narrow tile (tile 0) or the wide 7-pixel one (3); the last group's
 * blocks, (ob1 - ob0) % nb, a constant as in the generated layers */
#define POINTWISE_RUN(mr, nb, tail)                                                            \
    cnn_pointwise_run(mr, nb, tail, k_n, ob0, ob1, n, xstride, ystride, x, w, bias, y, act, sum)
void pointwise_run(int tile, int k_n, int ob0, int ob1, int n, size_t xstride, size_t ystride,
                   const float *x, const float *w, const float *bias, float *y, int act,
                   int sum)
{
    const int wide = distinct_tile(tile) != 0, nb = wide ? CNN_WIDE_NB : CNN_TILE_NB;
    switch ((wide ? 4 : 0) + (ob1 - ob0) % nb) {
    case 0: POINTWISE_RUN(CNN_TILE_MR, CNN_TILE_NB, 0); break;
    case 1: POINTWISE_RUN(CNN_TILE_MR, CNN_TILE_NB, 1 % CNN_TILE_NB); break;
    case 4: POINTWISE_RUN(CNN_TILE7_MR, CNN_WIDE_NB, 0); break;
    case 5: POINTWISE_RUN(CNN_TILE7_MR, CNN_WIDE_NB, 1 % CNN_WIDE_NB); break;
    case 6: POINTWISE_RUN(CNN_TILE7_MR, CNN_WIDE_NB, 2 % CNN_WIDE_NB); break;
    default: POINTWISE_RUN(CNN_TILE7_MR, CNN_WIDE_NB, 3 % CNN_WIDE_NB); break;
    }
}
"""

lib = c_harness.fixture(HEADERS, SOURCE, c_harness.BLOCKED_FLAVOURS)



def pointwise_reference(x, w, bias, act):
    """act(W x + b) over (channels, pixels) planes, in float64, and |W| |x| + |b|."""
    y = w.astype(np.float64) @ x
    mag = np.abs(w) @ np.abs(x)
    if bias is not None:
        y += bias[:, None]
        mag += np.abs(bias)[:, None]
    return y, mag


# (input channels, output channels, pixels)
SHAPES = [(1, 3, 1), (5, 16, 3), (16, 40, 7), (17, 64, 13), (40, 80, 50), (33, 20, 6)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile_name", TILES)
@pytest.mark.parametrize("act,bias,residual", [(0, False, False), (1, True, True),
                                               (2, True, False)])
def test_pointwise(lib, shape, tile_name, act, bias, residual):
    k_n, k, plane = shape
    rng = np.random.default_rng(k_n * k + plane)
    x = random(rng, (k_n, plane))
    w = random(rng, (k, k_n, 1, 1))
    b = random(rng, k, -8, 8) if bias else None
    r = random(rng, (k, plane), -4, 4) if residual else None
    wp, bp = c_harness.pack_blocked("nchw16c.pointwise", w, b)
    out_blocks = -(-k // BLOCK)
    expected, mag = pointwise_reference(x, w.reshape(k, k_n), b, act)
    if residual:
        expected += r
        mag += np.abs(r)
    expected = ACTIVATIONS[act](expected)
    xb, rb = c_harness.to_blocks(x), None if r is None else c_harness.to_blocks(r)
    # chunks of pixel steps outermost, or output blocks (by_output)
    for by_output, parallel, threads in [(0, 0, 1), (0, 1, 1), (0, 1, 2), (1, 0, 1), (1, 1, 2)]:
        y = filled((out_blocks, plane, BLOCK))
        with c_harness.threads(lib, threads):
            lib.lib.pointwise(TILES[tile_name], k_n, out_blocks, plane, ptr(lib, xb),
                              ptr(lib, wp), ptr(lib, bp), ptr(lib, rb), ptr(lib, y), act,
                              by_output, parallel)
        what = f"by_output {by_output}, parallel {parallel}, {threads} threads"
        assert_close(c_harness.from_blocks(y, k), expected, mag, what)
        assert (c_harness.to_blocks(c_harness.from_blocks(y, k)) == y).all(), \
            f"{what}: padding channels not zero"


# (input channels, output channels, image height, width, output blocks [ob0, ob1))
RUNS = [(3, 16, 2, 1, 0, 1), (16, 40, 3, 7, 1, 3), (17, 70, 2, 14, 0, 5), (40, 33, 4, 5, 2, 3)]


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("tile_name", ["narrow", "wide7"])
@pytest.mark.parametrize("act,bias", [(0, False), (2, True)])
@pytest.mark.parametrize("sum_", [0, 1], ids=["store", "sum"])
def test_pointwise_run(lib, run, tile_name, act, bias, sum_):
    """Output blocks [ob0, ob1) of one image row into y, ystride floats a block: stored (a
    pipelined depthwise layer's ring), or summed over the row's pixels (a pooled layer's)."""
    k_n, k, h, w_, ob0, ob1 = run
    rng = np.random.default_rng(k_n + k + w_)
    x = random(rng, (k_n, h, w_))
    w = random(rng, (k, k_n, 1, 1))
    b = random(rng, k, -8, 8) if bias else None
    wp, bp = c_harness.pack_blocked("nchw16c.pointwise", w, b)
    row = h - 1  # the last row: the run's input is inside the blocks, not at their start
    xb = c_harness.to_blocks(x)
    ystride = (1 if sum_ else w_) * BLOCK + 24  # room between the blocks, never written
    y = filled((ob1 - ob0, ystride))
    start = random(rng, (ob1 - ob0, BLOCK))
    if sum_:
        y[:, :BLOCK] = start
    lib.lib.pointwise_run(TILES[tile_name], k_n, ob0, ob1, w_, h * w_ * BLOCK, ystride,
                          ptr(lib, xb, row * w_ * BLOCK), ptr(lib, wp), ptr(lib, bp),
                          ptr(lib, y), act, sum_)
    full, mag = pointwise_reference(x[:, row], w.reshape(k, k_n), b, act)
    full = np.vstack([ACTIVATIONS[act](full), np.zeros((out_pad(k) - k, w_))])
    mag = np.vstack([mag, np.zeros((out_pad(k) - k, w_))])
    blocks = full.reshape(-1, BLOCK, w_)[ob0:ob1].transpose(0, 2, 1)  # (block, pixel, lane)
    mags = mag.reshape(-1, BLOCK, w_)[ob0:ob1].transpose(0, 2, 1)
    if sum_:
        assert_close(y[:, :BLOCK], start + blocks.sum(axis=1), mags.sum(axis=1) + 1)
        used = BLOCK
    else:
        assert_close(y[:, :w_ * BLOCK].reshape(blocks.shape), blocks, mags)
        used = w_ * BLOCK
    assert np.isnan(y[:, used:]).all(), "written between the blocks"


def out_pad(k):
    return -(-k // BLOCK) * BLOCK
