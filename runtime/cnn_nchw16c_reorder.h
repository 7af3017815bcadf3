/* cnn_nchw16c_reorder.h: conversions between channel planes (C x H x W) and channel blocks
 * (ceil(C / 16) x H x W x 16, the padding channels zero) by 16 x 16 transposes: whole blocks
 * (reorder.c.j2, at the edges of each run of blocked layers) and one row of a block into the
 * planes (max_pool2d_from_blocks.c.j2).
 */
#ifndef CNN_NCHW16C_REORDER_H
#define CNN_NCHW16C_REORDER_H

#include "cnn_nchw16c.h"

/* Planes -> blocks, block b: x (channels x plane) into y (blocks x plane x 16), the
 * channels past `channels` zero. 16 x 16 transposes, the last pixels one by one. */
static inline __attribute__((always_inline)) void
cnn_to_blocks(const float *restrict x, int channels, int plane, float *restrict y, int b)
{
    const int n = cnn_min(CNN_CB, channels - b * CNN_CB);
    const float *restrict xb = x + (size_t)b * CNN_CB * plane;
    float *restrict yb = y + (size_t)b * CNN_CB * plane;
    int p = 0;
    if (n == CNN_CB)
        for (; p + CNN_CB <= plane; p += CNN_CB)
            cnn_transpose16(xb + p, (size_t)plane, yb + (size_t)p * CNN_CB, CNN_CB);
    for (; p < plane; ++p)
        for (int l = 0; l < CNN_CB; ++l)
            yb[(size_t)p * CNN_CB + l] = l < n ? xb[(size_t)l * plane + p] : 0.0f;
}

/* n pixels of one block (src: n x 16) into the planes of its first `real` channels: pixel q
 * of channel l at dst[l * plane + q]. 16 x 16 transposes, the last n % 16 pixels from one
 * more of the last 16; a partial block, or fewer than 16 pixels, one by one. */
static inline __attribute__((always_inline)) void
cnn_pixels_to_planes(const float *restrict src, int n, int real, float *restrict dst,
                     size_t plane)
{
    int p = 0;
    if (real == CNN_CB) {
        for (; p + CNN_CB <= n; p += CNN_CB)
            cnn_transpose16(src + (size_t)p * CNN_CB, CNN_CB, dst + p, plane);
        if (p < n && n >= CNN_CB) { /* the last 16 pixels transposed, their new ones kept */
            float t[CNN_CB * CNN_CB];
            cnn_transpose16(src + (size_t)(n - CNN_CB) * CNN_CB, CNN_CB, t, CNN_CB);
            for (int l = 0; l < CNN_CB; ++l)
                memcpy(dst + l * plane + p, t + l * CNN_CB + CNN_CB - (n - p),
                       sizeof(float) * (size_t)(n - p));
            return;
        }
    }
    for (int l = 0; l < real; ++l)
        for (int q = p; q < n; ++q)
            dst[l * plane + q] = src[(size_t)q * CNN_CB + l];
}

/* Blocks -> planes, block b: the inverse, dropping the padding channels. */
static inline __attribute__((always_inline)) void
cnn_from_blocks(const float *restrict x, int channels, int plane, float *restrict y, int b)
{
    cnn_pixels_to_planes(x + (size_t)b * CNN_CB * plane, plane,
                         cnn_min(CNN_CB, channels - b * CNN_CB),
                         y + (size_t)b * CNN_CB * plane, (size_t)plane);
}

/* A row of n pixels of block b (row: n x 16) into the planes of y, whose rows start at
 * y + c * plane for channel c: the block's real channels only. */
static inline __attribute__((always_inline)) void
cnn_block_row_to_planes(const float *restrict row, int n, int channels, int plane,
                        float *restrict y, int b)
{
    cnn_pixels_to_planes(row, n, cnn_min(CNN_CB, channels - b * CNN_CB),
                         y + (size_t)b * CNN_CB * plane, (size_t)plane);
}

#endif /* CNN_NCHW16C_REORDER_H */
