/* cnn_nchw16c_pool.h: pooling on channel blocks: max pooling an output row at a time
 * (max_pool2d_blocks.c.j2, max_pool2d_from_blocks.c.j2), and global average pooling by parts
 * of the pixels (global_pool_blocks.c.j2), also of a 1x1 layer's output, summed as it is
 * computed and never stored (global_pool_pointwise_blocks.c.j2).
 */
#ifndef CNN_NCHW16C_POOL_H
#define CNN_NCHW16C_POOL_H

#include "cnn_nchw16c_pointwise.h"

/* Output row oh of block b of a max pool on blocks, its out_w pixels' vectors stored at yr:
 * each the lane-wise largest of its window's vectors inside the input (padding never wins,
 * NaN does), then the activation. Columns [col_lo, col_hi) of rows whose windows are inside
 * the input take every tap at constant offsets. */
static inline __attribute__((always_inline)) void
cnn_max_pool_block_row(int in_h, int in_w, int out_w, int kh_n, int kw_n, int stride_h,
                       int stride_w, int pad_top, int pad_left, int dil_h, int dil_w,
                       int col_lo, int col_hi, const float *restrict x, float *restrict yr,
                       int act, int b, int oh)
{
    const float *restrict xb = x + (size_t)b * in_h * in_w * CNN_CB;
    const int h0 = oh * stride_h - pad_top;
    const int kh0 = cnn_tap_lo(h0, dil_h), kh1 = cnn_tap_hi(h0, dil_h, in_h, kh_n);
    int lo = col_lo, hi = col_lo;
    if (kh0 == 0 && kh1 == kh_n) {
        hi = col_hi;
        for (int ow = lo; ow < hi; ++ow) {
            const float *restrict win = xb + ((size_t)h0 * in_w + ow * stride_w - pad_left) * CNN_CB;
            cnn_vb m = cnn_bload(win);
            for (int kh = 0; kh < kh_n; ++kh)
                for (int kw = 0; kw < kw_n; ++kw)
                    if (kh || kw)
                        m = cnn_bmax_nan(m, cnn_bload(win + ((size_t)kh * dil_h * in_w + kw * dil_w) * CNN_CB));
            cnn_bstore(yr + (size_t)ow * CNN_CB, cnn_bact(m, act));
        }
    }
    for (int ow = 0; ow < out_w; ++ow) {
        if (ow == lo)
            ow = hi;
        if (ow == out_w)
            break;
        const int w0 = ow * stride_w - pad_left;
        const int kw0 = cnn_tap_lo(w0, dil_w), kw1 = cnn_tap_hi(w0, dil_w, in_w, kw_n);
        cnn_vb m = cnn_bset(-INFINITY);
        for (int kh = kh0; kh < kh1; ++kh) {
            const float *restrict row = xb + (size_t)(h0 + kh * dil_h) * in_w * CNN_CB;
            for (int kw = kw0; kw < kw1; ++kw)
                m = cnn_bmax_nan(m, cnn_bload(row + (size_t)(w0 + kw * dil_w) * CNN_CB));
        }
        cnn_bstore(yr + (size_t)ow * CNN_CB, cnn_bact(m, act));
    }
}

/* The sum of pixels [p0, p1) of one block (xb: its pixel 0): four sums, so that the
 * additions' latency overlaps (one chain took 4 cycles a pixel). */
static inline __attribute__((always_inline)) cnn_vb
cnn_block_sum(const float *restrict xb, int p0, int p1)
{
    cnn_vb s0 = cnn_bzero(), s1 = cnn_bzero(), s2 = cnn_bzero(), s3 = cnn_bzero();
    int p = p0;
    for (; p + 4 <= p1; p += 4) {
        s0 = cnn_badd(s0, cnn_bload(xb + (size_t)p * CNN_CB));
        s1 = cnn_badd(s1, cnn_bload(xb + (size_t)(p + 1) * CNN_CB));
        s2 = cnn_badd(s2, cnn_bload(xb + (size_t)(p + 2) * CNN_CB));
        s3 = cnn_badd(s3, cnn_bload(xb + (size_t)(p + 3) * CNN_CB));
    }
    for (; p < p1; ++p)
        s0 = cnn_badd(s0, cnn_bload(xb + (size_t)p * CNN_CB));
    return cnn_badd(cnn_badd(s0, s1), cnn_badd(s2, s3));
}

/* Block b of a global average pool: y[c] = (the sum s of channel c's pixels) / divisor, for
 * the block's real channels. */
static inline __attribute__((always_inline)) void
cnn_global_avg_store(cnn_vb s, int channels, float divisor, float *restrict y, int b)
{
    float v[CNN_CB];
    cnn_bstore(v, s);
    for (int l = 0; l < cnn_min(CNN_CB, channels - b * CNN_CB); ++l)
        y[b * CNN_CB + l] = v[l] / divisor;
}

/* Part q of `parts` of a global pool's pixels: the sums of pixels [q * plane / parts,
 * (q + 1) * plane / parts) of every block into part[block][16]. */
static inline void cnn_global_sum_part(const float *restrict x, int blocks, int plane,
                                       int parts, int q, float *restrict part)
{
    const int p0 = (int)((long long)q * plane / parts);
    const int p1 = (int)((long long)(q + 1) * plane / parts);
    for (int b = 0; b < blocks; ++b)
        cnn_bstore(part + b * CNN_CB, cnn_block_sum(x + (size_t)b * plane * CNN_CB, p0, p1));
}


/* Part q of `parts` of a global average pool that computes its input, the output of the 1x1
 * layer g (passes/pipeline_pointwise.py): pixels [q * plane / parts, (q + 1) * plane / parts)
 * of x (the 1x1 layer's input) through the 1x1 layer, each tile's outputs added into
 * sums[block][16] as it finishes, in runs of `pixels`. */
static inline __attribute__((always_inline)) void
cnn_pointwise_pool_part(const cnn_conv16_geom g, int parts, int pixels, int q,
                        const float *restrict x, const float *restrict w,
                        const float *restrict bias, float *restrict sums)
{
    const int mr = g.mr, nb = g.nb, k_n = g.in_channels, blocks = g.out_blocks, act = g.act;
    const int plane = g.out_h * g.out_w;
    const int p0 = (int)((long long)q * plane / parts);
    const int p1 = (int)((long long)(q + 1) * plane / parts);
    const size_t xstride = (size_t)plane * CNN_CB;
    for (int b = 0; b < blocks; ++b)
        cnn_bstore(sums + b * CNN_CB, cnn_bzero());
    for (int p = p0; p < p1; p += pixels) {
        if (p1 - p >= pixels) /* a whole run: its tiles known when inlined */
            cnn_pointwise_run(mr, nb, blocks % nb, k_n, 0, blocks, pixels, xstride, CNN_CB,
                              x + (size_t)p * CNN_CB, w, bias, sums, act, 1);
        else
            cnn_pointwise_run(mr, nb, blocks % nb, k_n, 0, blocks, p1 - p, xstride, CNN_CB,
                              x + (size_t)p * CNN_CB, w, bias, sums, act, 1);
    }
}

#endif /* CNN_NCHW16C_POOL_H */
