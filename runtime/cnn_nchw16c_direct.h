/* cnn_nchw16c_direct.h: the direct convolution with channel blocks in and out (direct_nchwc),
 * any kernel size, stride and dilation: the input copied with its zero padding first
 * (cnn_pad_blocks_row), then tiles of output pixels x output blocks, each input channel of
 * each tap one scalar per pixel times a 16-channel weight vector. Used by
 * conv_direct_nchwc.c.j2.
 */
#ifndef CNN_NCHW16C_DIRECT_H
#define CNN_NCHW16C_DIRECT_H

#include "cnn_nchw16c.h"

/* A convolution with blocks in and out, any kernel size, stride and dilation, as ONNX
 * Runtime's NCHWc convolutions (MLAS) and oneDNN's nChw16c direct kernels compute it: the
 * input copied into zero-padded blocks first (cnn_pad_blocks_row) when it has padding, then,
 * for rows (<= TILE_MR) consecutive pixels of an output row and nb (<= TILE_NB) output blocks,
 * each input channel of each tap is one scalar per pixel times the 16-channel weight vector
 * of each output block. x: the window origin of the tile's first pixel in the tile's first
 * input block (wp pixels a row, in_bstride floats a block); w: output block 0's weights for
 * that input block, w[ib][kh][kw][k][16], block j's at + j * wstride; y, res: the tile's first
 * pixel in output block 0, block j at + j * out_bstride. The sum over ib_n input blocks is
 * added to y's (first == 0), and finished (last != 0): bias, residual and activation. */
static inline __attribute__((always_inline)) void
cnn_direct_tile(int rows, int nb, int ib_n, int kh_n, int kw_n, int stride_w, int dil_h,
                int dil_w, int wp, size_t in_bstride, size_t wstride, const float *restrict x,
                const float *restrict w, const float *restrict bias, const float *restrict res,
                float *restrict y, size_t out_bstride, int act, int first, int last)
{
    cnn_vb acc[CNN_TILE_MR_MAX][4];
    for (int i = 0; i < rows; ++i)
        for (int j = 0; j < nb; ++j)
            acc[i][j] = first ? cnn_bzero() : cnn_bload(y + j * out_bstride + i * CNN_CB);
    for (int ib = 0; ib < ib_n; ++ib)
        for (int kh = 0; kh < kh_n; ++kh)
            for (int kw = 0; kw < kw_n; ++kw) {
                const float *restrict xk =
                    x + ib * in_bstride + ((size_t)kh * dil_h * wp + (size_t)kw * dil_w) * CNN_CB;
                const float *restrict wk =
                    w + (((size_t)ib * kh_n + kh) * kw_n + kw) * CNN_CB * CNN_CB;
                for (int kk = 0; kk < CNN_CB; ++kk) {
                    cnn_vb wv[4];
                    for (int j = 0; j < nb; ++j)
                        wv[j] = cnn_bload(wk + j * wstride + kk * CNN_CB);
                    for (int i = 0; i < rows; ++i) {
                        const float a = xk[(size_t)i * stride_w * CNN_CB + kk];
                        for (int j = 0; j < nb; ++j)
                            acc[i][j] = cnn_bfmas(acc[i][j], a, wv[j]);
                    }
                }
            }
    for (int j = 0; j < nb; ++j) {
        const cnn_vb b = bias ? cnn_bload(bias + j * CNN_CB) : cnn_bzero();
        for (int i = 0; i < rows; ++i) {
            float *restrict yi = y + j * out_bstride + i * CNN_CB;
            if (last)
                cnn_block_epilogue(acc[i][j], b, res ? res + j * out_bstride + i * CNN_CB : NULL,
                                   yi, act);
            else
                cnn_bstore(yi, acc[i][j]);
        }
    }
}

/* cnn_direct_tile on nb = 1 to 3 output blocks (none for other nb), nb spelled as a
 * constant in each call (as cnn_pointwise_tile_n). */
static inline __attribute__((always_inline)) void
cnn_direct_tile_n(int rows, int nb, int ib_n, int kh_n, int kw_n, int stride_w, int dil_h,
                  int dil_w, int wp, size_t in_bstride, size_t wstride, const float *restrict x,
                  const float *restrict w, const float *restrict bias,
                  const float *restrict res, float *restrict y, size_t out_bstride, int act,
                  int first, int last)
{
    if (nb == 1)
        cnn_direct_tile(rows, 1, ib_n, kh_n, kw_n, stride_w, dil_h, dil_w, wp, in_bstride,
                        wstride, x, w, bias, res, y, out_bstride, act, first, last);
    else if (nb == 2)
        cnn_direct_tile(rows, 2, ib_n, kh_n, kw_n, stride_w, dil_h, dil_w, wp, in_bstride,
                        wstride, x, w, bias, res, y, out_bstride, act, first, last);
    else if (nb == 3)
        cnn_direct_tile(rows, 3, ib_n, kh_n, kw_n, stride_w, dil_h, dil_w, wp, in_bstride,
                        wstride, x, w, bias, res, y, out_bstride, act, first, last);
}

/* Input blocks a pass: their weights for nb output blocks in 16 KiB, read from L1 by
 * every tile of an output row (ONNX Runtime's NCHWc driver likewise adds one input block at
 * a time into the output). */
static inline int cnn_direct_chunk(int taps, int nb)
{
    const int n = 4096 / (taps * CNN_CB * CNN_CB * nb);
    return n > 1 ? n : 1;
}

/* Output rows [oh0, oh0 + oh_n) of the output blocks of group grp (g.nb blocks from grp *
 * g.nb), each pass over a chunk of input blocks going along each row in tiles of g.mr pixels
 * (the whole row on rows of fewer); (mr, nb) is (TILE_MR, TILE_NB) or the wide (WIDE_MR,
 * WIDE_NB). x: the input, g.padded_h x g.padded_w pixels a block. A chunk's weights are read
 * from L1 by every tile of the rows, the partial sums stored in y between chunks. A last
 * group of fewer blocks is one tile of them all (a constant count, out_blocks % nb).
 * A grouped convolution (g.group_in_blocks > 0) reads, for each run of g.group_out_blocks
 * output blocks, only its own g.group_in_blocks input blocks; g.nb divides the run, so a
 * tile never spans two. Convolution groups narrower than a block share their blocks: the
 * weights between channels of different groups are zeros (kernels/conv_nchw16c.py). */
static inline __attribute__((always_inline)) void
cnn_direct_step(const cnn_conv16_geom g, const float *restrict x, const float *restrict w,
                const float *restrict bias, const float *restrict res, float *restrict y,
                int oh0, int oh_n, int grp)
{
    const int mr = g.mr, nbw = g.nb, kh_n = g.kh, kw_n = g.kw;
    const int ib_n = g.group_in_blocks ? g.group_in_blocks : g.in_blocks;
    const int stride_w = g.stride_w, dil_h = g.dil_h, dil_w = g.dil_w, wp = g.padded_w;
    const int out_w = g.out_w, act = g.act;
    /* grp < groups; said again so that, inlined, a constant out_blocks bounds ob0 and nb */
    grp = g.out_blocks > nbw ? grp : 0;
    const int ob0 = grp * nbw, nb = cnn_min(nbw, g.out_blocks - ob0);
    const int chunk = cnn_direct_chunk(kh_n * kw_n, nbw);
    const size_t in_bstride = (size_t)g.padded_h * wp * CNN_CB,
                 out_bstride = (size_t)g.out_h * out_w * CNN_CB;
    const size_t per_in = (size_t)kh_n * kw_n * CNN_CB * CNN_CB, wstride = ib_n * per_in;
    const float *restrict wg = w + ob0 * wstride;
    if (g.group_in_blocks)
        x += (size_t)(ob0 / g.group_out_blocks) * ib_n * in_bstride;
    const float *restrict bg = bias ? bias + ob0 * CNN_CB : NULL;
    /* whole tiles, then the rem pixels left as one tile of its own (out_w is a constant) */
    const int tile = out_w < mr ? out_w : mr, rem = out_w % tile;
    for (int ib = 0; ib < ib_n; ib += chunk) {
        const int n = cnn_min(chunk, ib_n - ib), first = ib == 0, last = ib + n == ib_n;
        const float *restrict wb = wg + ib * per_in;
        for (int oh = oh0; oh < oh0 + oh_n; ++oh) {
            const size_t o = (size_t)ob0 * out_bstride + (size_t)oh * out_w * CNN_CB;
            const float *restrict xb =
                x + (size_t)oh * g.stride_h * wp * CNN_CB + ib * in_bstride;
            const float *restrict rg = res ? res + o : NULL;
            for (int ow = 0; ow < out_w; ow += tile) {
                const int rows = ow + tile <= out_w ? tile : rem;
                const float *restrict xt = xb + (size_t)ow * stride_w * CNN_CB;
                const size_t oc = (size_t)ow * CNN_CB;
                if (rows == tile && nb == nbw)
                    cnn_direct_tile(tile, nbw, n, kh_n, kw_n, stride_w, dil_h, dil_w, wp,
                                    in_bstride, wstride, xt, wb, bg, rg ? rg + oc : NULL,
                                    y + o + oc, out_bstride, act, first, last);
                else if (nb == nbw)
                    cnn_direct_tile(rem, nbw, n, kh_n, kw_n, stride_w, dil_h, dil_w, wp,
                                    in_bstride, wstride, xt, wb, bg, rg ? rg + oc : NULL,
                                    y + o + oc, out_bstride, act, first, last);
                else if (rows == tile) /* the last group's out_blocks % nbw blocks */
                    cnn_direct_tile_n(tile, g.out_blocks % nbw, n, kh_n, kw_n, stride_w, dil_h,
                                      dil_w, wp, in_bstride, wstride, xt, wb, bg,
                                      rg ? rg + oc : NULL, y + o + oc, out_bstride, act, first,
                                      last);
                else
                    cnn_direct_tile_n(rem, g.out_blocks % nbw, n, kh_n, kw_n, stride_w, dil_h,
                                      dil_w, wp, in_bstride, wstride, xt, wb, bg,
                                      rg ? rg + oc : NULL, y + o + oc, out_bstride, act, first,
                                      last);
            }
        }
    }
}

/* Row r of block b of the zero-padded copy xp of a blocked input: g.padded_h x g.padded_w
 * pixels, input pixel (ih, iw) at (ih + g.pad_top, iw + g.pad_left); rows and columns past
 * the input zero. */
static inline __attribute__((always_inline)) void
cnn_pad_blocks_row(const cnn_conv16_geom g, const float *restrict x, float *restrict xp, int b,
                   int r)
{
    const int in_h = g.in_h, in_w = g.in_w, pad_left = g.pad_left, hp = g.padded_h,
              wp = g.padded_w;
    float *restrict row = xp + ((size_t)b * hp + r) * wp * CNN_CB;
    const int ih = r - g.pad_top;
    if (ih < 0 || ih >= in_h) {
        memset(row, 0, sizeof(float) * (size_t)wp * CNN_CB);
        return;
    }
    const int lo = cnn_min(pad_left, wp), hi = cnn_min(pad_left + in_w, wp);
    memset(row, 0, sizeof(float) * (size_t)lo * CNN_CB);
    memcpy(row + (size_t)lo * CNN_CB, x + (((size_t)b * in_h + ih) * in_w + lo - pad_left) * CNN_CB,
           sizeof(float) * (size_t)(hi - lo) * CNN_CB);
    memset(row + (size_t)hi * CNN_CB, 0, sizeof(float) * (size_t)(wp - hi) * CNN_CB);
}

#endif /* CNN_NCHW16C_DIRECT_H */
