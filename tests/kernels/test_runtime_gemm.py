"""The packed GEMM of runtime/cnn_gemm.h, called directly: the micro-kernel, its edge tile and
panel copy, the drivers (B packed, in place, by offset table, packed at compile time), and
the patch copies that feed them (im2row, im2col, subsampling, phase planes)."""
import numpy as np
import pytest

import c_harness
from c_harness import ACTIVATIONS, PARALLEL, assert_close, assert_equal, filled, ptr, random

HEADERS = ["cnn_gemm.h", "cnn_im2col.h"]

SOURCE = r"""
void constants(int *out)
{
    out[0] = CNN_MR;
    out[1] = CNN_NR;
    out[2] = CNN_GEMM_KC;
    out[3] = CNN_BPANEL;
}

void gemm_micro(int kc, const float *a, const float *b, int ldb, const int *off, float *c,
                int ldc, int accumulate, const float *bias, int act)
{
    cnn_gemm_micro(kc, a, b, ldb, off, c, ldc, accumulate, bias, act);
}

void gemm_micro_edge(int kc, const float *a, const float *b, int ldb, float *c, int ldc,
                     int accumulate, const float *bias, int act, int m, int n)
{
    cnn_gemm_micro_edge(kc, a, b, ldb, c, ldc, accumulate, bias, act, m, n);
}

void gemm_edge_panel(int kdim, const float *b, int ldb, int n, float *panel)
{
    cnn_gemm_edge_panel(kdim, b, ldb, n, panel);
}

void gemm(int m, int kdim, int n, const float *a, const float *b, int ldb, float *c, int ldc,
          const float *bias, int act, int parallel)
{
    cnn_gemm(m, kdim, n, a, b, ldb, c, ldc, bias, act, parallel);
}

void gemm_rows(int m, int kdim, int n, const float *a, const float *b, const int *off,
               float *c, int ldc, int parallel)
{
    cnn_gemm_rows(m, kdim, n, a, b, off, c, ldc, parallel);
}

/* what the tasks of gemm_bpacked() share: the shapes and the matrices */
struct bpacked_args {
    int rows_pad, kdim, ldc;
    const float *a, *b;
    float *c;
};

/* column blocks [q0, q1) of C: block q is columns q * CNN_NR on */
static inline void bpacked_task(void *ctx, int q0, int q1, int slot)
{
    const struct bpacked_args *g = ctx;
    (void)slot;
    for (int q = q0; q < q1; ++q)
        cnn_gemm_bpacked_block(g->rows_pad, g->kdim, g->a, g->b, q * CNN_NR, g->c, g->ldc);
}

/* every CNN_NR-column block of C, as conv_im2row.c.j2 runs it */
void gemm_bpacked(int rows_pad, int kdim, const float *a, const float *b, float *c, int ldc,
                  int parallel)
{
    struct bpacked_args g = {.rows_pad = rows_pad, .kdim = kdim, .ldc = ldc, .a = a, .b = b,
                             .c = c};
    cnn_parallel(parallel, (ldc + CNN_NR - 1) / CNN_NR, bpacked_task, &g);
}

void im2row_panels(const float *x, size_t xs, int samples, int channels, int in_h, int in_w,
                   int kh_n, int kw_n, int stride_h, int stride_w, int pad_top, int pad_left,
                   int dil_h, int dil_w, int out_w, int n, float *a, int parallel)
{
    cnn_im2row_panels((cnn_planes_geom){.channels = channels, .in_h = in_h, .in_w = in_w,
                                        .kh = kh_n, .kw = kw_n, .stride_h = stride_h,
                                        .stride_w = stride_w, .pad_top = pad_top,
                                        .pad_left = pad_left, .dil_h = dil_h, .dil_w = dil_w,
                                        .out_w = out_w},
                      x, xs, samples, n, a, parallel);
}

void im2col_panels(const float *x, int channels, int in_h, int in_w, int kh_n, int kw_n,
                   int stride_h, int stride_w, int pad_top, int pad_left, int dil_h, int dil_w,
                   int out_w, int p0, int np, float *b, int *coords, int parallel)
{
    cnn_im2col_panels((cnn_planes_geom){.channels = channels, .in_h = in_h, .in_w = in_w,
                                        .kh = kh_n, .kw = kw_n, .stride_h = stride_h,
                                        .stride_w = stride_w, .pad_top = pad_top,
                                        .pad_left = pad_left, .dil_h = dil_h, .dil_w = dil_w,
                                        .out_w = out_w},
                      x, p0, np, b, coords, parallel);
}

void subsample(const float *x, int channels, int in_h, int in_w, int stride_h, int stride_w,
               int out_h, int out_w, float *y)
{
    cnn_subsample((cnn_planes_geom){.channels = channels, .in_h = in_h, .in_w = in_w,
                                    .stride_h = stride_h, .stride_w = stride_w, .out_h = out_h,
                                    .out_w = out_w},
                  x, y);
}

void pad_phases(const float *x, int channels, int in_h, int in_w, int pad_top, int pad_left,
                int stride_h, int stride_w, int nph, int npw, int hq, int wq, int slack,
                float *xq)
{
    cnn_pad_phases((cnn_planes_geom){.channels = channels, .in_h = in_h, .in_w = in_w,
                                     .pad_top = pad_top, .pad_left = pad_left,
                                     .stride_h = stride_h, .stride_w = stride_w, .phases_h = nph,
                                     .phases_w = npw, .plane_h = hq, .plane_w = wq, .slack = slack},
                   x, xq);
}

/* the planes one by one in reverse order, as threads sharing them may finish them */
void pad_phase_planes_reversed(const float *x, int channels, int in_h, int in_w, int pad_top,
                               int pad_left, int stride_h, int stride_w, int nph, int npw,
                               int hq, int wq, int slack, float *xq)
{
    for (int q = cnn_phase_planes(channels, nph, npw) - 1; q >= 0; --q)
        cnn_pad_phase_plane((cnn_planes_geom){.channels = channels, .in_h = in_h, .in_w = in_w,
                                              .pad_top = pad_top, .pad_left = pad_left,
                                              .stride_h = stride_h, .stride_w = stride_w,
                                              .phases_h = nph, .phases_w = npw, .plane_h = hq,
                                              .plane_w = wq, .slack = slack},
                            x, xq, q);
}
"""

lib = c_harness.fixture(HEADERS, SOURCE)


def constants(h):
    out = np.zeros(4, np.int32)
    h.lib.constants(ptr(h, out))
    return dict(zip(("MR", "NR", "KC", "BPANEL"), out.tolist()))


def packed_a(a):
    """A (m x k) in MR-row panels, as the compiler packs a convolution's weights."""
    return np.ascontiguousarray(c_harness.pack_panels(a.astype(np.float32), 1)[0])


def packed_b(b, nr):
    """B (k x n) in NR-column panels b[panel][k][NR], zero-padded: what im2col writes."""
    k, n = b.shape
    panels = -(-n // nr)
    out = np.zeros((k, panels * nr), np.float32)
    out[:, :n] = b
    return np.ascontiguousarray(out.reshape(k, panels, nr).transpose(1, 0, 2))


@pytest.mark.parametrize("kc", [1, 3, 17, 64])
@pytest.mark.parametrize("offsets", [False, True], ids=["rows", "offsets"])
@pytest.mark.parametrize("accumulate", [0, 1])
@pytest.mark.parametrize("act", [0, 1, 2])
def test_micro_kernel(lib, kc, offsets, accumulate, act):
    k = constants(lib)
    mr, nr = k["MR"], k["NR"]
    rng = np.random.default_rng(kc * 7 + accumulate)
    a = random(rng, (mr, kc))
    bias = random(rng, mr, -8, 8) if act != 1 else None
    ldb = nr + 3
    rows = random(rng, (kc + 5, ldb))
    if offsets:  # row k of B anywhere in the buffer
        order = rng.permutation(kc + 5)[:kc].astype(np.int32)
        off = np.ascontiguousarray(order * ldb)
        b = rows[order, :nr]
    else:
        off = None
        b = rows[:kc, :nr]
    ldc = nr + 5
    c = random(rng, (mr, ldc), -4, 4)
    c0 = c.copy()
    lib.lib.gemm_micro(kc, ptr(lib, np.ascontiguousarray(a.T)), ptr(lib, rows), ldb,
                       ptr(lib, off), ptr(lib, c), ldc, accumulate, ptr(lib, bias), act)
    acc = a.astype(np.float64) @ b
    magnitude = np.abs(a) @ np.abs(b)
    if accumulate:
        acc += c0[:, :nr]
        magnitude += np.abs(c0[:, :nr])
    if bias is not None:
        acc += bias[:, None]
        magnitude += np.abs(bias)[:, None]
    assert_close(c[:, :nr], ACTIVATIONS[act](acc), magnitude)
    assert_equal(c[:, nr:], c0[:, nr:], "columns past NR")


@pytest.mark.parametrize("m,n", [(1, 1), (3, 5), (8, 1), (5, 0), (7, 32)])
@pytest.mark.parametrize("accumulate", [0, 1])
@pytest.mark.parametrize("bias", [False, True])
def test_micro_kernel_edge(lib, m, n, accumulate, bias):
    k = constants(lib)
    mr, nr = k["MR"], k["NR"]
    m, n = min(m, mr), min(n if n else nr - 1, nr)  # 0: one column short of a whole block
    rng = np.random.default_rng(m * 31 + n)
    kc = 11
    a = random(rng, (mr, kc))
    a[m:] = np.nan  # the rows past m are not real: no output depends on them
    ldb = nr + 2
    b = random(rng, (kc, ldb))
    bv = random(rng, mr, -8, 8) if bias else None
    ldc = n + 3
    c = random(rng, (m + 2, ldc), -4, 4)
    c0 = c.copy()
    lib.lib.gemm_micro_edge(kc, ptr(lib, np.ascontiguousarray(a.T)), ptr(lib, b), ldb,
                            ptr(lib, c), ldc, accumulate, ptr(lib, bv), 2, m, n)
    acc = a[:m].astype(np.float64) @ b[:, :n] + (c0[:m, :n] if accumulate else 0)
    if bias:
        acc += bv[:m, None]
    assert_close(c[:m, :n], np.clip(acc, 0, 6), np.abs(a[:m]) @ np.abs(b[:, :n]) + 8)
    assert_equal(c[:m, n:], c0[:m, n:], "columns past n")
    assert_equal(c[m:], c0[m:], "rows past m")


@pytest.mark.parametrize("kdim,n", [(1, 1), (7, 3), (5, 0), (300, 32)])
def test_edge_panel(lib, kdim, n):
    nr = constants(lib)["NR"]
    n = min(n if n else nr - 1, nr)
    rng = np.random.default_rng(kdim + n)
    ldb = nr + 9
    b = random(rng, (kdim, ldb))
    panel = filled((kdim, nr))
    lib.lib.gemm_edge_panel(kdim, ptr(lib, b), ldb, n, ptr(lib, panel))
    expected = np.zeros((kdim, nr), np.float32)
    expected[:, :n] = b[:, :n]
    assert_equal(panel, expected)


# few column blocks (two threads then share the row panels: (45, 33, 40), a partial last
# panel) and many (the threads share the column blocks)
GEMM_SHAPES = [(1, 1, 1), (7, 5, 3), (8, 300, 33), (13, 17, 70), (3, 257, 31), (17, 2, 129),
               (45, 33, 40), (40, 260, 49)]


@pytest.mark.parametrize("m,kdim,n", GEMM_SHAPES)
@pytest.mark.parametrize("b_layout", ["packed", "in_place"])
@pytest.mark.parametrize("act,bias", [(0, False), (1, True), (2, True), (2, False)])
def test_gemm(lib, m, kdim, n, b_layout, act, bias):
    nr = constants(lib)["NR"]
    rng = np.random.default_rng(m * 1000 + kdim + n)
    a = random(rng, (m, kdim))
    bv = random(rng, m, -8, 8) if bias else None
    if b_layout == "packed":
        bmat = random(rng, (kdim, n))
        b, ldb = packed_b(bmat, nr), 0
    else:  # rows ldb apart, columns past n not part of B
        ldb = n + 4
        b = random(rng, (kdim, ldb))
        bmat = b[:, :n]
    acc = a.astype(np.float64) @ bmat
    magnitude = np.abs(a) @ np.abs(bmat)
    if bias:
        acc += bv[:, None]
        magnitude += np.abs(bv)[:, None]
    ldc = n + 3
    for parallel, threads in PARALLEL:
        c = filled((m + 1, ldc))
        with c_harness.threads(lib, threads):
            lib.lib.gemm(m, kdim, n, ptr(lib, packed_a(a)), ptr(lib, b), ldb, ptr(lib, c), ldc,
                         ptr(lib, bv), act, parallel)
        what = f"parallel {parallel}, {threads} threads"
        assert_close(c[:m, :n], ACTIVATIONS[act](acc), magnitude, what)
        assert np.isnan(c[:m, n:]).all() and np.isnan(c[m:]).all(), f"{what}: written outside C"


@pytest.mark.parametrize("m,kdim,n", [(1, 1, 1), (7, 9, 3), (8, 300, 70), (13, 27, 130),
                                      (19, 260, 200)])
def test_gemm_rows(lib, m, kdim, n):
    """B's rows through an offset table (nchw.shifted_gemm's phase planes); C has whole NR blocks
    of columns (the ones past n are scratch), and only m rows."""
    nr = constants(lib)["NR"]
    ldc = -(-n // nr) * nr
    rng = np.random.default_rng(m + kdim + n)
    slots = kdim + 3
    rows = random(rng, (slots, ldc + 1))
    order = rng.permutation(slots)[:kdim].astype(np.int32)
    off = np.ascontiguousarray(order * (ldc + 1))
    a = random(rng, (m, kdim))
    b = rows[order, :n].astype(np.float64)
    for parallel, threads in PARALLEL:  # threads change how the work is split
        c = filled((m + 1, ldc))
        with c_harness.threads(lib, threads):
            lib.lib.gemm_rows(m, kdim, n, ptr(lib, packed_a(a)), ptr(lib, rows), ptr(lib, off),
                              ptr(lib, c), ldc, parallel)
        what = f"parallel {parallel}, {threads} threads"
        assert_close(c[:m, :n], a @ b, np.abs(a) @ np.abs(b), what)
        assert np.isnan(c[m:]).all(), f"{what}: written past row m"


@pytest.mark.parametrize("rows,kdim,cols", [(8, 1, 1), (8, 5, 33), (24, 300, 70), (16, 17, 96)])
def test_gemm_bpacked(lib, rows, kdim, cols):
    """B packed at compile time in 32-column panels (conv.pack_columns)."""
    rng = np.random.default_rng(rows + kdim + cols)
    a = random(rng, (rows, kdim))
    b = random(rng, (kdim, cols))
    ldc = -(-cols // c_harness.BPANEL) * c_harness.BPANEL
    expected = np.zeros((rows, ldc))
    expected[:, :cols] = a.astype(np.float64) @ b
    magnitude = np.zeros((rows, ldc))
    magnitude[:, :cols] = np.abs(a) @ np.abs(b)
    for parallel, threads in PARALLEL:
        c = filled((rows, ldc))
        with c_harness.threads(lib, threads):
            lib.lib.gemm_bpacked(rows, kdim, ptr(lib, packed_a(a)),
                                 ptr(lib, c_harness.pack_columns(b)), ptr(lib, c), ldc, parallel)
        assert_close(c, expected, magnitude, f"parallel {parallel}, {threads} threads")


def conv_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def patches(x, kh, kw, sh, sw, pt, pl, dh, dw, out_h, out_w):
    """The convolution's patch matrix (C * KH * KW) x (OH * OW), row (c * KH + kh) * KW + kw,
    column oh * OW + ow, zero where a tap falls in the padding."""
    c, h, w = x.shape
    out = np.zeros((c, kh, kw, out_h, out_w), np.float32)
    for i in range(kh):
        for j in range(kw):
            for oh in range(out_h):
                ih = oh * sh - pt + i * dh
                if not 0 <= ih < h:
                    continue
                for ow in range(out_w):
                    iw = ow * sw - pl + j * dw
                    if 0 <= iw < w:
                        out[:, i, j, oh, ow] = x[:, ih, iw]
    return out.reshape(c * kh * kw, out_h * out_w)


# (channels, in_h, in_w, kh, kw, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w)
CONVS = [(1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1),
         (3, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1),
         (2, 9, 6, 3, 2, 2, 1, 1, 0, 1, 2),
         (5, 4, 4, 1, 1, 1, 1, 0, 0, 1, 1),     # 1x1: im2row's transposing path
         (4, 11, 13, 5, 3, 3, 2, 2, 1, 2, 1),
         (3, 7, 3, 2, 2, 2, 2, 1, 1, 1, 1)]


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("samples", [1, 3])
def test_im2row_panels(lib, conv, samples):
    c, h, w, kh, kw, sh, sw, pt, pl, dh, dw = conv
    mr = constants(lib)["MR"]
    out_h, out_w = conv_out(h, kh, sh, pt, dh), conv_out(w, kw, sw, pl, dw)
    n, rows = out_h * out_w, c * kh * kw
    rng = np.random.default_rng(c * h * w)
    xs = c * h * w + 5  # samples apart by more than one
    x = random(rng, samples * xs)
    panels = -(-samples * n // mr)
    pixels = np.zeros((panels * mr, rows), np.float32)
    for s in range(samples):
        xi = x[s * xs:s * xs + c * h * w].reshape(c, h, w)
        pixels[s * n:(s + 1) * n] = patches(xi, kh, kw, sh, sw, pt, pl, dh, dw, out_h, out_w).T
    for parallel, threads in [(0, 1), (1, 2)]:
        a = filled((panels, rows, mr))
        with c_harness.threads(lib, threads):
            lib.lib.im2row_panels(ptr(lib, x), xs, samples, c, h, w, kh, kw, sh, sw, pt, pl, dh,
                                  dw, out_w, n, ptr(lib, a), parallel)
        assert_equal(a, pixels.reshape(panels, mr, rows).transpose(0, 2, 1),
                     f"parallel {parallel}, {threads} threads")


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("chunk", ["whole", "middle"])
def test_im2col_panels(lib, conv, chunk):
    c, h, w, kh, kw, sh, sw, pt, pl, dh, dw = conv
    nr = constants(lib)["NR"]
    out_h, out_w = conv_out(h, kh, sh, pt, dh), conv_out(w, kw, sw, pl, dw)
    n, rows = out_h * out_w, c * kh * kw
    p0, np_ = (0, n) if chunk == "whole" else (n // 3, max(1, n - n // 3 - 2))
    rng = np.random.default_rng(n + rows)
    x = random(rng, (c, h, w))
    panels = -(-np_ // nr)
    cols = np.zeros((rows, panels * nr), np.float32)
    cols[:, :np_] = patches(x, kh, kw, sh, sw, pt, pl, dh, dw, out_h, out_w)[:, p0:p0 + np_]
    for parallel, threads in [(0, 1), (1, 2)]:
        b = filled((panels, rows, nr))
        coords = np.zeros(2 * panels * nr, np.int32)
        with c_harness.threads(lib, threads):
            lib.lib.im2col_panels(ptr(lib, x), c, h, w, kh, kw, sh, sw, pt, pl, dh, dw, out_w,
                                  p0, np_, ptr(lib, b), ptr(lib, coords), parallel)
        assert_equal(b, cols.reshape(rows, panels, nr).transpose(1, 0, 2),
                     f"parallel {parallel}, {threads} threads")


@pytest.mark.parametrize("c,h,w,sh,sw", [(1, 1, 1, 2, 2), (3, 7, 9, 2, 2), (2, 8, 5, 3, 1)])
def test_subsample(lib, c, h, w, sh, sw):
    rng = np.random.default_rng(h * w)
    x = random(rng, (c, h, w))
    out_h, out_w = -(-h // sh), -(-w // sw)
    y = filled((c, out_h, out_w))
    lib.lib.subsample(ptr(lib, x), c, h, w, sh, sw, out_h, out_w, ptr(lib, y))
    assert_equal(y, x[:, ::sh, ::sw])


# (channels, in_h, in_w, kernel, stride, padding, dilation)
PHASE_CONVS = [(1, 1, 1, (1, 1), (1, 1), (0, 0), (1, 1)),
               (2, 5, 7, (3, 3), (1, 1), (1, 1), (1, 1)),
               (3, 9, 8, (3, 3), (2, 2), (1, 1), (1, 1)),
               (2, 7, 11, (1, 1), (2, 2), (0, 0), (1, 1)),   # one phase of four
               (2, 10, 9, (5, 3), (3, 2), (2, 0), (1, 2)),
               (1, 6, 13, (3, 7), (1, 3), (0, 3), (2, 1))]


def phase_planes(x, pad_top, pad_left, stride_h, stride_w, nph, npw, hq, wq):
    c, h, w = x.shape
    planes = np.zeros((c, nph, npw, hq, wq), np.float32)
    for ph in range(nph):
        for pw in range(npw):
            for qh in range(hq):
                ih = qh * stride_h + ph - pad_top
                if not 0 <= ih < h:
                    continue
                for qw in range(wq):
                    iw = qw * stride_w + pw - pad_left
                    if 0 <= iw < w:
                        planes[:, ph, pw, qh, qw] = x[:, ih, iw]
    return planes


@pytest.mark.parametrize("conv", PHASE_CONVS)
@pytest.mark.parametrize("order", ["pad_phases", "planes_reversed"])
def test_pad_phases(lib, conv, order):
    c, h, w, kernel, stride, padding, dilation = conv
    out = [conv_out(s, k, st, p, d) for s, k, st, p, d in zip((h, w), kernel, stride, padding,
                                                                dilation)]
    sh = c_harness.shifted_layout(c_harness.conv_geometry(c, 4, kernel, stride, padding,
                                                          dilation), (1, c, h, w), (1, 4, *out))
    nph, npw, hq, wq = sh["phases_h"], sh["phases_w"], sh["hq"], sh["wq"]
    rng = np.random.default_rng(h * w * c)
    x = random(rng, (c, h, w))
    planes = c * nph * npw * hq * wq
    xq = filled(planes + sh["slack"] + 4)
    fn = getattr(lib.lib, order if order == "pad_phases" else "pad_phase_planes_reversed")
    fn(ptr(lib, x), c, h, w, sh["pad_top"], sh["pad_left"], sh["stride_h"], sh["stride_w"],
       nph, npw, hq, wq, sh["slack"], ptr(lib, xq))
    expected = phase_planes(x, sh["pad_top"], sh["pad_left"], sh["stride_h"],
                            sh["stride_w"], nph, npw, hq, wq)
    assert_equal(xq[:planes], expected.ravel(), "planes")
    assert_equal(xq[planes:planes + sh["slack"]], np.zeros(sh["slack"]), "slack")
    assert np.isnan(xq[planes + sh["slack"]:]).all(), "written past the slack"


@pytest.mark.parametrize("conv", PHASE_CONVS[1:])
def test_shifted_convolution(lib, conv):
    """Phase planes, then cnn_gemm_rows through the tap offsets shifted_layout gives them:
    the nchw.shifted_gemm kernel's two steps make the convolution."""
    c, h, w, kernel, stride, padding, dilation = conv
    nr = constants(lib)["NR"]
    k = 11
    out_h, out_w = [conv_out(s, kk, st, p, d) for s, kk, st, p, d in
                    zip((h, w), kernel, stride, padding, dilation)]
    sh = c_harness.shifted_layout(c_harness.conv_geometry(c, k, kernel, stride, padding,
                                                          dilation), (1, c, h, w),
                                  (1, k, out_h, out_w))
    rng = np.random.default_rng(out_h * out_w)
    x = random(rng, (c, h, w))
    wt = random(rng, (k, c, *kernel))
    xq = filled(sh["c_offset"])  # the planes of every channel and the slack
    lib.lib.pad_phases(ptr(lib, x), c, h, w, sh["pad_top"], sh["pad_left"], sh["stride_h"],
                       sh["stride_w"], sh["phases_h"], sh["phases_w"], sh["hq"], sh["wq"],
                       sh["slack"], ptr(lib, xq))
    n = out_h * sh["wq"]  # the grid: OH rows of Wq columns, the last Wq - OW dropped
    assert sh["ldc"] >= -(-n // nr) * nr
    cp = filled((k, sh["ldc"]))
    off = np.array(sh["offsets"], np.int32)
    lib.lib.gemm_rows(k, off.size, n, ptr(lib, packed_a(wt.reshape(k, -1))), ptr(lib, xq),
                      ptr(lib, off), ptr(lib, cp), sh["ldc"], 0)
    y = cp[:, :n].reshape(k, out_h, sh["wq"])[:, :, :out_w]
    p = patches(x, *kernel, *stride, padding[0], padding[1], *dilation, out_h, out_w)
    w2 = wt.reshape(k, -1).astype(np.float64)
    assert_close(y, (w2 @ p).reshape(k, out_h, out_w),
                 (np.abs(w2) @ np.abs(p)).reshape(k, out_h, out_w))
