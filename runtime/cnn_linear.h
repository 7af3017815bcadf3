/* cnn_linear.h: linear layers on 16-float vectors (cnn_nchw16c.h): one sample with the
 * weights in blocks of 16 outputs as a 1x1 convolution's (linear_blocks), and groups of up to
 * 16 samples as the lanes of a vector, the weights row-major or blocked (cnn_linear_lanes).
 * Used by linear.c.j2, which writes the one-sample row-major path (linear_rows) itself.
 */
#ifndef CNN_LINEAR_H
#define CNN_LINEAR_H

#include "cnn_nchw16c_pointwise.h"

/* Output o's weights W[o][i] of a linear layer, element i at row[i * step]: w row-major
 * (out x in, the linear_rows kernel), or blocked as a 1x1 convolution's, w[o / 16][i][16]
 * with the inputs padded to whole blocks (linear_blocks). */
static inline const float *cnn_linear_row(const float *restrict w, int in, int blocked, int o)
{
    return blocked ? w + (size_t)(o / CNN_CB) * cnn_pointwise_wstride(in) + o % CNN_CB
                   : w + (size_t)o * in;
}

/* Outputs [o0, o0 + nu) (nu <= 8) of cnn_linear_lanes for its n samples' transposed inputs
 * xt: nu outputs' sums in nu vectors, each weight broadcast once against the 16 lanes.
 * Outputs past the last repeat it and are not stored. */
static inline __attribute__((always_inline)) void
cnn_linear_lanes_rows(int nu, int in, int out, int o0, const float *restrict xt,
                      const float *restrict w, int blocked, const float *restrict bias,
                      float *restrict yf, size_t ys, int n)
{
    const int step = blocked ? CNN_CB : 1;
    const float *restrict row[8];
    cnn_vb acc[8];
    for (int u = 0; u < nu; ++u) {
        row[u] = cnn_linear_row(w, in, blocked, cnn_min(o0 + u, out - 1));
        acc[u] = cnn_bzero();
    }
    for (int i = 0; i < in; ++i) {
        const cnn_vb v = cnn_bload(xt + (size_t)i * CNN_CB);
        for (int u = 0; u < nu; ++u)
            acc[u] = cnn_bfmas(acc[u], row[u][(size_t)i * step], v);
    }
    float lanes[8][CNN_CB];
    for (int u = 0; u < nu; ++u)
        cnn_bstore(lanes[u], bias ? cnn_badd(acc[u], cnn_bset(bias[cnn_min(o0 + u, out - 1)]))
                                  : acc[u]);
    for (int s = 0; s < n; ++s)
        for (int u = 0; u < cnn_min(nu, out - o0); ++u)
            yf[(size_t)s * ys + o0 + u] = lanes[u][s];
}

/* A linear layer y = W x + b for `count` samples (sample s at x + s * xs, y + s * ys), 16 at
 * a time as the lanes of a 16-float vector: xt (in x 16 floats of scratch) holds their inputs
 * transposed (16 x 16 register transposes for a full 16 samples), the lanes past the last
 * sample zero. Each weight W[o][i] is broadcast once against all 16 samples, 8 outputs' sums
 * in 8 vectors, and no sum is reduced across lanes (a dot product per output and sample
 * reduced each one: LeNet-5's 400 -> 120 layer ran at 38 GFLOP/s that way); a last 4 outputs
 * or fewer in 4 vectors. w: as the one-sample path reads it (cnn_linear_row). Transposing
 * element by element took more than the products on seed_simplecnn's 8192 -> 10 layer (the
 * model at batch 32: 0.91x the time with the transposes and the 4-output block). */
static inline void cnn_linear_lanes(int in, int out, const float *restrict x, size_t xs,
                                    const float *restrict w, int blocked,
                                    const float *restrict bias, float *restrict y, size_t ys,
                                    int count, float *restrict xt)
{
    for (int first = 0; first < count; first += CNN_CB) {
        const int n = cnn_min(CNN_CB, count - first);
        const float *restrict xf = x + (size_t)first * xs;
        float *restrict yf = y + (size_t)first * ys;
        int i = 0;
        if (n == CNN_CB)
            for (; i + CNN_CB <= in; i += CNN_CB)
                cnn_transpose16(xf + i, xs, xt + (size_t)i * CNN_CB, CNN_CB);
        for (; i < in; ++i)
            for (int s = 0; s < CNN_CB; ++s)
                xt[(size_t)i * CNN_CB + s] = s < n ? xf[(size_t)s * xs + i] : 0.0f;
        int o0 = 0;
        for (; o0 + 4 < out; o0 += 8)
            cnn_linear_lanes_rows(8, in, out, o0, xt, w, blocked, bias, yf, ys, n);
        if (o0 < out)
            cnn_linear_lanes_rows(4, in, out, o0, xt, w, blocked, bias, yf, ys, n);
    }
}

/* Group g of nb (<= 4) output blocks of a linear layer on one sample, the weights blocked
 * (cnn_linear_row): each step broadcasts x[i] against the next 16 weights of each block.
 * The weights stream in order, block by block: from memory, as fast as a plain read of them
 * (rows read 16 floats at a time, four rows at once, took 1.5x as long), and faster without
 * the software prefetch of the 1x1 convolution's tile (1.2x). A last partial block's vector
 * is stored aside and its real outputs copied. */
static inline __attribute__((always_inline)) void
cnn_linear_blocks_group(int in, int out, int nb, const float *restrict x,
                        const float *restrict w, const float *restrict bias, int act,
                        float *restrict y, int g)
{
    const size_t wstride = cnn_pointwise_wstride(in);
    const int ob0 = g * nb, n = cnn_min(nb, (out + CNN_CB - 1) / CNN_CB - ob0);
    const float *restrict wg = w + (size_t)ob0 * wstride;
    cnn_vb acc[4];
    for (int j = 0; j < nb; ++j)
        acc[j] = cnn_bzero();
    if (n == nb) { /* nb constant when inlined: the blocks' loop unrolled */
        for (int i = 0; i < in; ++i)
            for (int j = 0; j < nb; ++j)
                acc[j] = cnn_bfmas(acc[j], x[i], cnn_bload(wg + j * wstride + (size_t)i * CNN_CB));
    } else {
        for (int i = 0; i < in; ++i)
            for (int j = 0; j < n; ++j)
                acc[j] = cnn_bfmas(acc[j], x[i], cnn_bload(wg + j * wstride + (size_t)i * CNN_CB));
    }
    for (int j = 0; j < n; ++j) {
        const int o = (ob0 + j) * CNN_CB;
        const cnn_vb b = bias ? cnn_bload(bias + o) : cnn_bzero();
        if (o + CNN_CB <= out) {
            cnn_block_epilogue(acc[j], b, NULL, y + o, act);
        } else {
            float last[CNN_CB];
            cnn_block_epilogue(acc[j], b, NULL, last, act);
            for (int l = 0; l < CNN_CB && o + l < out; ++l)
                y[o + l] = last[l];
        }
    }
}

#endif /* CNN_LINEAR_H */
