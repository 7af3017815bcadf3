/* cnn_nchw16c_pointwise.h: the 1x1 convolution on channel blocks (pointwise_nchwc): a matrix
 * product with the pixels as rows and the output channels as 16-float vector columns, in
 * tiles of pixels x output blocks (CNN_TILE_MR, CNN_WIDE_MR, CNN_TILE7_MR). Used by
 * conv_pointwise_nchwc.c.j2, and through cnn_pointwise_run by the pipelined pairs
 * (conv_pointwise_depthwise_nchwc.c.j2, cnn_nchw16c_pool.h) and by cnn_linear.h.
 */
#ifndef CNN_NCHW16C_POINTWISE_H
#define CNN_NCHW16C_POINTWISE_H

#include "cnn_nchw16c.h"

/* Weight vectors ahead of the one in use that the pointwise tile asks the cache for, as
 * the GEMM does (CNN_GEMM_PREFETCH): layers whose weights outweigh their image stream them
 * (MobileNetV2's 960 -> 320 on 7x7: 0.41 -> 0.36 ms with the reorders around it). */
#ifndef CNN_PW_PREFETCH
#define CNN_PW_PREFETCH 32
#endif

/* Floats of one output block's pointwise weights, w[k][16] for k_n input channels rounded up
 * to whole blocks. */
static inline size_t cnn_pointwise_wstride(int k_n)
{
    return (size_t)(k_n + CNN_CB - 1) / CNN_CB * CNN_CB * CNN_CB;
}

/* Input channel kk of input block kb into the pointwise tile's accumulators (below). */
static inline __attribute__((always_inline)) void
cnn_pointwise_channel(int rows, int nb, int kb_n, int kb, int kk, size_t wstride,
                      const float *restrict xb, const float *restrict wb,
                      cnn_vb acc[CNN_TILE_MR_MAX][4])
{
    cnn_vb wv[4];
    for (int j = 0; j < nb; ++j) {
#if defined(__GNUC__)
        /* only inside block j's weights: GCC rejects (-Warray-bounds) a prefetch it can
         * prove to lie past a small layer's constant array */
        if (kb * CNN_CB + kk + CNN_PW_PREFETCH < kb_n * CNN_CB)
            __builtin_prefetch(wb + j * wstride + (CNN_PW_PREFETCH + kk) * CNN_CB);
#endif
        wv[j] = cnn_bload(wb + j * wstride + kk * CNN_CB);
    }
    for (int i = 0; i < rows; ++i) {
        const float a = xb[i * CNN_CB + kk];
        for (int j = 0; j < nb; ++j)
            acc[i][j] = cnn_bfmas(acc[i][j], a, wv[j]);
    }
}

/* rows (<= TILE_MR or WIDE_MR) pixels x nb (<= 4) output blocks of a pointwise convolution:
 * y = act(sum_k w[k] x[k] + bias (+ res)) over the k_n input channels. x: the first pixel in
 * input block 0 (pixel i of input channel k at x[k / 16 * plane * 16 + i * 16 + k % 16]); w:
 * output block 0's weights w[k][16] (cnn_pointwise_wstride floats), block j's at w + j *
 * that; bias: 16 per block; y and res: the first pixel in output block 0, block j at + j *
 * plane * 16. The padding channels of a last partial input block (k >= k_n, zero weights)
 * are skipped: MobileNetV2's 24 -> 144 layers do 24 channels' work, not 32. Called with
 * constant rows, nb and k_n, it is specialised when inlined. */
static inline __attribute__((always_inline)) void
cnn_pointwise_tile(int rows, int nb, int k_n, size_t xstride, size_t ystride,
                   const float *restrict x, const float *restrict w, const float *restrict bias,
                   const float *restrict res, float *restrict y, int act, int sum)
{
    cnn_vb acc[CNN_TILE_MR_MAX][4];
    const size_t wstride = cnn_pointwise_wstride(k_n);
    const int kb_n = (int)(wstride / (CNN_CB * CNN_CB));
    const int full = k_n / CNN_CB;
    for (int i = 0; i < rows; ++i)
        for (int j = 0; j < nb; ++j)
            acc[i][j] = cnn_bzero();
    for (int kb = 0; kb < full; ++kb)
        for (int kk = 0; kk < CNN_CB; ++kk)
            cnn_pointwise_channel(rows, nb, kb_n, kb, kk, wstride, x + kb * xstride,
                                  w + (size_t)kb * CNN_CB * CNN_CB, acc);
    for (int kk = 0; kk < k_n % CNN_CB; ++kk)
        cnn_pointwise_channel(rows, nb, kb_n, full, kk, wstride, x + full * xstride,
                              w + (size_t)full * CNN_CB * CNN_CB, acc);
    for (int j = 0; j < nb; ++j) {
        const cnn_vb b = bias ? cnn_bload(bias + j * CNN_CB) : cnn_bzero();
        if (sum) { /* the pixels' outputs added into y's block j instead */
            cnn_vb t = cnn_bload(y + j * ystride);
            for (int i = 0; i < rows; ++i)
                t = cnn_badd(t, cnn_bact(cnn_badd(acc[i][j], b), act));
            cnn_bstore(y + j * ystride, t);
            continue;
        }
        for (int i = 0; i < rows; ++i)
            cnn_block_epilogue(acc[i][j], b, res ? res + j * ystride + i * CNN_CB : NULL,
                               y + j * ystride + i * CNN_CB, act);
    }
}

/* cnn_pointwise_tile on n = 1 to 3 output blocks (none for other n), n spelled as a
 * constant in each call: only the one a constant n names is compiled, and none reads
 * accumulators it did not clear when n is not one (GCC's -Wmaybe-uninitialized). */
static inline __attribute__((always_inline)) void
cnn_pointwise_tile_n(int rows, int n, int k_n, size_t xstride, size_t ystride,
                     const float *restrict x, const float *restrict w,
                     const float *restrict bias, const float *restrict res, float *restrict y,
                     int act, int sum)
{
    if (n == 1)
        cnn_pointwise_tile(rows, 1, k_n, xstride, ystride, x, w, bias, res, y, act, sum);
    else if (n == 2)
        cnn_pointwise_tile(rows, 2, k_n, xstride, ystride, x, w, bias, res, y, act, sum);
    else if (n == 3)
        cnn_pointwise_tile(rows, 3, k_n, xstride, ystride, x, w, bias, res, y, act, sum);
}

/* Output blocks [ob0, ob1) of pixels [p, p + rows), rows mr or 1: nb blocks a tile, the
 * tail = (ob1 - ob0) % nb blocks of a last partial group in one tile of their own (callers
 * pass out_blocks % nb, a constant, so that its bounds stay constant; tiles of one block
 * have too few accumulators to keep the FMA units busy). xstride, ystride: floats from one
 * block of x, and of y and res, to the next (plane * 16 for whole planes); y's block ob0
 * at y. */
static inline __attribute__((always_inline)) void
cnn_pointwise_pixels(int rows, int nb, int tail, int k_n, int ob0, int ob1, size_t xstride,
                     size_t ystride, const float *restrict x, const float *restrict w,
                     const float *restrict bias, const float *restrict res, float *restrict y,
                     int act, int p, int sum)
{
    const size_t wstride = cnn_pointwise_wstride(k_n);
    const float *restrict xp = x + (size_t)p * CNN_CB;
    const size_t yp = sum ? 0 : (size_t)p * CNN_CB; /* sums: one vector a block */
    int ob = ob0;
    for (; ob + nb <= ob1; ob += nb)
        cnn_pointwise_tile(rows, nb, k_n, xstride, ystride, xp, w + ob * wstride,
                           bias ? bias + ob * CNN_CB : NULL,
                           res ? res + (ob - ob0) * ystride + yp : NULL,
                           y + (ob - ob0) * ystride + yp, act, sum);
    if (tail && ob < ob1)
        cnn_pointwise_tile_n(rows, tail, k_n, xstride, ystride, xp, w + ob * wstride,
                           bias ? bias + ob * CNN_CB : NULL,
                           res ? res + (ob - ob0) * ystride + yp : NULL,
                           y + (ob - ob0) * ystride + yp, act, sum);
}

/* A 1x1 convolution, stride 1, blocks in and out: k_n input channels, weights
 * w[out block][k][16] (k < k_n rounded up to whole blocks), in tiles of mr pixels x nb output blocks, (TILE_MR,
 * TILE_NB) or (WIDE_MR, WIDE_NB). The caller runs the pixel steps [0, cnn_pointwise_steps(plane,
 * mr)), each mr pixels (one pixel on images of fewer), for output blocks [ob0, ob1). A last
 * partial tile is done as the full tile ending at the last pixel, in the same step as the
 * tile before it (the same values, the same thread). Callers loop over chunks of pixel
 * steps outside (cnn_pointwise_chunk), then over groups of nb output blocks
 * (cnn_pointwise_groups), then over the chunk's steps; or, when the weights outweigh the
 * image, over the groups outside, each group's weights then meeting every pixel in L1/L2. */
static inline int cnn_pointwise_steps(int plane, int mr)
{
    return plane < mr ? plane : plane / mr;
}

static inline int cnn_pointwise_groups(int out_blocks, int nb)
{
    return (out_blocks + nb - 1) / nb;
}

/* Pixel steps per chunk, of `steps` shared by up to `team` threads: the chunk's input, kb_n
 * blocks of it, in 16 KiB, so that it stays in L1 while each group of output blocks' weights
 * is read once for the whole chunk rather than once per tile; and as many chunks as a
 * multiple of the team, of even sizes, so that the threads' shares are even. (MobileNetV2's
 * 32 -> 192 on 28x28 had 7 chunks of 21 steps: at two threads one did 4 of them, and the
 * layer ran 1.33x as fast as on one.) */
static inline int cnn_pointwise_chunk(int kb_n, int mr, int steps, int team)
{
    const int most = cnn_max(1, 4096 / (kb_n * CNN_CB * mr));
    const int chunks = (steps + most - 1) / most;
    const int shared = (chunks + team - 1) / team * team;
    return cnn_max(1, (steps + shared - 1) / shared);
}

/* Step t of the output blocks of group grp (g.nb blocks from grp * g.nb) of the layer g:
 * g.in_channels input channels, g.out_h x g.out_w pixels, tiles of g.mr pixels. */
static inline __attribute__((always_inline)) void
cnn_pointwise_step(const cnn_conv16_geom g, const float *restrict x, const float *restrict w,
                   const float *restrict bias, const float *restrict res, float *restrict y,
                   int grp, int t)
{
    const int mr = g.mr, nb = g.nb, tail = g.out_blocks % nb, k_n = g.in_channels, act = g.act;
    const int ob0 = grp * nb, ob1 = cnn_min((grp + 1) * nb, g.out_blocks);
    const int plane = g.out_h * g.out_w;
    const size_t bstride = (size_t)plane * CNN_CB;
    const float *restrict r = res ? res + ob0 * bstride : NULL;
    float *restrict yb = y + ob0 * bstride;
    if (plane < mr) {
        cnn_pointwise_pixels(1, nb, tail, k_n, ob0, ob1, bstride, bstride, x, w, bias, r, yb, act, t, 0);
        return;
    }
    cnn_pointwise_pixels(mr, nb, tail, k_n, ob0, ob1, bstride, bstride, x, w, bias, r, yb, act, t * mr, 0);
    if (t == plane / mr - 1 && plane % mr)
        cnn_pointwise_pixels(mr, nb, tail, k_n, ob0, ob1, bstride, bstride, x, w, bias, r, yb, act,
                             plane - mr, 0);
}

/* Output blocks [ob0, ob1) of a run of n pixels (an image row) into y, block ob0 at y and
 * the next ystride floats on, or with sum set, added into one vector a block there; x: the
 * run's first pixel in input block 0, the next block xstride floats on. Tiles of mr pixels,
 * a remainder as a narrower tile (each pixel computed once, as the sums need); runs
 * shorter than a tile pixel by pixel. */
static inline __attribute__((always_inline)) void
cnn_pointwise_run(int mr, int nb, int tail, int k_n, int ob0, int ob1, int n, size_t xstride,
                  size_t ystride, const float *restrict x, const float *restrict w,
                  const float *restrict bias, float *restrict y, int act, int sum)
{
    if (n < mr) {
        for (int p = 0; p < n; ++p)
            cnn_pointwise_pixels(1, nb, tail, k_n, ob0, ob1, xstride, ystride, x, w, bias, NULL, y,
                                 act, p, sum);
        return;
    }
    for (int p = 0; p + mr <= n; p += mr)
        cnn_pointwise_pixels(mr, nb, tail, k_n, ob0, ob1, xstride, ystride, x, w, bias, NULL, y, act,
                             p, sum);
    if (n % mr)
        cnn_pointwise_pixels(n % mr, nb, tail, k_n, ob0, ob1, xstride, ystride, x, w, bias, NULL, y,
                             act, n - n % mr, sum);
}

/* One output row of the layer g (g.out_w pixels, every output block) into y, block b at
 * y + b * ystride; x: the row's first pixel in input block 0, a whole plane a block. */
static inline __attribute__((always_inline)) void
cnn_pointwise_row(const cnn_conv16_geom g, const float *restrict x, const float *restrict w,
                  const float *restrict bias, float *restrict y, size_t ystride)
{
    cnn_pointwise_run(g.mr, g.nb, g.out_blocks % g.nb, g.in_channels, 0, g.out_blocks, g.out_w,
                      (size_t)g.out_h * g.out_w * CNN_CB, ystride, x, w, bias, y, g.act, 0);
}

#endif /* CNN_NCHW16C_POINTWISE_H */
