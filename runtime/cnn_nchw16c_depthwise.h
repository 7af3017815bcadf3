/* cnn_nchw16c_depthwise.h: the depthwise convolution on channel blocks (depthwise_nchwc): one
 * 16-channel vector multiply-add per output pixel and tap, the input rows read from a whole
 * plane or from a ring of rows that the 1x1 layer before fills just before they are read
 * (passes/pipeline_pointwise.py). Used by conv_depthwise_nchwc.c.j2 and
 * conv_pointwise_depthwise_nchwc.c.j2.
 */
#ifndef CNN_NCHW16C_DEPTHWISE_H
#define CNN_NCHW16C_DEPTHWISE_H

#include "cnn_nchw16c.h"

/* Row h of an input held whole (ring 0) or in a ring of that many rows */
static inline int cnn_ring_row(int h, int ring)
{
    return ring ? h % ring : h;
}

/* One output pixel of a depthwise convolution, its window at input row h0, column w0 of
 * the block xb, taps kh in [kh0, kh1) and kw in [kw0, kw1) (those inside the input); w: the
 * block's weights w[kh][kw][16]. */
static inline __attribute__((always_inline)) cnn_vb
cnn_depthwise_pixel(const float *restrict xb, const float *restrict w, int in_w, int ring,
                    int kw_n, int dil_h, int dil_w, int h0, int w0, int kh0, int kh1, int kw0,
                    int kw1)
{
    cnn_vb acc = cnn_bzero();
    for (int kh = kh0; kh < kh1; ++kh) {
        const float *restrict row = xb + (size_t)cnn_ring_row(h0 + kh * dil_h, ring) * in_w * CNN_CB;
        for (int kw = kw0; kw < kw1; ++kw)
            acc = cnn_bfma(acc, cnn_bload(w + (kh * kw_n + kw) * CNN_CB),
                           cnn_bload(row + (size_t)(w0 + kw * dil_w) * CNN_CB));
    }
    return acc;
}

/* CNN_DW_TILE output pixels of a row whose column taps are all inside the input, row taps
 * [kh0, kh1) (those inside it). Each input vector the tile reads is loaded once, into an
 * array of registers (stride 1, 3 taps: 6 columns for 12 multiply-adds a row tap), and so is
 * each weight vector (wr: the block's kh_n x kw_n weights in registers, loaded once per
 * block, when there are at most CNN_DW_WREG of them; else NULL, w read from memory). */
#define CNN_DW_TILE 4
#define CNN_DW_WREG 9
#define CNN_DW_COLS 16 /* columns a tile may read: (TILE - 1) * stride + (kw - 1) * dil + 1 */

static inline __attribute__((always_inline)) void
cnn_depthwise_tile(const float *restrict xb, const float *restrict w, const cnn_vb *wr,
                   int in_w, int ring, int kh0, int kh1, int kw_n, int stride_w, int dil_h,
                   int dil_w, int h0, int w0, cnn_vb acc[CNN_DW_TILE])
{
    const int cols = (CNN_DW_TILE - 1) * stride_w + (kw_n - 1) * dil_w + 1;
    for (int t = 0; t < CNN_DW_TILE; ++t)
        acc[t] = cnn_bzero();
    for (int kh = kh0; kh < kh1; ++kh) {
        const float *restrict row =
            xb + ((size_t)cnn_ring_row(h0 + kh * dil_h, ring) * in_w + w0) * CNN_CB;
        cnn_vb xv[CNN_DW_COLS];
        if (cols <= CNN_DW_COLS)
            for (int c = 0; c < cols; ++c)
                xv[c] = cnn_bload(row + (size_t)c * CNN_CB);
        for (int kw = 0; kw < kw_n; ++kw) {
            const cnn_vb wv = wr ? wr[kh * kw_n + kw] : cnn_bload(w + (kh * kw_n + kw) * CNN_CB);
            for (int t = 0; t < CNN_DW_TILE; ++t) {
                const int c = t * stride_w + kw * dil_w;
                acc[t] = cnn_bfma(acc[t], wv,
                                  cols <= CNN_DW_COLS ? xv[c] : cnn_bload(row + (size_t)c * CNN_CB));
            }
        }
    }
}

/* The tile of output pixels [ow, ow + CNN_DW_TILE) of row oh, through the epilogue into yr
 * (and rr, the residual's row) */
static inline __attribute__((always_inline)) void
cnn_depthwise_tile_out(const float *restrict xb, const float *restrict w, const cnn_vb *wr,
                       int in_w, int ring, int kh0, int kh1, int kw_n, int stride_w,
                       int pad_left, int dil_h, int dil_w, int h0, int ow, cnn_vb bv,
                       const float *restrict rr, float *restrict yr, int act)
{
    cnn_vb acc[CNN_DW_TILE];
    cnn_depthwise_tile(xb, w, wr, in_w, ring, kh0, kh1, kw_n, stride_w, dil_h, dil_w, h0,
                       ow * stride_w - pad_left, acc);
    for (int t = 0; t < CNN_DW_TILE; ++t)
        cnn_block_epilogue(acc[t], bv, rr ? rr + (size_t)(ow + t) * CNN_CB : NULL,
                           yr + (size_t)(ow + t) * CNN_CB, act);
}

/* Output columns [t0, t1) (at least CNN_DW_TILE of them) of row oh, row taps [kh0, kh1): a
 * tile at a time, a remainder as the tile ending at t1 (the same values stored again) */
static inline __attribute__((always_inline)) void
cnn_depthwise_row_tiles(const float *restrict xb, const float *restrict w, const cnn_vb *wr,
                        int in_w, int ring, int kh0, int kh1, int kw_n, int stride_w,
                        int pad_left, int dil_h, int dil_w, int h0, int t0, int t1, cnn_vb bv,
                        const float *restrict rr, float *restrict yr, int act)
{
    int ow = t0;
    for (; ow + CNN_DW_TILE <= t1; ow += CNN_DW_TILE)
        cnn_depthwise_tile_out(xb, w, wr, in_w, ring, kh0, kh1, kw_n, stride_w, pad_left, dil_h,
                               dil_w, h0, ow, bv, rr, yr, act);
    if (ow < t1)
        cnn_depthwise_tile_out(xb, w, wr, in_w, ring, kh0, kh1, kw_n, stride_w, pad_left, dil_h,
                               dil_w, h0, t1 - CNN_DW_TILE, bv, rr, yr, act);
}

/* Output pixel ow of row oh (window at input row h0, row taps [kh0, kh1)) whose window
 * leaves the input on the left or right, its column taps clipped, through the epilogue */
static inline __attribute__((always_inline)) void
cnn_depthwise_edge(const float *restrict xb, const float *restrict w, int in_w, int ring,
                   int kh0, int kh1, int kw_n, int stride_w, int pad_left, int dil_h, int dil_w,
                   int h0, int ow, cnn_vb bv, const float *restrict rr, float *restrict yr,
                   int act)
{
    const int w0 = ow * stride_w - pad_left;
    const cnn_vb v = cnn_depthwise_pixel(xb, w, in_w, ring, kw_n, dil_h, dil_w, h0, w0, kh0, kh1,
                                         cnn_tap_lo(w0, dil_w),
                                         cnn_tap_hi(w0, dil_w, in_w, kw_n));
    cnn_block_epilogue(v, bv, rr ? rr + (size_t)ow * CNN_CB : NULL, yr + (size_t)ow * CNN_CB,
                       act);
}

/* The out_w pixels of one output row, their windows at input row h0, row taps [kh0, kh1):
 * columns outside [col_lo, col_hi) with their column taps clipped, a tile at a time inside */
static inline __attribute__((always_inline)) void
cnn_depthwise_row(const float *restrict xb, const float *restrict w, const cnn_vb *wr,
                  int in_w, int ring, int kh0, int kh1, int kw_n, int stride_w, int pad_left,
                  int dil_h, int dil_w, int h0, int out_w, int col_lo, int col_hi, cnn_vb bv,
                  const float *restrict rr, float *restrict yr, int act)
{
    if (col_hi - col_lo < CNN_DW_TILE) { /* too narrow for a tile: pixel by pixel */
        for (int ow = 0; ow < out_w; ++ow)
            cnn_depthwise_edge(xb, w, in_w, ring, kh0, kh1, kw_n, stride_w, pad_left, dil_h,
                               dil_w, h0, ow, bv, rr, yr, act);
        return;
    }
    /* the edges' few columns (one, for 3x3 windows padded by 1) in loops of their own: with
     * constant bounds, each pixel's taps are constants once inlined */
    for (int ow = 0; ow < col_lo; ++ow)
        cnn_depthwise_edge(xb, w, in_w, ring, kh0, kh1, kw_n, stride_w, pad_left, dil_h, dil_w,
                           h0, ow, bv, rr, yr, act);
    cnn_depthwise_row_tiles(xb, w, wr, in_w, ring, kh0, kh1, kw_n, stride_w, pad_left, dil_h,
                            dil_w, h0, col_lo, col_hi, bv, rr, yr, act);
    for (int ow = col_hi; ow < out_w; ++ow)
        cnn_depthwise_edge(xb, w, in_w, ring, kh0, kh1, kw_n, stride_w, pad_left, dil_h, dil_w,
                           h0, ow, bv, rr, yr, act);
}

/* Output rows [oh0, oh1) of block b of a depthwise convolution (one input channel per
 * output channel), blocks in and out, any kernel size, stride, padding and dilation. xb:
 * block b of the input, its rows in_w pixels apart; ring 0 for a whole plane, or the rows a
 * ring holds, input row h then at row h % ring. Output columns [g.inner_lo, g.inner_hi) have every
 * column tap inside the input: they go CNN_DW_TILE at a time, on every row (the row taps
 * clipped on the first and last rows), a remainder as the tile ending at g.inner_hi (the same
 * values stored again). The columns outside, and rows with fewer columns than a tile, go one
 * by one with their taps clipped. */
static inline __attribute__((always_inline)) void
cnn_depthwise_block(const cnn_conv16_geom g, const float *restrict xb, int ring,
                    const float *restrict w, const float *restrict bias,
                    const float *restrict res, float *restrict y, int b, int oh0, int oh1)
{
    const int in_h = g.in_h, in_w = g.in_w, out_h = g.out_h, out_w = g.out_w, kh_n = g.kh,
              kw_n = g.kw, stride_h = g.stride_h, stride_w = g.stride_w, pad_top = g.pad_top,
              pad_left = g.pad_left, dil_h = g.dil_h, dil_w = g.dil_w, col_lo = g.inner_lo,
              col_hi = g.inner_hi, act = g.act;
    const float *restrict wb = w + (size_t)b * kh_n * kw_n * CNN_CB;
    const cnn_vb bv = bias ? cnn_bload(bias + b * CNN_CB) : cnn_bzero();
    cnn_vb wreg[CNN_DW_WREG];
    const int in_regs = kh_n * kw_n <= CNN_DW_WREG;
    if (in_regs)
        for (int k = 0; k < kh_n * kw_n; ++k)
            wreg[k] = cnn_bload(wb + k * CNN_CB);
    const cnn_vb *wr = in_regs ? wreg : NULL;
    for (int oh = oh0; oh < oh1; ++oh) {
        const int h0 = oh * stride_h - pad_top;
        const int kh0 = cnn_tap_lo(h0, dil_h), kh1 = cnn_tap_hi(h0, dil_h, in_h, kh_n);
        const size_t o = ((size_t)b * out_h + oh) * out_w * CNN_CB;
        const float *restrict r = res ? res + o : NULL;
        if (kh0 == 0 && kh1 == kh_n) /* every row tap: the bounds constant when inlined */
            cnn_depthwise_row(xb, wb, wr, in_w, ring, 0, kh_n, kw_n, stride_w, pad_left, dil_h,
                              dil_w, h0, out_w, col_lo, col_hi, bv, r, y + o, act);
        else
            cnn_depthwise_row(xb, wb, wr, in_w, ring, kh0, kh1, kw_n, stride_w, pad_left, dil_h,
                              dil_w, h0, out_w, col_lo, col_hi, bv, r, y + o, act);
    }
}

/* Pipelined 1x1 -> depthwise pairs (passes/pipeline_pointwise.py): the depthwise layer g
 * computes its input, the 1x1 layer's output, into rings of rows just before the rows that
 * read them. The input rows [0, n) that output rows [0, oh] of the depthwise layer read: */
static inline int cnn_depthwise_rows_read(const cnn_conv16_geom g, int oh)
{
    const int end = oh * g.stride_h - g.pad_top + (g.kh - 1) * g.dil_h + 1;
    return end < 0 ? 0 : cnn_min(g.in_h, end);
}

#endif /* CNN_NCHW16C_DEPTHWISE_H */
