"""The depthwise convolution on channel blocks (runtime/cnn_nchw16c_depthwise.h), called directly: whole
planes in bands of output rows (conv_depthwise_nchwc.c.j2), and rings of input rows filled
just before the rows that read them (conv_pointwise_depthwise_nchwc.c.j2)."""
import numpy as np
import pytest

import c_harness
from c_harness import ACTIVATIONS, BLOCK, assert_close, filled, ptr, random

HEADERS = ["cnn_nchw16c_depthwise.h"]

SOURCE = r"""
struct geometry {
    int in_h, in_w, out_h, out_w, kh, kw, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w;
    int col_lo, col_hi;
};

/* geometry g: in_h, in_w, out_h, out_w, kh, kw, stride_h, stride_w, pad_top, pad_left,
 * dil_h, dil_w, col_lo, col_hi, in that order */
static struct geometry unpack(const int *g)
{
    struct geometry s = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10],
                         g[11], g[12], g[13]};
    return s;
}

/* output rows [oh0, oh1) of block b, its input xb (a whole plane, or a ring of that many
 * rows); not inlined into the task below, which cnn_parallel may both inline and call
 * through the pool: one copy of the kernel */
static __attribute__((noinline)) void
depthwise_rows(struct geometry s, const float *xb, int ring, const float *w, const float *bias,
               const float *res, float *y, int act, int b, int oh0, int oh1)
{
    cnn_depthwise_block((cnn_conv16_geom){.in_h = s.in_h, .in_w = s.in_w, .out_h = s.out_h,
                                          .out_w = s.out_w, .kh = s.kh, .kw = s.kw,
                                          .stride_h = s.stride_h, .stride_w = s.stride_w,
                                          .pad_top = s.pad_top, .pad_left = s.pad_left,
                                          .dil_h = s.dil_h, .dil_w = s.dil_w,
                                          .inner_lo = s.col_lo, .inner_hi = s.col_hi, .act = act},
                        xb, ring, w, bias, res, y, b, oh0, oh1);
}

/* what the task of depthwise() shares: the geometry, the bands and the tensors */
struct depthwise_args {
    struct geometry s;
    int act, band, bands;
    const float *x, *w, *bias, *res;
    float *y;
};

/* units [u0, u1): band u % bands of block u / bands, the bands innermost */
static inline void depthwise_task(void *ctx, int u0, int u1, int slot)
{
    const struct depthwise_args *a = ctx;
    const struct geometry s = a->s;
    (void)slot;
    for (int u = u0; u < u1; ++u) {
        const int b = u / a->bands, oh0 = u % a->bands * a->band;
        depthwise_rows(s, a->x + (size_t)b * s.in_h * s.in_w * CNN_CB, 0, a->w, a->bias, a->res,
                       a->y, a->act, b, oh0, cnn_min(s.out_h, oh0 + a->band));
    }
}

/* every block in bands of `band` output rows */
void depthwise(const int *g, int blocks, const float *x, const float *w, const float *bias,
               const float *res, float *y, int act, int band, int parallel)
{
    const struct geometry s = unpack(g);
    struct depthwise_args a = {.s = s, .act = act, .band = band,
                               .bands = (s.out_h + band - 1) / band, .x = x, .w = w,
                               .bias = bias, .res = res, .y = y};
    cnn_parallel(parallel, blocks * a.bands, depthwise_task, &a);
}

/* the same through rings: each band of output rows, with rings of its own (rows_n rows a
 * block), copies each input row into its ring just before the first output row that reads
 * it, from the first row its first output row reads */
void depthwise_ring(const int *g, int blocks, const float *x, const float *w,
                    const float *bias, const float *res, float *y, int act, int bands,
                    float *rings)
{
    const struct geometry s = unpack(g);
    const int rows_n = (s.kh - 1) * s.dil_h + 1;
    const size_t row = (size_t)s.in_w * CNN_CB, ring = rows_n * row;
    for (int band = 0; band < bands; ++band) {
        const int oh0 = band * s.out_h / bands, oh1 = (band + 1) * s.out_h / bands;
        float *r = rings + (size_t)band * blocks * ring;
        const cnn_conv16_geom rg = {.in_h = s.in_h, .kh = s.kh, .stride_h = s.stride_h,
                                    .pad_top = s.pad_top, .dil_h = s.dil_h};
        int next = cnn_depthwise_rows_read(rg, oh0) - rows_n;
        next = next < 0 ? 0 : next;
        for (int oh = oh0; oh < oh1; ++oh) {
            const int ready = cnn_depthwise_rows_read(rg, oh);
            for (; next < ready; ++next)
                for (int b = 0; b < blocks; ++b)
                    memcpy(r + b * ring + (size_t)(next % rows_n) * row,
                           x + ((size_t)b * s.in_h + next) * row, sizeof(float) * row);
            for (int b = 0; b < blocks; ++b)
                depthwise_rows(s, r + b * ring, rows_n, w, bias, res, y, act, b, oh, oh + 1);
        }
    }
}
"""

lib = c_harness.fixture(HEADERS, SOURCE, c_harness.BLOCKED_FLAVOURS)


def conv_out(size, k, s, p0, p1, d):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def depthwise_reference(x, w, kernel, stride, pads, dilation):
    """Per channel: sum over the taps of w x, zero padding (top, bottom, left, right);
    float64, and the sum of |w x|."""
    (kh, kw), (sh, sw), (pt, pb, pl, pr), (dh, dw) = kernel, stride, pads, dilation
    c, h, wd = x.shape
    oh, ow = conv_out(h, kh, sh, pt, pb, dh), conv_out(wd, kw, sw, pl, pr, dw)
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb + sh), (pl, pr + sw)))
    y, mag = np.zeros((c, oh, ow)), np.zeros((c, oh, ow))
    for i in range(kh):
        for j in range(kw):
            win = xp[:, i * dh:i * dh + oh * sh:sh, j * dw:j * dw + ow * sw:sw]
            y += w[:, i, j, None, None] * win
            mag += np.abs(w[:, i, j, None, None] * win)
    return y, mag


# (channels, in_h, in_w, kernel, stride, padding (top, bottom, left, right), dilation)
CASES = [(1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
         (5, 7, 9, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
         (16, 8, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),     # too narrow for a tile
         (17, 13, 23, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),
         (20, 9, 14, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2)),
         (3, 6, 29, (3, 5), (1, 3), (1, 1, 2, 2), (1, 2)),     # a tile reads 18 columns
         (33, 10, 12, (4, 4), (2, 2), (1, 2, 1, 2), (1, 1)),   # 16 taps, not in registers
         (2, 5, 3, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
         (4, 12, 30, (3, 3), (2, 1), (0, 0, 0, 0), (1, 1))]    # no padding


def setup(case, rng, bias, residual):
    channels, h, w_, kernel, stride, pads, dilation = case
    out_h = conv_out(h, kernel[0], stride[0], pads[0], pads[1], dilation[0])
    out_w = conv_out(w_, kernel[1], stride[1], pads[2], pads[3], dilation[1])
    lo, hi = c_harness.inner_range(w_, out_w, kernel[1], stride[1], pads[2], dilation[1])
    geometry = np.array([h, w_, out_h, out_w, *kernel, *stride, pads[0], pads[2], *dilation,
                         lo, hi], np.int32)
    x = random(rng, (channels, h, w_))
    w = random(rng, (channels, 1, *kernel))
    b = random(rng, channels, -8, 8) if bias else None
    r = random(rng, (channels, out_h, out_w), -4, 4) if residual else None
    expected, mag = depthwise_reference(x, w[:, 0], kernel, stride, pads, dilation)
    if bias:
        expected += b[:, None, None]
        mag += np.abs(b)[:, None, None]
    if residual:
        expected += r
        mag += np.abs(r)
    return geometry, x, w, b, r, expected, mag


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("act,bias,residual", [(0, False, False), (1, True, True),
                                               (2, True, False)])
def test_depthwise(lib, case, act, bias, residual):
    channels = case[0]
    rng = np.random.default_rng(channels * case[2])
    geometry, x, w, b, r, expected, mag = setup(case, rng, bias, residual)
    out_h, out_w = geometry[2], geometry[3]
    wp, bp = c_harness.pack_blocked("nchw16c.depthwise", w, b)
    blocks = -(-channels // BLOCK)
    xb = c_harness.to_blocks(x)
    rb = None if r is None else c_harness.to_blocks(r)
    for band, parallel, threads in [(out_h, 0, 1), (out_h, 1, 2), (1, 1, 1), (3, 1, 2)]:
        y = filled((blocks, out_h, out_w, BLOCK))
        with c_harness.threads(lib, threads):
            lib.lib.depthwise(ptr(lib, geometry), blocks, ptr(lib, xb), ptr(lib, wp),
                              ptr(lib, bp), ptr(lib, rb), ptr(lib, y), act, band, parallel)
        what = f"bands of {band} rows, parallel {parallel}, {threads} threads"
        assert_close(c_harness.from_blocks(y, channels), ACTIVATIONS[act](expected), mag, what)
        assert (c_harness.to_blocks(c_harness.from_blocks(y, channels)) == y).all(), \
            f"{what}: padding channels not zero"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bands", [1, 2])
def test_depthwise_rings(lib, case, bands):
    """The input rows come through rings of (kh - 1) * dil_h + 1 rows, filled as the
    pipelined layer fills them: a row missing when it is read is NaN in the result."""
    channels = case[0]
    rng = np.random.default_rng(channels + case[1])
    geometry, x, w, b, r, expected, mag = setup(case, rng, True, False)
    out_h, out_w, in_w = geometry[2], geometry[3], geometry[1]
    bands = min(bands, out_h)
    wp, bp = c_harness.pack_blocked("nchw16c.depthwise", w, b)
    blocks = -(-channels // BLOCK)
    rows = (case[3][0] - 1) * case[6][0] + 1
    rings = filled(bands * blocks * rows * in_w * BLOCK)
    y = filled((blocks, out_h, out_w, BLOCK))
    lib.lib.depthwise_ring(ptr(lib, geometry), blocks, ptr(lib, c_harness.to_blocks(x)),
                           ptr(lib, wp), ptr(lib, bp), c_harness.ptr(lib, None), ptr(lib, y), 2,
                           bands, ptr(lib, rings))
    assert_close(c_harness.from_blocks(y, channels), np.clip(expected, 0, 6), mag)
