/* cnn_nchw16c_winograd.h: Winograd's input transform read from channel blocks, for the
 * Winograd kernels (cnn_winograd.h) on a blocked input: each tile's patch of 16-channel
 * vectors transformed across its 16 channels at once, then transposed into the GEMM's MR-row
 * panels of V, as cnn_winograd_input writes them from planes. Used by conv_winograd.c.j2.
 */
#ifndef CNN_NCHW16C_WINOGRAD_H
#define CNN_NCHW16C_WINOGRAD_H

#include "cnn_gemm.h"
#include "cnn_nchw16c.h"

/* The 8 x 16 transpose that turns the transformed 16-channel vectors of a Winograd panel's
 * MR = 8 tiles, t[tile][channel], into the GEMM's panel rows, dst[channel * 8 + tile], for
 * the block's first `real` channels. With GCC's shuffles: three rounds, each exchanging one
 * bit of the tile index (the vector) with one bit of the channel (the lane) between pairs of
 * vectors, the last one also moving the lanes into place; vector j then holds channels 2j
 * and 2j + 1. */
#if CNN_MR != 8
#error "cnn_panel_from_vectors and cnn_winograd_blocks_input take panels of 8 tiles"
#endif
#if defined(__GNUC__) && !defined(__clang__) && !defined(CNN_NO_VECTOR_EXTENSIONS)
/* The last of the three rounds below: as cnn_transpose16's round h = 2 (lane bit 2), each
 * lane read from ((l & 7) << 1) | (l >> 3) in place of l, which puts (channel bit 0, tile bits
 * 2-0) in lane order. */
static const cnn_vbi cnn_panel_last_lo =
    {0, 16, 4, 20, 8, 24, 12, 28, 1, 17, 5, 21, 9, 25, 13, 29};
static const cnn_vbi cnn_panel_last_hi =
    {2, 18, 6, 22, 10, 26, 14, 30, 3, 19, 7, 23, 11, 27, 15, 31};
#endif
static inline __attribute__((always_inline)) void
cnn_panel_from_vectors(const cnn_vb t[8], int real, float *restrict dst)
{
#if defined(__GNUC__) && !defined(__clang__) && !defined(CNN_NO_VECTOR_EXTENSIONS)
    cnn_vb r[8];
    for (int i = 0; i < 8; ++i)
        r[i] = t[i];
    /* vector bit 4 <-> lane bit 8, vector bit 2 <-> lane bit 4: cnn_transpose16's lane
     * exchanges of its rounds h = 8 and 4, between vectors 4 and 2 apart */
    cnn_shuffle_round(r, 8, 4, &cnn_transpose16_lo[3], &cnn_transpose16_hi[3]);
    cnn_shuffle_round(r, 8, 2, &cnn_transpose16_lo[2], &cnn_transpose16_hi[2]);
    cnn_shuffle_round(r, 8, 1, &cnn_panel_last_lo, &cnn_panel_last_hi);
    for (int j = 0; j < 8; ++j) {
        if (2 * j + 1 < real)
            cnn_bstore(dst + j * CNN_CB, r[j]);
        else if (2 * j < real)
            memcpy(dst + j * CNN_CB, &r[j], sizeof(float) * 8);
    }
#else
    float v[8][CNN_CB];
    for (int i = 0; i < 8; ++i)
        cnn_bstore(v[i], t[i]);
    for (int c = 0; c < real; ++c)
        for (int i = 0; i < 8; ++i)
            dst[c * 8 + i] = v[i][c];
#endif
}

/* One row of B^T d for Winograd's input transform, on 16-channel vectors: F(4x4, 3x3)
 * (size 6, the rows of cnn_winograd_input) or F(2x2, 3x3) (size 4). */
static inline __attribute__((always_inline)) void
cnn_winograd_bt(int size, const cnn_vb *d, int ds, cnn_vb *o, int os)
{
    if (size == 6) {
        const cnn_vb d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds],
                     d5 = d[5 * ds];
        o[0] = cnn_bfmas(cnn_bfmas(d4, 4.0f, d0), -5.0f, d2);
        o[os] = cnn_bfmas(cnn_badd(d3, d4), -4.0f, cnn_badd(d1, d2));
        o[2 * os] = cnn_bfmas(cnn_bsub(d4, d3), 4.0f, cnn_bsub(d1, d2));
        o[3 * os] = cnn_bfmas(cnn_bsub(d4, d2), 2.0f, cnn_bsub(d3, d1));
        o[4 * os] = cnn_bfmas(cnn_bsub(d4, d2), 2.0f, cnn_bsub(d1, d3));
        o[5 * os] = cnn_bfmas(cnn_bfmas(d5, 4.0f, d1), -5.0f, d3);
    } else {
        const cnn_vb d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds];
        o[0] = cnn_bsub(d0, d2);
        o[os] = cnn_badd(d1, d2);
        o[2 * os] = cnn_bsub(d2, d1);
        o[3 * os] = cnn_bsub(d1, d3);
    }
}

/* Panel t0 (MR tiles from tile first + t0) of V for a Winograd layer whose input is blocked,
 * read from the blocks themselves rather than from padded planes: v[xi][tile / MR][c][tile
 * % MR] as cnn_winograd_input writes it. size: 6 for F(4x4, 3x3), 4 for F(2x2, 3x3), tiles
 * size - 2 pixels apart. Per input block, each tile's size x size patch of 16-channel
 * vectors (zero outside the image and past the last tile) is transformed across its 16
 * channels at once, then the panel's tiles are transposed into the GEMM's rows. */
static inline __attribute__((always_inline)) void
cnn_winograd_blocks_input(const float *restrict x, int channels, int in_h, int in_w,
                          int pad_top, int pad_left, int size, int tiles_w, int first,
                          int count, int rows, float *restrict v, int t0)
{
    const int step = size - 2, positions = size * size;
    const int n = cnn_min(CNN_MR, count - t0);
    const size_t xi_stride = (size_t)rows * channels;
    for (int cb = 0; cb * CNN_CB < channels; ++cb) {
        const float *restrict xb = x + (size_t)cb * in_h * in_w * CNN_CB;
        cnn_vb out[36][8];
        for (int l = 0; l < 8; ++l) {
            cnn_vb d[6][6], cols[6][6];
            const int t = first + t0 + l;
            const int h0 = t / tiles_w * step - pad_top, w0 = t % tiles_w * step - pad_left;
            const int inside = h0 >= 0 && w0 >= 0 && h0 + size <= in_h && w0 + size <= in_w;
            for (int r = 0; r < size; ++r)
                for (int q = 0; q < size; ++q) {
                    const int ih = h0 + r, iw = w0 + q;
                    d[r][q] = l < n && (inside || (ih >= 0 && ih < in_h && iw >= 0 && iw < in_w))
                                  ? cnn_bload(xb + ((size_t)ih * in_w + iw) * CNN_CB)
                                  : cnn_bzero();
                }
            for (int q = 0; q < size; ++q) /* B^T d */
                cnn_winograd_bt(size, &d[0][q], 6, &cols[0][q], 6);
            for (int r = 0; r < size; ++r) /* (B^T d) B */
                cnn_winograd_bt(size, &cols[r][0], 1, &out[r * size][l], 8);
        }
        const int real = cnn_min(CNN_CB, channels - cb * CNN_CB);
        float *restrict dst = v + (size_t)t0 * channels + (size_t)cb * CNN_CB * CNN_MR;
        for (int xi = 0; xi < positions; ++xi)
            cnn_panel_from_vectors(out[xi], real, dst + xi * xi_stride);
    }
}

#endif /* CNN_NCHW16C_WINOGRAD_H */
