/* cnn_im2col.h: copies that lay a convolution's input planes (C x H x W) out for the GEMM
 * (cnn_gemm.h) or for kernels that read taps at constant offsets: im2col into NR-column
 * panels (conv_gemm.c.j2), im2row into MR-row panels (conv_im2row.c.j2), the strided 1x1
 * subsample, and the zero-padded phase planes (conv_shifted, conv_taps, conv_depthwise_planes,
 * conv_winograd, conv_shifted_nchwc).
 */
#ifndef CNN_IM2COL_H
#define CNN_IM2COL_H

#include <string.h>

#include "cnn_gemm.h"

/* The geometry of a convolution's input planes as the copies below read it, written by each
 * layer as a compound literal with designated initializers in the call: the copies read the
 * fields they need, the others stay zero. */
typedef struct {
    int channels, in_h, in_w;   /* the input planes (one group's channels) */
    int out_h, out_w;           /* output pixels */
    int kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int phases_h, phases_w;     /* phase planes written: the phases the taps reach */
    int plane_h, plane_w;       /* rows and columns of a phase plane */
    int slack;                  /* zero floats after the last phase plane */
} cnn_planes_geom;

/* Panel p of cnn_im2row_panels (below). */
static inline __attribute__((always_inline)) void
cnn_im2row_panel(const float *restrict x, size_t xs, int channels, int in_h, int in_w,
                 int kh_n, int kw_n, int stride_h, int stride_w, int pad_top, int pad_left,
                 int dil_h, int dil_w, int out_w, int n, int rows, int total,
                 float *restrict a, int p)
{
    int h0[CNN_MR], w0[CNN_MR];
    size_t so[CNN_MR];
    for (int l = 0; l < CNN_MR; ++l) {
        const int pix = p * CNN_MR + l, q = pix % n;
        h0[l] = pix < total ? q / out_w * stride_h - pad_top : -in_h - kh_n * dil_h;
        w0[l] = pix < total ? q % out_w * stride_w - pad_left : 0;
        so[l] = pix < total ? (size_t)(pix / n) * xs : 0;
    }
    float *restrict dst = a + (size_t)p * rows * CNN_MR;
    if (kh_n == 1 && kw_n == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 &&
        pad_left == 0 && p * CNN_MR + CNN_MR <= total &&
        (p * CNN_MR) / n == (p * CNN_MR + CNN_MR - 1) / n) {
        /* a 1x1 convolution's full panel within one image: a transpose of 8 pixels */
        const float *restrict xp = x + so[0] + (p * CNN_MR) % n;
        for (int c = 0; c < channels; ++c, dst += CNN_MR)
            for (int l = 0; l < CNN_MR; ++l)
                dst[l] = xp[(size_t)c * in_h * in_w + l];
        return;
    }
    for (int c = 0; c < channels; ++c) {
        const float *restrict xc = x + (size_t)c * in_h * in_w;
        for (int kh = 0; kh < kh_n; ++kh)
            for (int kw = 0; kw < kw_n; ++kw, dst += CNN_MR)
                for (int l = 0; l < CNN_MR; ++l) {
                    const int ih = h0[l] + kh * dil_h, iw = w0[l] + kw * dil_w;
                    const int inside = (unsigned)ih < (unsigned)in_h &&
                                       (unsigned)iw < (unsigned)in_w;
                    const float v = xc[inside ? so[l] + (size_t)(ih * in_w + iw) : 0];
                    dst[l] = inside ? v : 0.0f;
                }
    }
}

/* im2row: the patches of output pixels [0, n) of each of `samples` images (sample s at
 * x + s * xs) as MR-row panels a[pixel / MR][r][pixel % MR], pixels numbered across the
 * samples (pixel s * n + q is sample s's pixel q), row r = (c * KH + kh) * KW + kw, the
 * rows of pixels past samples * n zero. The transposed im2col, for images so small that the
 * output channels, not the pixels, should fill the vectors; several samples stacked make a
 * taller product over the same weights. */
typedef struct {
    cnn_planes_geom g;
    const float *x;
    size_t xs;
    int n, rows, total;
    float *a;
} cnn_im2row_args;

static inline void cnn_im2row_task(void *ctx, int p0, int p1, int slot)
{
    const cnn_im2row_args *r = ctx;
    const cnn_planes_geom g = r->g;
    (void)slot;
    for (int p = p0; p < p1; ++p)
        cnn_im2row_panel(r->x, r->xs, g.channels, g.in_h, g.in_w, g.kh, g.kw, g.stride_h,
                         g.stride_w, g.pad_top, g.pad_left, g.dil_h, g.dil_w, g.out_w, r->n,
                         r->rows, r->total, r->a, p);
}

static inline void cnn_im2row_panels(const cnn_planes_geom g, const float *restrict x,
                                     size_t xs, int samples, int n, float *restrict a,
                                     int parallel)
{
    cnn_im2row_args args = {.g = g, .x = x, .xs = xs, .n = n, .rows = g.channels * g.kh * g.kw,
                            .total = samples * n, .a = a};
    cnn_parallel(parallel, (args.total + CNN_MR - 1) / CNN_MR, cnn_im2row_task, &args);
}

/* y (C x OH x OW) = x (C x H x W) at rows oh * sh and columns ow * sw: the input of a 1x1
 * strided, unpadded convolution as the dense matrix a 1x1 GEMM reads. */
static inline void cnn_subsample(const cnn_planes_geom g, const float *restrict x,
                                 float *restrict y)
{
    const int channels = g.channels, in_h = g.in_h, in_w = g.in_w, stride_h = g.stride_h,
              stride_w = g.stride_w, out_h = g.out_h, out_w = g.out_w;
    for (int c = 0; c < channels; ++c)
        for (int oh = 0; oh < out_h; ++oh) {
            const float *restrict xr = x + ((size_t)c * in_h + (size_t)oh * stride_h) * in_w;
            float *restrict yr = y + ((size_t)c * out_h + oh) * out_w;
            for (int ow = 0; ow < out_w; ++ow)
                yr[ow] = xr[ow * stride_w];
        }
}

/* Copy x (C x H x W) into zero-padded phase planes for a convolution of stride sh x sw:
 * plane (c, ph, pw) holds padded rows ph, ph + sh, ... and columns pw, pw + sw, ..., hq x wq
 * of them (Hp/sh and Wp/sw rounded up: g.plane_h x g.plane_w). A kernel tap then reads one plane shifted by a
 * constant, for every output pixel: the patch matrix never has to be written out. With
 * stride 1 there is one plane per channel, the zero-padded input. Only phases ph < nph and
 * pw < npw are written: those the kernel's taps reach (a 1x1 stride-2 kernel reads phase
 * (0, 0) alone). `slack` zero floats follow, for reads past the last real column. */
static inline int cnn_phase_planes(int channels, int nph, int npw)
{
    return channels * nph * npw;
}

/* Plane q of cnn_pad_phases (below), q = (c * nph + ph) * npw + pw; the last also writes the
 * slack. Layers whose threads share the planes call it in a loop of their own. */
static inline void cnn_pad_phase_plane(const cnn_planes_geom g, const float *restrict x,
                                       float *restrict xq, int q)
{
    const int channels = g.channels, in_h = g.in_h, in_w = g.in_w, pad_top = g.pad_top,
              pad_left = g.pad_left, stride_h = g.stride_h, stride_w = g.stride_w,
              nph = g.phases_h, npw = g.phases_w, hq = g.plane_h, wq = g.plane_w;
    const int c = q / (nph * npw), ph = q / npw % nph, pw = q % npw;
    float *restrict plane = xq + (size_t)q * hq * wq;
    for (int qh = 0; qh < hq; ++qh) {
        float *restrict row = plane + (size_t)qh * wq;
        const int ih = qh * stride_h + ph - pad_top;
        if (ih < 0 || ih >= in_h) {
            memset(row, 0, sizeof(float) * (size_t)wq);
            continue;
        }
        const float *restrict xr = x + ((size_t)c * in_h + ih) * in_w;
        /* columns qw whose input column qw * stride_w + pw - pad_left is inside */
        const int lo = cnn_min(cnn_out_lo(pad_left, pw, stride_w), wq);
        const int hi = cnn_max(cnn_out_hi(in_w, pad_left, pw, stride_w, wq), lo);
        for (int qw = 0; qw < lo; ++qw)
            row[qw] = 0.0f;
        if (stride_w == 1)
            memcpy(row + lo, xr + lo + pw - pad_left, sizeof(float) * (size_t)(hi - lo));
        else
            for (int qw = lo; qw < hi; ++qw)
                row[qw] = xr[qw * stride_w + pw - pad_left];
        for (int qw = hi; qw < wq; ++qw)
            row[qw] = 0.0f;
    }
    if (q == cnn_phase_planes(channels, nph, npw) - 1)
        memset(plane + (size_t)hq * wq, 0, sizeof(float) * (size_t)g.slack);
}

static inline void cnn_pad_phases(const cnn_planes_geom g, const float *restrict x,
                                  float *restrict xq)
{
    for (int q = 0; q < cnn_phase_planes(g.channels, g.phases_h, g.phases_w); ++q)
        cnn_pad_phase_plane(g, x, xq, q);
}

/* Row r of every panel of cnn_im2col_panels (below). */
static inline __attribute__((always_inline)) void
cnn_im2col_row(const float *restrict x, int in_h, int in_w, int kh_n, int kw_n,
               int dil_h, int dil_w, int rows, int panels, const int *restrict h0,
               const int *restrict w0, float *restrict b, int r)
{
    const int c = r / (kh_n * kw_n), dh = r / kw_n % kh_n * dil_h, dw = r % kw_n * dil_w;
    const float *restrict xc = x + (size_t)c * in_h * in_w;
    for (int panel = 0; panel < panels; ++panel) {
        float *restrict dst = b + ((size_t)panel * rows + r) * CNN_NR;
        const int *restrict hp = h0 + panel * CNN_NR, *restrict wp = w0 + panel * CNN_NR;
        for (int l = 0; l < CNN_NR; ++l) {
            const int ih = hp[l] + dh, iw = wp[l] + dw;
            const int inside = (unsigned)ih < (unsigned)in_h && (unsigned)iw < (unsigned)in_w;
            const float v = xc[inside ? ih * in_w + iw : 0];
            dst[l] = inside ? v : 0.0f;
        }
    }
}

typedef struct {
    const float *x;
    int in_h, in_w, kh, kw, dil_h, dil_w, rows, panels;
    const int *h0, *w0;
    float *b;
} cnn_im2col_args;

static inline void cnn_im2col_task(void *ctx, int r0, int r1, int slot)
{
    const cnn_im2col_args *g = ctx;
    (void)slot;
    for (int r = r0; r < r1; ++r)
        cnn_im2col_row(g->x, g->in_h, g->in_w, g->kh, g->kw, g->dil_h, g->dil_w, g->rows,
                       g->panels, g->h0, g->w0, g->b, r);
}

/* im2col into NR-column panels: columns [p0, p0 + np) of the (C * KH * KW) x (OH * OW)
 * matrix of a convolution's input patches, written as b[panel][row][NR], the last panel
 * zero-padded. Row r = (c * KH + kh) * KW + kw; column p = oh * OW + ow. coords: room for
 * 2 * (np rounded up to NR) ints, each column's window origin, computed once per chunk so
 * that the copy loop has no division and no branch. */
static inline void cnn_im2col_panels(const cnn_planes_geom g, const float *restrict x, int p0,
                                     int np, float *restrict b, int *restrict coords,
                                     int parallel)
{
    const int channels = g.channels, in_h = g.in_h, in_w = g.in_w, kh_n = g.kh, kw_n = g.kw,
              stride_h = g.stride_h, stride_w = g.stride_w, pad_top = g.pad_top,
              pad_left = g.pad_left, dil_h = g.dil_h, dil_w = g.dil_w, out_w = g.out_w;
    const int rows = channels * kh_n * kw_n;
    const int panels = (np + CNN_NR - 1) / CNN_NR;
    int *restrict h0 = coords, *restrict w0 = coords + panels * CNN_NR;
    int oh = p0 / out_w, ow = p0 % out_w;
    for (int j = 0; j < panels * CNN_NR; ++j) {
        if (j < np) {
            h0[j] = oh * stride_h - pad_top;
            w0[j] = ow * stride_w - pad_left;
            if (++ow == out_w) {
                ow = 0;
                ++oh;
            }
        } else {
            h0[j] = -in_h - kh_n * dil_h; /* padding columns: never inside the input */
            w0[j] = 0;
        }
    }
    cnn_im2col_args args = {.x = x, .in_h = in_h, .in_w = in_w, .kh = kh_n, .kw = kw_n,
                            .dil_h = dil_h, .dil_w = dil_w, .rows = rows, .panels = panels,
                            .h0 = h0, .w0 = w0, .b = b};
    cnn_parallel(parallel, rows, cnn_im2col_task, &args);
}

#endif /* CNN_IM2COL_H */
