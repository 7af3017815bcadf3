/* cnn_nchwc.h: convolutions on channel-blocked tensors.
 *
 * A tensor of C channels and P = H x W pixels in the blocked layout (oneDNN calls it nChw16c,
 * ONNX Runtime NCHWc) is ceil(C / 16) blocks, each P pixels of 16 consecutive channels:
 * x[block][pixel][16]. Channels past C are zero, and stay zero: every kernel here has zero
 * weights and bias for them and an activation that maps 0 to 0.
 *
 * The layout lets a depthwise convolution do one 16-channel vector multiply-add per output
 * pixel and tap, whatever the image width or stride (in planes, a 14-pixel output row fills
 * less than one vector, and a stride-2 row has to be gathered). A pointwise (1x1)
 * convolution becomes a matrix product with the pixels as rows and the output channels as
 * vector columns: each input value is broadcast once and multiplies a vector of 16 weights.
 * passes/select_layout.py decides which layers use it; reorders at the edges of each run of
 * such layers convert from and to planes.
 */
#ifndef CNN_NCHWC_H
#define CNN_NCHWC_H

#include "cnn_gemm.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define CNN_CB 16 /* channels per block: ops/blocked.py's BLOCK */

/* GCC warns that passing a 64-byte vector by value has another ABI without AVX-512, where
 * the functions below are inlined into the layers. They are all static, as is every
 * function of model.c that could receive one: there is no ABI to keep. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/* A block of 16 channels as one value: a 64-byte GCC vector, which the compiler splits into
 * two AVX registers, four SSE or NEON ones. Without vector extensions, a struct and loops. */
#if defined(__GNUC__) && !defined(CNN_NO_VECTOR_EXTENSIONS)
typedef float cnn_vb __attribute__((vector_size(64), aligned(4), __may_alias__));
typedef int cnn_vbi __attribute__((vector_size(64)));

static inline cnn_vb cnn_bload(const float *p)
{
    return *(const cnn_vb *)p;
}

static inline void cnn_bstore(float *p, cnn_vb v)
{
    *(cnn_vb *)p = v;
}

static inline cnn_vb cnn_bzero(void)
{
    return (cnn_vb){0};
}

static inline cnn_vb cnn_badd(cnn_vb a, cnn_vb b)
{
    return a + b;
}

static inline cnn_vb cnn_bsub(cnn_vb a, cnn_vb b)
{
    return a - b;
}

/* acc + a * b */
static inline cnn_vb cnn_bfma(cnn_vb acc, cnn_vb a, cnn_vb b)
{
    return acc + a * b;
}

/* acc + s * b, s broadcast */
static inline cnn_vb cnn_bfmas(cnn_vb acc, float s, cnn_vb b)
{
    return acc + s * b;
}

static inline cnn_vb cnn_bselect(cnn_vbi mask, cnn_vb a, cnn_vb b)
{
    return (cnn_vb)((mask & (cnn_vbi)a) | (~mask & (cnn_vbi)b));
}

/* cnn_relu / cnn_relu6 lane by lane, the same comparisons (NaN passes through); a block is
 * the GEMM's vector with AVX-512, whose cnn_vact does it in one instruction each */
static inline cnn_vb cnn_bact(cnn_vb v, int act)
{
#if CNN_VBYTES == 64
    return (cnn_vb)cnn_vact((cnn_vf)v, act);
#else
    const cnn_vb zero = {0}, six = zero + 6.0f;
    if (act == CNN_ACT_RELU6)
        v = cnn_bselect(v > six, six, v);
    if (act != CNN_ACT_NONE)
        v = cnn_bselect(v < zero, zero, v);
    return v;
#endif
}

/* cnn_max_nan lane by lane: the larger, NaN winning. With AVX-512: VMAXPS returns its second
 * source when either is NaN, which keeps a NaN already in m; a NaN in v is then put back
 * under the mask of its unordered lanes (three instructions in place of two comparisons and
 * two selects). */
static inline cnn_vb cnn_bmax_nan(cnn_vb m, cnn_vb v)
{
#if defined(__AVX512F__) && !defined(CNN_NO_MAX_INTRINSICS)
    const __m512 t = _mm512_max_ps((__m512)v, (__m512)m);
    return (cnn_vb)_mm512_mask_mov_ps(t, _mm512_cmp_ps_mask((__m512)v, (__m512)v, _CMP_UNORD_Q),
                                      (__m512)v);
#else
    return cnn_bselect(v != v, v, cnn_bselect(v > m, v, m));
#endif
}

static inline cnn_vb cnn_bset(float s)
{
    return cnn_bzero() + s;
}
#else
typedef struct {
    float v[CNN_CB];
} cnn_vb;

static inline cnn_vb cnn_bload(const float *p)
{
    cnn_vb r;
    memcpy(r.v, p, sizeof r.v);
    return r;
}

static inline void cnn_bstore(float *p, cnn_vb v)
{
    memcpy(p, v.v, sizeof v.v);
}

static inline cnn_vb cnn_bzero(void)
{
    cnn_vb r = {{0}};
    return r;
}

static inline cnn_vb cnn_badd(cnn_vb a, cnn_vb b)
{
    for (int l = 0; l < CNN_CB; ++l)
        a.v[l] += b.v[l];
    return a;
}

static inline cnn_vb cnn_bsub(cnn_vb a, cnn_vb b)
{
    for (int l = 0; l < CNN_CB; ++l)
        a.v[l] -= b.v[l];
    return a;
}

static inline cnn_vb cnn_bfma(cnn_vb acc, cnn_vb a, cnn_vb b)
{
    for (int l = 0; l < CNN_CB; ++l)
        acc.v[l] += a.v[l] * b.v[l];
    return acc;
}

static inline cnn_vb cnn_bfmas(cnn_vb acc, float s, cnn_vb b)
{
    for (int l = 0; l < CNN_CB; ++l)
        acc.v[l] += s * b.v[l];
    return acc;
}

static inline cnn_vb cnn_bact(cnn_vb v, int act)
{
    for (int l = 0; l < CNN_CB; ++l)
        v.v[l] = act == CNN_ACT_RELU6 ? cnn_relu6(v.v[l]) : act == CNN_ACT_RELU ? cnn_relu(v.v[l]) : v.v[l];
    return v;
}

static inline cnn_vb cnn_bmax_nan(cnn_vb m, cnn_vb v)
{
    for (int l = 0; l < CNN_CB; ++l)
        m.v[l] = cnn_max_nan(m.v[l], v.v[l]);
    return m;
}

static inline cnn_vb cnn_bset(float s)
{
    cnn_vb r;
    for (int l = 0; l < CNN_CB; ++l)
        r.v[l] = s;
    return r;
}
#endif

/* v + bias (+ the residual at r), the activation, stored at y */
static inline __attribute__((always_inline)) void
cnn_block_epilogue(cnn_vb v, cnn_vb bias, const float *restrict r, float *restrict y, int act)
{
    v = cnn_badd(v, bias);
    if (r)
        v = cnn_badd(v, cnn_bload(r));
    cnn_bstore(y, cnn_bact(v, act));
}

/* Pointwise micro-kernel shape: PW_MR pixels x PW_NB output blocks of accumulators, as many
 * as the registers hold beside the weights (AVX-512: 16 of 32 zmm; AVX2: 8 of 16 ymm, each
 * block being two; 128-bit vectors: 8 of 16 or 32). */
#if defined(__AVX512F__)
#define CNN_PW_MR 8
#define CNN_PW_NB 2
#elif defined(__AVX__)
#define CNN_PW_MR 4
#define CNN_PW_NB 1
#else
#define CNN_PW_MR 2
#define CNN_PW_NB 1
#endif
/* ... and the wide tile of the pointwise, stem and direct kernels, for layers whose output
 * blocks come in fours: with AVX-512, 6 pixels x 4 blocks, 24 accumulators (MLAS's NCHWc
 * pointwise kernel likewise takes up to 4 filter blocks at once); 128 -> 256 channels on
 * 32x32, one thread: 0.58 -> 0.53 ms. Elsewhere it is the PW_MR x PW_NB tile. */
#if defined(CNN_PWW_MR)
#elif defined(__AVX512F__)
#define CNN_PWW_MR 6
#define CNN_PWW_NB 4
#else
#define CNN_PWW_MR CNN_PW_MR
#define CNN_PWW_NB CNN_PW_NB
#endif
/* ... and a 7-pixel variant of either, for runs of pixels that tiles of 7 cover with less
 * waste (7x7 feature maps, rows of 14, 28, 56 pixels; ops/blocked.py: pixel_tile chooses):
 * 7 x 4 blocks is 28 accumulators beside 4 weight vectors, the pixel's value read by the FMA
 * itself. */
#if defined(__AVX512F__)
#define CNN_PW7_MR 7
#else
#define CNN_PW7_MR CNN_PW_MR
#endif
/* accumulator arrays hold any of the tiles (nb <= 4 in all) */
#define CNN_TILE_MR_MAX (CNN_PW_MR > CNN_PWW_MR ? CNN_PW_MR : CNN_PWW_MR)
#if CNN_PW7_MR > CNN_TILE_MR_MAX
#error "CNN_TILE_MR_MAX must hold the 7-pixel tile"
#endif

/* One round of the register transposes below: for every pair of rows i and i + h (bit h
 * clear in i), lane c of row i becomes lo's pick from the pair, lane c of row i + h hi's
 * (indices 16-31 name the second row's lanes). Callers name each round's entry of a constant
 * table, one call per round: GCC expands a shuffle whose indices it cannot see as constants
 * lane by lane. Index vectors built in a loop, or a loop over the rounds, made a 16 x 16
 * transpose take 250-300 ns instead of 40 (2.4 us instead of 0.4 in the portable build). */
#if defined(__GNUC__) && !defined(__clang__) && !defined(CNN_NO_VECTOR_EXTENSIONS)
static inline __attribute__((always_inline)) void
cnn_shuffle_round(cnn_vb *r, int rows, int h, const cnn_vbi *lo, const cnn_vbi *hi)
{
    for (int i = 0; i < rows; ++i)
        if (!(i & h)) {
            const cnn_vb a = r[i], b = r[i + h];
            r[i] = __builtin_shuffle(a, b, *lo);
            r[i + h] = __builtin_shuffle(a, b, *hi);
        }
}

/* cnn_transpose16's rounds h = 1, 2, 4, 8: lane c of row i keeps its own lane c where
 * c & h == i & h, else takes lane c ^ h of the other row */
static const cnn_vbi cnn_transpose16_lo[4] = {
    {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
    {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
    {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
    {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}};
static const cnn_vbi cnn_transpose16_hi[4] = {
    {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31},
    {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31},
    {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31},
    {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}};
#endif

/* dst (16 rows dst_stride apart) = the transpose of src (16 rows src_stride apart). With
 * GCC's vector shuffles the 16 rows are transposed in registers, in four rounds that each
 * swap one bit h of the row index with the same bit of the column index: rows i and i + h
 * exchange the lanes whose bit h differs from theirs, 64 two-source permutes in all.
 * Otherwise element by element. */
static inline __attribute__((always_inline)) void
cnn_transpose16(const float *restrict src, size_t src_stride, float *restrict dst,
                size_t dst_stride)
{
#if defined(__GNUC__) && !defined(__clang__) && !defined(CNN_NO_VECTOR_EXTENSIONS)
    cnn_vb r[CNN_CB];
    for (int i = 0; i < CNN_CB; ++i)
        r[i] = cnn_bload(src + i * src_stride);
    cnn_shuffle_round(r, CNN_CB, 1, &cnn_transpose16_lo[0], &cnn_transpose16_hi[0]);
    cnn_shuffle_round(r, CNN_CB, 2, &cnn_transpose16_lo[1], &cnn_transpose16_hi[1]);
    cnn_shuffle_round(r, CNN_CB, 4, &cnn_transpose16_lo[2], &cnn_transpose16_hi[2]);
    cnn_shuffle_round(r, CNN_CB, 8, &cnn_transpose16_lo[3], &cnn_transpose16_hi[3]);
    for (int i = 0; i < CNN_CB; ++i)
        cnn_bstore(dst + i * dst_stride, r[i]);
#else
    for (int i = 0; i < CNN_CB; ++i)
        for (int j = 0; j < CNN_CB; ++j)
            dst[j * dst_stride + i] = src[i * src_stride + j];
#endif
}

/* The callers' loops are written in each layer's function (templates/ops/), so that the
 * OpenMP region outlined from them, and the always-inlined bodies below, see the layer's
 * shapes as constants: a region here would be compiled once for every layer. */

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

/* rows (<= PW_MR or PWW_MR) pixels x nb (<= 4) output blocks of a pointwise convolution:
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

/* Output blocks [ob0, ob1) of pixels [p, p + rows), rows mr or 1: nb blocks a tile, the
 * blocks of a last partial group one at a time. xstride, ystride: floats from one block of
 * x, and of y and res, to the next (plane * 16 for whole planes); y's block ob0 at y. */
static inline __attribute__((always_inline)) void
cnn_pointwise_pixels(int rows, int nb, int k_n, int ob0, int ob1, size_t xstride,
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
    for (; ob < ob1; ++ob)
        cnn_pointwise_tile(rows, 1, k_n, xstride, ystride, xp, w + ob * wstride,
                           bias ? bias + ob * CNN_CB : NULL,
                           res ? res + (ob - ob0) * ystride + yp : NULL,
                           y + (ob - ob0) * ystride + yp, act, sum);
}

/* A 1x1 convolution, stride 1, blocks in and out: k_n input channels, weights
 * w[out block][k][16] (k < k_n rounded up to whole blocks), in tiles of mr pixels x nb output blocks, (PW_MR,
 * PW_NB) or (PWW_MR, PWW_NB). The caller runs the pixel steps [0, cnn_pointwise_steps(plane,
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

static inline __attribute__((always_inline)) void
cnn_pointwise_step(int mr, int nb, int k_n, int ob0, int ob1, int plane,
                   const float *restrict x, const float *restrict w,
                   const float *restrict bias, const float *restrict res, float *restrict y,
                   int act, int t)
{
    const size_t bstride = (size_t)plane * CNN_CB;
    const float *restrict r = res ? res + ob0 * bstride : NULL;
    float *restrict yb = y + ob0 * bstride;
    if (plane < mr) {
        cnn_pointwise_pixels(1, nb, k_n, ob0, ob1, bstride, bstride, x, w, bias, r, yb, act, t, 0);
        return;
    }
    cnn_pointwise_pixels(mr, nb, k_n, ob0, ob1, bstride, bstride, x, w, bias, r, yb, act, t * mr, 0);
    if (t == plane / mr - 1 && plane % mr)
        cnn_pointwise_pixels(mr, nb, k_n, ob0, ob1, bstride, bstride, x, w, bias, r, yb, act,
                             plane - mr, 0);
}

/* Output blocks [ob0, ob1) of a run of n pixels (an image row) into y, block ob0 at y and
 * the next ystride floats on, or with sum set, added into one vector a block there; x: the
 * run's first pixel in input block 0, the next block xstride floats on. Tiles of mr pixels,
 * a remainder as a narrower tile (each pixel computed once, as the sums need); runs
 * shorter than a tile pixel by pixel. */
static inline __attribute__((always_inline)) void
cnn_pointwise_run(int mr, int nb, int k_n, int ob0, int ob1, int n, size_t xstride,
                  size_t ystride, const float *restrict x, const float *restrict w,
                  const float *restrict bias, float *restrict y, int act, int sum)
{
    if (n < mr) {
        for (int p = 0; p < n; ++p)
            cnn_pointwise_pixels(1, nb, k_n, ob0, ob1, xstride, ystride, x, w, bias, NULL, y,
                                 act, p, sum);
        return;
    }
    for (int p = 0; p + mr <= n; p += mr)
        cnn_pointwise_pixels(mr, nb, k_n, ob0, ob1, xstride, ystride, x, w, bias, NULL, y, act,
                             p, sum);
    if (n % mr)
        cnn_pointwise_pixels(n % mr, nb, k_n, ob0, ob1, xstride, ystride, x, w, bias, NULL, y,
                             act, n - n % mr, sum);
}

/* A convolution from planes into blocks (the layer before a blocked run, e.g. a network's
 * stem): the input copied into zero-padded phase planes as for shifted_gemm
 * (cnn_pad_phases), input tap k of output pixel (oh, ow) is then xq[off[k] + oh * wq + ow];
 * or, for a layer without padding, read in place: xq[off[k] + oh * wq + ow * px], wq then
 * stride_h input rows and px stride_w. rows (<= PW_MR or PWW_MR) consecutive pixels of one
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

/* Pixels [ow, ow + rows) of output row oh, every output block, nb blocks a tile (the blocks
 * of a last partial group one at a time). */
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
    for (; ob < out_blocks; ++ob)
        cnn_shifted_tile(rows, 1, kdim, px, xp, off, w + ob * wstride,
                         bias ? bias + ob * CNN_CB : NULL, yp + ob * bstride, bstride, act);
}

/* Steps [0, cnn_shifted_steps(out_h, out_w, mr)): mr pixels of a row each (one pixel on
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
cnn_shifted_step(int mr, int nb, int kdim, int out_blocks, int out_h, int out_w, int wq, int px,
                 const float *restrict xq, const int *restrict off, const float *restrict w,
                 const float *restrict bias, float *restrict y, int act, int t)
{
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

/* A convolution with blocks in and out, any kernel size, stride and dilation, as ONNX
 * Runtime's NCHWc convolutions (MLAS) and oneDNN's nChw16c direct kernels compute it: the
 * input copied into zero-padded blocks first (cnn_pad_blocks_row) when it has padding, then,
 * for rows (<= PW_MR) consecutive pixels of an output row and nb (<= PW_NB) output blocks,
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

/* Input blocks a pass: their weights for nb output blocks in 16 KiB, read from L1 by
 * every tile of an output row (ONNX Runtime's NCHWc driver likewise adds one input block at
 * a time into the output). */
static inline int cnn_direct_chunk(int taps, int nb)
{
    const int n = 4096 / (taps * CNN_CB * CNN_CB * nb);
    return n > 1 ? n : 1;
}

/* Output rows [oh0, oh0 + oh_n) of the output blocks of group g (nb blocks from g * nb),
 * each pass over a chunk of input blocks going along each row in tiles of mr pixels (the
 * whole row on rows of fewer); (mr, nb) is (PW_MR, PW_NB) or the wide (PWW_MR, PWW_NB). A
 * chunk's weights are read from L1 by every tile of the rows, the partial sums stored in y
 * between chunks. A last group of fewer blocks goes one block at a time. */
static inline __attribute__((always_inline)) void
cnn_direct_step(int mr, int nbw, int ib_n, int out_blocks, int kh_n, int kw_n, int stride_h,
                int stride_w, int dil_h, int dil_w, int hp, int wp, int out_h, int out_w,
                const float *restrict x, const float *restrict w, const float *restrict bias,
                const float *restrict res, float *restrict y, int act, int oh0, int oh_n, int g)
{
    /* g < groups; said again so that, inlined, a constant out_blocks bounds ob0 and nb */
    g = out_blocks > nbw ? g : 0;
    const int ob0 = g * nbw, nb = cnn_min(nbw, out_blocks - ob0);
    const int chunk = cnn_direct_chunk(kh_n * kw_n, nbw);
    const size_t in_bstride = (size_t)hp * wp * CNN_CB, out_bstride = (size_t)out_h * out_w * CNN_CB;
    const size_t per_in = (size_t)kh_n * kw_n * CNN_CB * CNN_CB, wstride = ib_n * per_in;
    const float *restrict wg = w + ob0 * wstride;
    const float *restrict bg = bias ? bias + ob0 * CNN_CB : NULL;
    /* whole tiles, then the rem pixels left as one tile of its own (out_w is a constant) */
    const int tile = out_w < mr ? out_w : mr, rem = out_w % tile;
    for (int ib = 0; ib < ib_n; ib += chunk) {
        const int n = cnn_min(chunk, ib_n - ib), first = ib == 0, last = ib + n == ib_n;
        const float *restrict wb = wg + ib * per_in;
        for (int oh = oh0; oh < oh0 + oh_n; ++oh) {
            const size_t o = (size_t)ob0 * out_bstride + (size_t)oh * out_w * CNN_CB;
            const float *restrict xb =
                x + (size_t)oh * stride_h * wp * CNN_CB + ib * in_bstride;
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
                else
                    for (int j = 0; j < nb; ++j) {
                        const size_t oj = j * out_bstride + oc;
                        if (rows == tile)
                            cnn_direct_tile(tile, 1, n, kh_n, kw_n, stride_w, dil_h, dil_w, wp,
                                            in_bstride, wstride, xt, wb + j * wstride,
                                            bg ? bg + j * CNN_CB : NULL, rg ? rg + oj : NULL,
                                            y + o + oj, out_bstride, act, first, last);
                        else
                            cnn_direct_tile(rem, 1, n, kh_n, kw_n, stride_w, dil_h, dil_w, wp,
                                            in_bstride, wstride, xt, wb + j * wstride,
                                            bg ? bg + j * CNN_CB : NULL, rg ? rg + oj : NULL,
                                            y + o + oj, out_bstride, act, first, last);
                    }
            }
        }
    }
}

/* Row r of block b of the zero-padded copy of a blocked input: hp x wp pixels, input pixel
 * (ih, iw) at (ih + pad_top, iw + pad_left); rows and columns past the input zero. */
static inline __attribute__((always_inline)) void
cnn_pad_blocks_row(const float *restrict x, int in_h, int in_w, int pad_top, int pad_left,
                   int hp, int wp, float *restrict xp, int b, int r)
{
    float *restrict row = xp + ((size_t)b * hp + r) * wp * CNN_CB;
    const int ih = r - pad_top;
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
 * ring holds, input row h then at row h % ring. Output columns [col_lo, col_hi) have every
 * column tap inside the input: they go CNN_DW_TILE at a time, on every row (the row taps
 * clipped on the first and last rows), a remainder as the tile ending at col_hi (the same
 * values stored again). The columns outside, and rows with fewer columns than a tile, go one
 * by one with their taps clipped. */
static inline __attribute__((always_inline)) void
cnn_depthwise_block(int in_h, int in_w, int out_h, int out_w, int kh_n, int kw_n, int stride_h,
                    int stride_w, int pad_top, int pad_left, int dil_h, int dil_w, int col_lo,
                    int col_hi, const float *restrict xb, int ring, const float *restrict w,
                    const float *restrict bias, const float *restrict res, float *restrict y,
                    int act, int b, int oh0, int oh1)
{
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

/* Pipelined 1x1 -> depthwise pairs (passes/pipeline_pointwise.py): the depthwise layer
 * computes its input, the 1x1 layer's output, into rings of rows just before the rows that
 * read them. The input rows [0, n) that output rows [0, oh] of a depthwise layer read: */
static inline int cnn_depthwise_rows_read(int oh, int in_h, int kh_n, int stride_h, int pad_top,
                                          int dil_h)
{
    const int end = oh * stride_h - pad_top + (kh_n - 1) * dil_h + 1;
    return end < 0 ? 0 : cnn_min(in_h, end);
}

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

/* A row of n pixels of block b (row: n x 16) into the planes of y, whose rows start at
 * y + c * plane for channel c: the block's real channels only. */
static inline __attribute__((always_inline)) void
cnn_block_row_to_planes(const float *restrict row, int n, int channels, int plane,
                        float *restrict y, int b)
{
    cnn_pixels_to_planes(row, n, cnn_min(CNN_CB, channels - b * CNN_CB),
                         y + (size_t)b * CNN_CB * plane, (size_t)plane);
}

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


/* Part q of `parts` of a global average pool that computes its input, a 1x1 convolution's
 * output (passes/pipeline_pointwise.py): pixels [q * plane / parts, (q + 1) * plane / parts)
 * of x (the 1x1 layer's input, k_n channels) through the 1x1 layer, each tile's outputs added
 * into sums[block][16] as it finishes, in runs of `pixels`. */
static inline __attribute__((always_inline)) void
cnn_pointwise_pool_part(int mr, int nb, int k_n, int blocks, int plane, int parts, int pixels,
                        int q, const float *restrict x, const float *restrict w,
                        const float *restrict bias, int act, float *restrict sums)
{
    const int p0 = (int)((long long)q * plane / parts);
    const int p1 = (int)((long long)(q + 1) * plane / parts);
    const size_t xstride = (size_t)plane * CNN_CB;
    for (int b = 0; b < blocks; ++b)
        cnn_bstore(sums + b * CNN_CB, cnn_bzero());
    for (int p = p0; p < p1; p += pixels) {
        if (p1 - p >= pixels) /* a whole run: its tiles known when inlined */
            cnn_pointwise_run(mr, nb, k_n, 0, blocks, pixels, xstride, CNN_CB,
                              x + (size_t)p * CNN_CB, w, bias, sums, act, 1);
        else
            cnn_pointwise_run(mr, nb, k_n, 0, blocks, p1 - p, xstride, CNN_CB,
                              x + (size_t)p * CNN_CB, w, bias, sums, act, 1);
    }
}

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

#endif /* CNN_NCHWC_H */
