"""Convolutions into channel blocks (runtime/cnn_nchw16c_direct.h, cnn_nchw16c_shifted.h), called directly: the direct kernel
on blocks (its padded copy, row steps or bands of rows by groups of output blocks, as
conv_direct_nchwc.c.j2 runs it), and the shifted kernel from planes (phase planes or the
input in place, as conv_shifted_nchwc.c.j2 runs it), in the tile shapes kernels/conv_nchw16c.py
chooses from."""
import numpy as np
import pytest

import c_harness
from c_harness import (ACTIVATIONS, BLOCK, PARALLEL, SINGLE_TILE, TILES, assert_close,
                       assert_equal, filled, ptr, random)

HEADERS = ["cnn_im2col.h", "cnn_nchw16c_pointwise.h", "cnn_nchw16c_direct.h", "cnn_nchw16c_shifted.h"]

SOURCE = c_harness.TILES_C + r"""
/* g: kh, kw, stride_h, stride_w, dil_h, dil_w, out_h, out_w, in_h, in_w, pad_top, pad_left,
 * hp, wp (direct: the padded input's extent; shifted: the phase planes' hq, wq), in that
 * order */
struct geometry {
    int kh, kw, stride_h, stride_w, dil_h, dil_w, out_h, out_w, in_h, in_w, pad_top, pad_left;
    int hp, wp;
};

static struct geometry unpack(const int *g)
{
    struct geometry s = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10],
                         g[11], g[12], g[13]};
    return s;
}

void pad_blocks(const float *x, int blocks, int in_h, int in_w, int pad_top, int pad_left,
                int hp, int wp, float *xp)
{
    for (int r = 0; r < blocks * hp; ++r)
        cnn_pad_blocks_row((cnn_conv16_geom){.in_h = in_h, .in_w = in_w, .pad_top = pad_top,
                                             .pad_left = pad_left, .padded_h = hp, .padded_w = wp},
                           x, xp, r / hp, r % hp);
}

/* rows [oh0, oh0 + oh_n) of group g of output blocks; not inlined into the tasks below,
 * which cnn_parallel may both inline and call through the pool: one copy of each tile's kernel */
static __attribute__((noinline)) void
direct_unit(int tile, struct geometry s, int in_blocks, int out_blocks, int group_in,
            int group_out, const float *xp, const float *w, const float *bias, const float *res,
            float *y, int act, int oh0, int oh_n, int g)
{
#define DIRECT_STEP(tile_mr_, tile_nb_)                                                                    \
    cnn_direct_step((cnn_conv16_geom){.in_blocks = in_blocks, .out_blocks = out_blocks,      \
                        .kh = s.kh, .kw = s.kw, .stride_h = s.stride_h, .stride_w = s.stride_w, \
                        .dil_h = s.dil_h, .dil_w = s.dil_w, .padded_h = s.hp, .padded_w = s.wp, \
                        .out_h = s.out_h, .out_w = s.out_w, .mr = tile_mr_, .nb = tile_nb_, .act = act, \
                        .group_in_blocks = group_in, .group_out_blocks = group_out},             \
                    xp, w, bias, res, y, oh0, oh_n, g)
    tile = distinct_tile(tile);
    if (tile == 0)
        DIRECT_STEP(CNN_TILE_MR, CNN_TILE_NB);
    else if (tile == 1)
        DIRECT_STEP(CNN_WIDE_MR, CNN_WIDE_NB);
    else if (tile == 4) /* one output block: grouped layers' groups of one block */
        DIRECT_STEP(CNN_SINGLE_MR, 1);
    else /* tile 3: each shape costs seconds to compile here; tile 2's is tested elsewhere */
        DIRECT_STEP(CNN_TILE7_MR, CNN_WIDE_NB);
#undef DIRECT_STEP
}

/* what the tasks of direct() share: the geometry, the tile, and the tensors */
struct direct_args {
    struct geometry s;
    int tile, in_blocks, out_blocks, group_in, group_out, act, band, bands, groups;
    const float *x, *xp, *w, *bias, *res;
    float *y, *scratch;
};

/* rows [r0, r1) of the padded copy: row r % hp of input block r / hp */
static inline void direct_pad_task(void *ctx, int r0, int r1, int slot)
{
    const struct direct_args *a = ctx;
    const struct geometry s = a->s;
    (void)slot;
    for (int r = r0; r < r1; ++r)
        cnn_pad_blocks_row((cnn_conv16_geom){.in_h = s.in_h, .in_w = s.in_w,
                                             .pad_top = s.pad_top, .pad_left = s.pad_left,
                                             .padded_h = s.hp, .padded_w = s.wp},
                           a->x, a->scratch, r / s.hp, r % s.hp);
}

/* units [t0, t1): band t % bands of group t / bands, the bands innermost */
static inline void direct_bands_task(void *ctx, int t0, int t1, int slot)
{
    const struct direct_args *a = ctx;
    (void)slot;
    for (int t = t0; t < t1; ++t)
        direct_unit(a->tile, a->s, a->in_blocks, a->out_blocks, a->group_in, a->group_out,
                    a->xp, a->w, a->bias, a->res, a->y, a->act, t % a->bands * a->band,
                    cnn_min(a->band, a->s.out_h - t % a->bands * a->band), t / a->bands);
}

/* units [t0, t1): output row t / groups of group t % groups, the groups innermost */
static inline void direct_rows_task(void *ctx, int t0, int t1, int slot)
{
    const struct direct_args *a = ctx;
    (void)slot;
    for (int t = t0; t < t1; ++t)
        direct_unit(a->tile, a->s, a->in_blocks, a->out_blocks, a->group_in, a->group_out,
                    a->xp, a->w, a->bias, a->res, a->y, a->act, t / a->groups, 1, t % a->groups);
}

/* the input copied into scratch with its padding when padded, then steps: an output row of
 * a group of output blocks each (band 0), or a band of `band` rows of a group, the bands
 * innermost (by_output); group_in > 0: a grouped layer, each run of group_out output blocks
 * reading its own group_in input blocks */
void direct(int tile, const int *g, int in_blocks, int out_blocks, int group_in, int group_out,
            int padded, const float *x, float *scratch, const float *w, const float *bias,
            const float *res, float *y, int act, int band, int parallel)
{
    const struct geometry s = unpack(g);
    struct direct_args a = {.s = s, .in_blocks = in_blocks, .out_blocks = out_blocks,
                            .group_in = group_in, .group_out = group_out,
                            .act = act, .band = band, .x = x, .xp = x, .w = w, .bias = bias,
                            .res = res, .y = y, .scratch = scratch};
    if (padded) {
        cnn_parallel(parallel, in_blocks * s.hp, direct_pad_task, &a);
        a.xp = scratch;
    }
    a.tile = distinct_tile(tile);
    a.groups = cnn_pointwise_groups(out_blocks, tile_nb(a.tile));
    if (band) {
        a.bands = (s.out_h + band - 1) / band;
        cnn_parallel(parallel, a.bands * a.groups, direct_bands_task, &a);
    } else {
        cnn_parallel(parallel, s.out_h * a.groups, direct_rows_task, &a);
    }
}

static __attribute__((noinline)) void
shifted_unit(int tile, int kdim, int out_blocks, int out_h, int out_w, int wq, int px,
             const float *xq, const int *off, const float *w, const float *bias, float *y,
             int act, int t)
{
#define SHIFTED_STEP(tile_mr_, tile_nb_)                                                                   \
    cnn_shifted_step((cnn_conv16_geom){.mr = tile_mr_, .nb = tile_nb_, .taps = kdim, .out_blocks = out_blocks, \
                         .out_h = out_h, .out_w = out_w, .row_step = wq, .pixel_step = px,       \
                         .act = act},                                                            \
                     xq, off, w, bias, y, t)
    tile = distinct_tile(tile);
    if (tile == 0)
        SHIFTED_STEP(CNN_TILE_MR, CNN_TILE_NB);
    else if (tile == 1)
        SHIFTED_STEP(CNN_WIDE_MR, CNN_WIDE_NB);
    else if (tile == 2)
        SHIFTED_STEP(CNN_TILE7_MR, CNN_TILE_NB);
    else
        SHIFTED_STEP(CNN_TILE7_MR, CNN_WIDE_NB);
#undef SHIFTED_STEP
}

/* what the tasks of shifted() share: the geometry, the tile, the layout and the tensors */
struct shifted_args {
    struct geometry s;
    int tile, channels, nph, npw, slack, rows, px, kdim, out_blocks, act;
    const int *off;
    const float *x, *xq, *w, *bias;
    float *y, *scratch;
};

/* phase planes [q0, q1) of the padded copy */
static inline void shifted_pad_task(void *ctx, int q0, int q1, int slot)
{
    const struct shifted_args *a = ctx;
    const struct geometry s = a->s;
    (void)slot;
    for (int q = q0; q < q1; ++q)
        cnn_pad_phase_plane((cnn_planes_geom){.channels = a->channels, .in_h = s.in_h,
                                              .in_w = s.in_w, .pad_top = s.pad_top,
                                              .pad_left = s.pad_left, .stride_h = s.stride_h,
                                              .stride_w = s.stride_w, .phases_h = a->nph,
                                              .phases_w = a->npw, .plane_h = s.hp,
                                              .plane_w = s.wp, .slack = a->slack},
                            a->x, a->scratch, q);
}

/* steps [t0, t1) */
static inline void shifted_steps_task(void *ctx, int t0, int t1, int slot)
{
    const struct shifted_args *a = ctx;
    (void)slot;
    for (int t = t0; t < t1; ++t)
        shifted_unit(a->tile, a->kdim, a->out_blocks, a->s.out_h, a->s.out_w, a->rows, a->px,
                     a->xq, a->off, a->w, a->bias, a->y, a->act, t);
}

/* planes in, blocks out: the input copied into phase planes (nph x npw phases, slack floats
 * after them) unless it is read in place, then the steps; rows: floats from one output row's
 * first tap to the next's (wq, or stride_h input rows in place), px: from one pixel's to the
 * next's (1, or stride_w in place) */
void shifted(int tile, const int *g, int channels, int nph, int npw, int slack, int in_place,
             int rows, int px, int kdim, const int *off, const float *x, float *scratch,
             int out_blocks, const float *w, const float *bias, float *y, int act, int parallel)
{
    const struct geometry s = unpack(g);
    struct shifted_args a = {.s = s, .channels = channels, .nph = nph, .npw = npw,
                             .slack = slack, .rows = rows, .px = px, .kdim = kdim,
                             .out_blocks = out_blocks, .act = act, .off = off, .x = x, .xq = x,
                             .w = w, .bias = bias, .y = y, .scratch = scratch};
    if (!in_place) {
        cnn_parallel(parallel, cnn_phase_planes(channels, nph, npw), shifted_pad_task, &a);
        a.xq = scratch;
    }
    a.tile = distinct_tile(tile);
    cnn_parallel(parallel, cnn_shifted_steps(s.out_h, s.out_w, tile_mr(a.tile)),
                 shifted_steps_task, &a);
}
"""

lib = c_harness.fixture(HEADERS, SOURCE, c_harness.BLOCKED_FLAVOURS)


def conv_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_reference(x, w, stride, padding, dilation):
    """y = sum over channels and taps of w x, zero padding on each side; float64, and the
    sum of |w x|."""
    k, c, kh, kw = w.shape
    _, h, wd = x.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh, ow = conv_out(h, kh, sh, ph, dh), conv_out(wd, kw, sw, pw, dw)
    xp = np.pad(x.astype(np.float64), ((0, 0), (ph, ph + sh), (pw, pw + sw)))
    y, mag = np.zeros((k, oh, ow)), np.zeros((k, oh, ow))
    for i in range(kh):
        for j in range(kw):
            win = xp[:, i * dh:i * dh + oh * sh:sh, j * dw:j * dw + ow * sw:sw]
            y += np.einsum("kc,chw->khw", w[:, :, i, j], win)
            mag += np.einsum("kc,chw->khw", np.abs(w[:, :, i, j]), np.abs(win))
    return y, mag


def epilogue(y, mag, b, r, act):
    if b is not None:
        y, mag = y + b[:, None, None], mag + np.abs(b)[:, None, None]
    if r is not None:
        y, mag = y + r, mag + np.abs(r)
    return ACTIVATIONS[act](y), mag


# (in channels, out channels, in_h, in_w, kernel, stride, padding, dilation)
CASES = [(16, 16, 1, 1, (1, 1), (1, 1), (0, 0), (1, 1)),
         (16, 20, 7, 9, (3, 3), (1, 1), (1, 1), (1, 1)),
         (32, 64, 9, 8, (3, 3), (2, 2), (1, 1), (1, 1)),      # two input blocks, 4 output
         (17, 80, 6, 13, (1, 1), (2, 2), (0, 0), (1, 1)),     # partial blocks, 5 output
         (20, 33, 11, 10, (5, 3), (1, 2), (2, 0), (1, 2)),
         (16, 16, 12, 9, (3, 3), (2, 1), (2, 1), (2, 1)),
         (48, 40, 5, 17, (3, 3), (1, 1), (0, 0), (1, 1))]     # unpadded, read in place


def direct_extent(h, w, out_h, out_w, kernel, stride, padding, dilation):
    """(padded, hp, wp) as kernels/conv_nchw16c.py: padded_input computes them."""
    hp = (out_h - 1) * stride[0] + (kernel[0] - 1) * dilation[0] + 1
    wp = (out_w - 1) * stride[1] + (kernel[1] - 1) * dilation[1] + 1
    padded = padding[0] > 0 or padding[1] > 0 or hp > h or wp > w
    return (padded, hp, wp) if padded else (False, h, w)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("tile_name", ["narrow", "wide", "wide7"])
@pytest.mark.parametrize("act,bias,residual", [(0, False, False), (1, True, True),
                                               (2, True, False)])
def test_direct(lib, case, tile_name, act, bias, residual):
    c, k, h, w_, kernel, stride, padding, dilation = case
    out_h = conv_out(h, kernel[0], stride[0], padding[0], dilation[0])
    out_w = conv_out(w_, kernel[1], stride[1], padding[1], dilation[1])
    padded, hp, wp = direct_extent(h, w_, out_h, out_w, kernel, stride, padding, dilation)
    geometry = np.array([*kernel, *stride, *dilation, out_h, out_w, h, w_, *padding, hp, wp],
                        np.int32)
    rng = np.random.default_rng(c * k + h)
    x = random(rng, (c, h, w_))
    w = random(rng, (k, c, *kernel))
    b = random(rng, k, -8, 8) if bias else None
    r = random(rng, (k, out_h, out_w), -4, 4) if residual else None
    wp_, bp = c_harness.pack_blocked("nchw16c.direct", w, b)
    in_blocks, out_blocks = -(-c // BLOCK), -(-k // BLOCK)
    expected, mag = epilogue(*conv_reference(x, w, stride, padding, dilation), b, r, act)
    xb = c_harness.to_blocks(x)
    rb = None if r is None else c_harness.to_blocks(r)
    # row steps (band 0), or bands of rows of a group of output blocks (by_output)
    for band, parallel, threads in [(0, 0, 1), (0, 1, 2), (1, 1, 1), (3, 1, 2), (out_h, 0, 1)]:
        scratch = filled(in_blocks * hp * wp * BLOCK)
        y = filled((out_blocks, out_h, out_w, BLOCK))
        with c_harness.threads(lib, threads):
            lib.lib.direct(TILES[tile_name], ptr(lib, geometry), in_blocks, out_blocks, 0, 0, padded,
                           ptr(lib, xb), ptr(lib, scratch), ptr(lib, wp_), ptr(lib, bp),
                           ptr(lib, rb), ptr(lib, y), act, band, parallel)
        what = f"bands of {band or 'one'} rows, parallel {parallel}, {threads} threads"
        assert_close(c_harness.from_blocks(y, k), expected, mag, what)
        assert (c_harness.to_blocks(c_harness.from_blocks(y, k)) == y).all(), \
            f"{what}: padding channels not zero"


# (channels in = out, groups, in_h, in_w, kernel, stride, padding, tile): groups of whole
# blocks (one or two a group), and groups of 8 channels sharing blocks (the last block half
# padding)
GROUPED = [(64, 4, 7, 9, (3, 3), (1, 1), (1, 1), "single"),
           (64, 2, 6, 5, (3, 3), (2, 2), (1, 1), "narrow"),
           (40, 5, 6, 7, (3, 3), (2, 1), (1, 1), "single"),
           (48, 6, 5, 5, (1, 1), (1, 1), (0, 0), "single")]


def grouped_reference(x, w, groups, stride, padding):
    """Each group's output channels from its own input channels only."""
    k, c = w.shape[0] // groups, w.shape[1]
    parts = [conv_reference(x[i * c:(i + 1) * c], w[i * k:(i + 1) * k], stride, padding,
                            (1, 1)) for i in range(groups)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize("case", GROUPED)
def test_direct_grouped(lib, case):
    """A grouped layer: each output block's run reads only its group's input blocks, and
    groups narrower than a block keep their channels apart (zero weights between groups)."""
    c, groups, h, w_, kernel, stride, padding, tile_name = case
    tile = SINGLE_TILE if tile_name == "single" else TILES[tile_name]
    dilation = (1, 1)
    out_h = conv_out(h, kernel[0], stride[0], padding[0], 1)
    out_w = conv_out(w_, kernel[1], stride[1], padding[1], 1)
    padded, hp, wp = direct_extent(h, w_, out_h, out_w, kernel, stride, padding, dilation)
    geometry = np.array([*kernel, *stride, *dilation, out_h, out_w, h, w_, *padding, hp, wp],
                        np.int32)
    rng = np.random.default_rng(c + groups)
    x = random(rng, (c, h, w_))
    w = random(rng, (c, c // groups, *kernel))
    b = random(rng, c, -8, 8)
    wp_, bp = c_harness.pack_blocked("nchw16c.direct", w, b, groups=groups)
    width, blocks_ = c // groups, -(-c // BLOCK)
    group_in = group_out = width // BLOCK if width % BLOCK == 0 else 1
    expected, mag = epilogue(*grouped_reference(x, w, groups, stride, padding), b, None, 1)
    for band, parallel, threads in [(0, 1, 2), (2, 1, 2), (out_h, 0, 1)]:
        scratch = filled(blocks_ * hp * wp * BLOCK)
        y = filled((blocks_, out_h, out_w, BLOCK))
        with c_harness.threads(lib, threads):
            lib.lib.direct(tile, ptr(lib, geometry), blocks_, blocks_, group_in,
                           group_out, padded, ptr(lib, c_harness.to_blocks(x)),
                           ptr(lib, scratch), ptr(lib, wp_), ptr(lib, bp), ptr(lib, None),
                           ptr(lib, y), 1, band, parallel)
        what = f"{groups} groups of {width}, bands of {band or 'one'} rows, {threads} threads"
        assert_close(c_harness.from_blocks(y, c), expected, mag, what)
        assert (c_harness.to_blocks(c_harness.from_blocks(y, c)) == y).all(), \
            f"{what}: padding channels not zero"


@pytest.mark.parametrize("blocks,h,w,top,left,hp,wp", [(1, 1, 1, 0, 0, 1, 1),
                                                       (2, 5, 7, 1, 2, 7, 11),
                                                       (1, 6, 4, 2, 1, 8, 5),
                                                       (3, 4, 9, 0, 0, 6, 9)])
def test_pad_blocks(lib, blocks, h, w, top, left, hp, wp):
    """The zero-padded copy: hp x wp pixels, input pixel (ih, iw) at (ih + top, iw + left);
    rows and columns past the input zero, including those that cut it short."""
    rng = np.random.default_rng(h * w)
    x = random(rng, (blocks, h, w, BLOCK))
    xp = filled((blocks, hp, wp, BLOCK))
    lib.lib.pad_blocks(ptr(lib, x), blocks, h, w, top, left, hp, wp, ptr(lib, xp))
    expected = np.zeros((blocks, hp + h, wp + w, BLOCK), np.float32)
    expected[:, top:top + h, left:left + w] = x
    assert_equal(xp, expected[:, :hp, :wp])


# (in channels, out channels, in_h, in_w, kernel, stride, padding, dilation)
SHIFTED_CASES = [(3, 16, 9, 11, (3, 3), (1, 1), (1, 1), (1, 1)),    # a stem
                 (1, 20, 13, 10, (5, 5), (2, 2), (2, 2), (1, 1)),
                 (3, 64, 8, 21, (3, 3), (2, 2), (1, 1), (1, 1)),
                 (4, 33, 10, 21, (3, 2), (1, 2), (0, 0), (2, 1)),   # unpadded: in place
                 (2, 80, 1, 5, (1, 3), (1, 1), (0, 1), (1, 1))]


@pytest.mark.parametrize("case", SHIFTED_CASES)
@pytest.mark.parametrize("tile_name", TILES)
@pytest.mark.parametrize("act,bias", [(0, False), (2, True)])
def test_shifted(lib, case, tile_name, act, bias):
    c, k, h, w_, kernel, stride, padding, dilation = case
    out_h = conv_out(h, kernel[0], stride[0], padding[0], dilation[0])
    out_w = conv_out(w_, kernel[1], stride[1], padding[1], dilation[1])
    sh = c_harness.shifted_layout(c_harness.conv_geometry(c, k, kernel, stride, padding,
                                                          dilation), (1, c, h, w_),
                                  (1, k, out_h, out_w))
    geometry = np.array([*kernel, *stride, *dilation, out_h, out_w, h, w_, *padding, sh["hq"],
                         sh["wq"]], np.int32)
    in_place = sh["in_place"]
    off = np.array(sh["in_offsets"] if in_place else sh["offsets"], np.int32)
    rows, px = (sh["row_step"], sh["stride_w"]) if in_place else (sh["wq"], 1)
    rng = np.random.default_rng(c * k + w_)
    x = random(rng, (c, h, w_))
    w = random(rng, (k, c, *kernel))
    b = random(rng, k, -8, 8) if bias else None
    wp, bp = c_harness.pack_blocked("nchw_to_nchw16c.shifted", w, b)
    out_blocks = -(-k // BLOCK)
    expected, mag = epilogue(*conv_reference(x, w, stride, padding, dilation), b, None, act)
    for parallel, threads in PARALLEL:
        scratch = filled(sh["c_offset"])
        y = filled((out_blocks, out_h, out_w, BLOCK))
        with c_harness.threads(lib, threads):
            lib.lib.shifted(TILES[tile_name], ptr(lib, geometry), c, sh["phases_h"],
                            sh["phases_w"], sh["slack"], in_place, rows, px, off.size,
                            ptr(lib, off), ptr(lib, x), ptr(lib, scratch), out_blocks,
                            ptr(lib, wp), ptr(lib, bp), ptr(lib, y), act, parallel)
        what = f"parallel {parallel}, {threads} threads"
        assert_close(c_harness.from_blocks(y, k), expected, mag, what)
        assert (c_harness.to_blocks(c_harness.from_blocks(y, k)) == y).all(), \
            f"{what}: padding channels not zero"
