/* cnn_nchw16c_shifted.h: the convolution from planes into channel blocks (shifted_nchwc) that
 * enters a blocked run, often a network's stem: each tap read at a constant offset from
 * zero-padded phase planes (cnn_pad_phase_plane, cnn_im2col.h) or from the input in place,
 * times the weights w[out block][k][16], in tiles as the pointwise kernel's. Used by
 * conv_shifted_nchwc.c.j2.
 */
#ifndef CNN_NCHW16C_SHIFTED_H
#define CNN_NCHW16C_SHIFTED_H

#include "cnn_nchw16c.h"

/* A convolution from planes into blocks (the layer before a blocked run, e.g. a network's
 * stem): the input copied into zero-padded phase planes as for shifted_gemm
 * (cnn_pad_phases), input tap k of output pixel (oh, ow) is then xq[off[k] + oh * wq + ow];
 * or, for a layer without padding, read in place: xq[off[k] + oh * wq + ow * px], wq then
 * stride_h input rows and px stride_w. rows (<= TILE_MR or WIDE_MR) consecutive pixels of one
 * output row times the weights w[out block][k][16] give their 16-channel output vectors
 * directly. */
static inline __attribute__((always_inline)) void
cnn_shifted_tile(int rows, int nb, int kdim, int px, const float *restrict xq,
                 const int *restrict off, const float *restrict w, const float *restrict bias,
                 float *restrict y, size_t bstride, int act)
{
    cnn_vb acc[CNN_TILE_MR_MAX][4];
    const size_t wstride = (size_t)kdim * CNN_CB;
    for (int i = 0; i < rows; ++i)
        for (int j = 0; j < nb; ++j)
            acc[i][j] = cnn_bzero();
    for (int k = 0; k < kdim; ++k) {
        const float *restrict xk = xq + off[k];
        cnn_vb wv[4];
        for (int j = 0; j < nb; ++j)
            wv[j] = cnn_bload(w + j * wstride + (size_t)k * CNN_CB);
        for (int i = 0; i < rows; ++i) {
            const float a = xk[i * px];
            for (int j = 0; j < nb; ++j)
                acc[i][j] = cnn_bfmas(acc[i][j], a, wv[j]);
        }
    }
    for (int j = 0; j < nb; ++j) {
        const cnn_vb b = bias ? cnn_bload(bias + j * CNN_CB) : cnn_bzero();
        for (int i = 0; i < rows; ++i)
            cnn_block_epilogue(acc[i][j], b, NULL, y + j * bstride + i * CNN_CB, act);
    }
}

/* cnn_shifted_tile on nb = 1 to 3 output blocks (none for other nb), nb spelled as a
 * constant in each call (as cnn_pointwise_tile_n). */
static inline __attribute__((always_inline)) void
cnn_shifted_tile_n(int rows, int nb, int kdim, int px, const float *restrict x,
                   const int *restrict off, const float *restrict w, const float *restrict bias,
                   float *restrict y, size_t bstride, int act)
{
    if (nb == 1)
        cnn_shifted_tile(rows, 1, kdim, px, x, off, w, bias, y, bstride, act);
    else if (nb == 2)
        cnn_shifted_tile(rows, 2, kdim, px, x, off, w, bias, y, bstride, act);
    else if (nb == 3)
        cnn_shifted_tile(rows, 3, kdim, px, x, off, w, bias, y, bstride, act);
}

/* Pixels [ow, ow + rows) of output row oh, every output block, nb blocks a tile (the blocks
 * of a last partial group in one tile of their own). */
static inline __attribute__((always_inline)) void
cnn_shifted_pixels(int rows, int nb, int kdim, int out_blocks, int out_h, int out_w, int wq,
                   int px, const float *restrict xq, const int *restrict off,
                   const float *restrict w, const float *restrict bias, float *restrict y,
                   int act, int oh, int ow)
{
    const size_t bstride = (size_t)out_h * out_w * CNN_CB, wstride = (size_t)kdim * CNN_CB;
    const float *restrict xp = xq + (size_t)oh * wq + (size_t)ow * px;
    float *restrict yp = y + ((size_t)oh * out_w + ow) * CNN_CB;
    int ob = 0;
    for (; ob + nb <= out_blocks; ob += nb)
        cnn_shifted_tile(rows, nb, kdim, px, xp, off, w + ob * wstride,
                         bias ? bias + ob * CNN_CB : NULL, yp + ob * bstride, bstride, act);
    if (ob < out_blocks)
        cnn_shifted_tile_n(rows, out_blocks - ob, kdim, px, xp, off, w + ob * wstride,
                           bias ? bias + ob * CNN_CB : NULL, yp + ob * bstride, bstride, act);
}

/* Steps [0, cnn_shifted_steps(out_h, out_w, mr)) of the layer g (g.taps values per output,
 * g.row_step and g.pixel_step the wq and px above): mr pixels of a row each (one pixel on
 * rows of fewer), in tiles of mr pixels x nb blocks as for the pointwise kernel; a row's last
 * partial tile is done as the full tile ending at its last pixel, in the same step as the
 * tile before it. */
static inline int cnn_shifted_row_steps(int out_w, int mr)
{
    return out_w < mr ? out_w : out_w / mr;
}

static inline int cnn_shifted_steps(int out_h, int out_w, int mr)
{
    return out_h * cnn_shifted_row_steps(out_w, mr);
}

static inline __attribute__((always_inline)) void
cnn_shifted_step(const cnn_conv16_geom g, const float *restrict xq, const int *restrict off,
                 const float *restrict w, const float *restrict bias, float *restrict y, int t)
{
    const int mr = g.mr, nb = g.nb, kdim = g.taps, out_blocks = g.out_blocks, out_h = g.out_h,
              out_w = g.out_w, wq = g.row_step, px = g.pixel_step, act = g.act;
    const int per_row = cnn_shifted_row_steps(out_w, mr), oh = t / per_row, s = t % per_row;
    if (out_w < mr) {
        cnn_shifted_pixels(1, nb, kdim, out_blocks, out_h, out_w, wq, px, xq, off, w, bias, y,
                           act, oh, s);
        return;
    }
    cnn_shifted_pixels(mr, nb, kdim, out_blocks, out_h, out_w, wq, px, xq, off, w, bias, y,
                       act, oh, s * mr);
    if (s == per_row - 1 && out_w % mr)
        cnn_shifted_pixels(mr, nb, kdim, out_blocks, out_h, out_w, wq, px, xq, off, w, bias, y,
                           act, oh, out_w - mr);
}

#endif /* CNN_NCHW16C_SHIFTED_H */
