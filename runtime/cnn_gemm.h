/* cnn_gemm.h: the packed, register-blocked matrix multiply that convolutions and linear
 * layers are lowered onto:  C[M x N] (+)= A[M x K] * B[K x N].
 *
 * The structure is the one BLIS describes (Van Zee & van de Geijn, 2015): a micro-kernel keeps
 * an MR x NR block of C in vector registers and streams a packed MR-row panel of A and a
 * K x NR panel of B through them, one rank-1 update per k. Here A (the weights) is packed at
 * compile time by cnncompile, panel by panel: a[panel][k][MR], zero rows padding M up to a
 * multiple of MR. B is either packed too (im2col writes b[panel][k][NR]) or read in place
 * with a row stride (a 1x1 convolution reads its input directly).
 *
 * Written with GCC/Clang vector extensions, so the same code becomes AVX-512, AVX2 or NEON;
 * CNN_VBYTES picks the vector width from the target. Without vector extensions, plain C.
 */
#ifndef CNN_GEMM_H
#define CNN_GEMM_H

#include <string.h>

#include "cnn_runtime.h"
#if defined(__AVX__)
#include <immintrin.h>
#endif

#define CNN_MR 8 /* rows of C per micro-kernel: the weight packing in cnncompile uses it */

/* The epilogue a micro-kernel can apply to its block of C while the block is still in
 * registers, on the last pass over K: a bias per row of C, then one of these activations
 * (ops/conv.py: GEMM_ACTIVATIONS). Anything else runs as a pass over the output afterwards. */
#define CNN_ACT_NONE 0
#define CNN_ACT_RELU 1
#define CNN_ACT_RELU6 2

/* Rows of B ahead of the one being multiplied that the micro-kernel asks the cache for
 * (with GCC's vectors; the plain C kernel does not prefetch).
 * Layers on small images stream their weights (B) from memory once, each row used by one or
 * two row panels, faster than the hardware prefetcher fetches them: measured, one thread,
 * 512 channels 3x3 on 4x4 1.14 -> 0.92 ms (im2row_gemm), on 7x7 2.24 -> 1.73 ms
 * (Winograd F(2x2, 3x3)), 256 on 14x14 1.19 -> 1.05 ms (F(4x4, 3x3)); 64 on 56x56, whose
 * weights stay in cache, unchanged. */
#ifndef CNN_GEMM_PREFETCH
#define CNN_GEMM_PREFETCH 32
#endif

#if defined(__GNUC__) && !defined(CNN_NO_VECTOR_EXTENSIONS)
#if defined(__AVX512F__)
#define CNN_VBYTES 64
#define CNN_NRV 2 /* 8 x 2 zmm accumulators of the 32 registers */
#elif defined(__AVX__)
#define CNN_VBYTES 32
#define CNN_NRV 1 /* 16 ymm registers: 8 accumulators, the B vector, the broadcast A */
#else
#define CNN_VBYTES 16
#define CNN_NRV 1
#endif
typedef float cnn_vf __attribute__((vector_size(CNN_VBYTES), aligned(4), __may_alias__));
#define CNN_VLEN (CNN_VBYTES / 4)
#else
#define CNN_VLEN 8
#define CNN_NRV 1
#endif

#define CNN_NR (CNN_VLEN * CNN_NRV) /* columns of C per micro-kernel */

#if defined(CNN_VBYTES)
static inline cnn_vf cnn_vload(const float *p)
{
    return *(const cnn_vf *)p;
}

static inline void cnn_vstore(float *p, cnn_vf v)
{
    *(cnn_vf *)p = v;
}

typedef int cnn_vi __attribute__((vector_size(CNN_VBYTES)));

/* mask ? a : b, lane by lane (mask lanes all ones or all zeros, as comparisons give them) */
static inline cnn_vf cnn_vselect(cnn_vi mask, cnn_vf a, cnn_vf b)
{
    return (cnn_vf)((mask & (cnn_vi)a) | (~mask & (cnn_vi)b));
}

/* cnn_relu / cnn_relu6 on a vector, with the same comparisons, so the same bits: NaN and
 * -0.0 pass through. */
static inline cnn_vf cnn_vact(cnn_vf v, int act)
{
    const cnn_vf zero = {0}, six = zero + 6.0f;
#if CNN_VBYTES == 64 && defined(__AVX512F__) && !defined(CNN_NO_MAX_INTRINSICS)
    /* one instruction each, the same bits: VMINPS(a, b) is a < b ? a : b and VMAXPS(a, b)
     * is a > b ? a : b, each returning b when either is NaN, which is exactly v > 6 ? 6 : v
     * and v < 0 ? 0 : v (-0.0 kept), where the selects take a comparison and a masked move */
    if (act == CNN_ACT_RELU6)
        v = (cnn_vf)_mm512_min_ps((__m512)six, (__m512)v);
    if (act != CNN_ACT_NONE)
        v = (cnn_vf)_mm512_max_ps((__m512)zero, (__m512)v);
#elif CNN_VBYTES == 32 && defined(__AVX__) && !defined(CNN_NO_MAX_INTRINSICS)
    if (act == CNN_ACT_RELU6)
        v = (cnn_vf)_mm256_min_ps((__m256)six, (__m256)v);
    if (act != CNN_ACT_NONE)
        v = (cnn_vf)_mm256_max_ps((__m256)zero, (__m256)v);
#else
    if (act == CNN_ACT_RELU6)
        v = cnn_vselect(v > six, six, v);
    if (act != CNN_ACT_NONE)
        v = cnn_vselect(v < zero, zero, v);
#endif
    return v;
}

/* C[MR x NR] (+)= A panel (kc x MR) * B (kc x NR). Row k of B starts at b + k * ldb, or at
 * b + off[k] when an offset table is given (B read in place from rows scattered through a
 * padded input). Callers pass off as NULL or a table, so each inlined use is specialised.
 * bias (MR values, or NULL) and act are the epilogue, applied before the block is stored. */
static inline __attribute__((always_inline)) void
cnn_gemm_micro_inline(int kc, const float *restrict a, const float *restrict b, int ldb,
                      const int *restrict off, float *restrict c, int ldc, int accumulate,
                      const float *restrict bias, int act, int prefetch)
{
    cnn_vf acc[CNN_MR][CNN_NRV];
    for (int i = 0; i < CNN_MR; ++i)
        for (int j = 0; j < CNN_NRV; ++j)
            acc[i][j] = accumulate ? cnn_vload(c + i * ldc + j * CNN_VLEN) : (cnn_vf){0};
    for (int k = 0; k < kc; ++k) {
        const float *restrict row = off ? b + off[k] : b + (size_t)k * ldb;
#if defined(__GNUC__)
        if (!off && prefetch)
            for (int j = 0; j < CNN_NR; j += 16)
                __builtin_prefetch(row + (size_t)prefetch * ldb + j);
#endif
        cnn_vf bv[CNN_NRV];
        for (int j = 0; j < CNN_NRV; ++j)
            bv[j] = cnn_vload(row + j * CNN_VLEN);
        for (int i = 0; i < CNN_MR; ++i) {
            const float ai = a[k * CNN_MR + i];
            for (int j = 0; j < CNN_NRV; ++j)
                acc[i][j] += ai * bv[j];
        }
    }
    for (int i = 0; i < CNN_MR; ++i)
        for (int j = 0; j < CNN_NRV; ++j) {
            cnn_vf v = acc[i][j];
            if (bias)
                v += bias[i];
            cnn_vstore(c + i * ldc + j * CNN_VLEN, cnn_vact(v, act));
        }
}
#else
static inline float cnn_act(float v, int act)
{
    return act == CNN_ACT_RELU6 ? cnn_relu6(v) : act == CNN_ACT_RELU ? cnn_relu(v) : v;
}

static inline __attribute__((always_inline)) void
cnn_gemm_micro_inline(int kc, const float *restrict a, const float *restrict b, int ldb,
                      const int *restrict off, float *restrict c, int ldc, int accumulate,
                      const float *restrict bias, int act, int prefetch)
{
    float acc[CNN_MR][CNN_NR];
    (void)prefetch;
    for (int i = 0; i < CNN_MR; ++i)
        for (int j = 0; j < CNN_NR; ++j)
            acc[i][j] = accumulate ? c[i * ldc + j] : 0.0f;
    for (int k = 0; k < kc; ++k) {
        const float *restrict row = off ? b + off[k] : b + (size_t)k * ldb;
        for (int i = 0; i < CNN_MR; ++i)
            for (int j = 0; j < CNN_NR; ++j)
                acc[i][j] += a[k * CNN_MR + i] * row[j];
    }
    for (int i = 0; i < CNN_MR; ++i)
        for (int j = 0; j < CNN_NR; ++j)
            c[i * ldc + j] = cnn_act(bias ? acc[i][j] + bias[i] : acc[i][j], act);
}
#endif

/* The micro-kernel as the compiler sees fit to inline it or not (most callers: one shared
 * copy). cnn_gemm_micro_inline is for callers whose K is a small constant worth unrolling. */
static inline void cnn_gemm_micro(int kc, const float *restrict a, const float *restrict b,
                                  int ldb, const int *restrict off, float *restrict c, int ldc,
                                  int accumulate, const float *restrict bias, int act)
{
    cnn_gemm_micro_inline(kc, a, b, ldb, off, c, ldc, accumulate, bias, act, CNN_GEMM_PREFETCH);
}

/* The same for a block at the edge of C: only m <= MR rows and n <= NR columns are real.
 * B's columns past n must be readable (packed panels are zero-padded); for an unpacked B the
 * caller copies the last columns into a padded panel first (cnn_gemm_edge_panel). */
static inline void cnn_gemm_micro_edge(int kc, const float *restrict a, const float *restrict b,
                                       int ldb, float *restrict c, int ldc, int accumulate,
                                       const float *restrict bias, int act, int m, int n)
{
    float tile[CNN_MR * CNN_NR], rows_bias[CNN_MR] = {0};
    if (accumulate)
        for (int i = 0; i < m; ++i)
            memcpy(tile + i * CNN_NR, c + i * ldc, sizeof(float) * (size_t)n);
    if (bias) /* only m rows of it exist */
        memcpy(rows_bias, bias, sizeof(float) * (size_t)m);
    cnn_gemm_micro(kc, a, b, ldb, NULL, tile, CNN_NR, accumulate, bias ? rows_bias : NULL, act);
    for (int i = 0; i < m; ++i)
        memcpy(c + i * ldc, tile + i * CNN_NR, sizeof(float) * (size_t)n);
}

/* Copy n <= NR columns of a row-major K x ldb matrix into a zero-padded K x NR panel. */
static inline void cnn_gemm_edge_panel(int kdim, const float *restrict b, int ldb, int n,
                                       float *restrict panel)
{
#if defined(CNN_VBYTES)
    if (n == CNN_NR) { /* whole rows as vectors (a plain loop here becomes a memcpy call per row) */
        for (int k = 0; k < kdim; ++k)
            for (int v = 0; v < CNN_NRV; ++v)
                cnn_vstore(panel + k * CNN_NR + v * CNN_VLEN,
                           cnn_vload(b + (size_t)k * ldb + v * CNN_VLEN));
        return;
    }
#endif
    for (int k = 0; k < kdim; ++k) {
        for (int j = 0; j < n; ++j)
            panel[k * CNN_NR + j] = b[(size_t)k * ldb + j];
        for (int j = n; j < CNN_NR; ++j)
            panel[k * CNN_NR + j] = 0.0f;
    }
}

#define CNN_GEMM_KC 256 /* rows of B per pass: a K x NR panel of B stays in L1 */
#define CNN_GEMM_FEW_BLOCKS 4 /* column blocks up to which cnn_gemm_rows loads A only once */

static inline int cnn_min(int a, int b)
{
    return a < b ? a : b;
}

static inline int cnn_max(int a, int b)
{
    return a > b ? a : b;
}

/* Columns [j, j + nn) of C = act(A * B + bias), nn <= NR: see cnn_gemm. */
static inline void cnn_gemm_block(int m, int kdim, const float *restrict a,
                                  const float *restrict b, int ldb, float *restrict c, int ldc,
                                  const float *restrict bias, int act, int j, int nn)
{
    float panel[CNN_GEMM_KC * CNN_NR];
    for (int k0 = 0; k0 < kdim; k0 += CNN_GEMM_KC) {
        const int kc = cnn_min(CNN_GEMM_KC, kdim - k0);
        const float *bp = b + (size_t)j * kdim + (size_t)k0 * CNN_NR;
        if (ldb) {
            cnn_gemm_edge_panel(kc, b + (size_t)k0 * ldb + j, ldb, nn, panel);
            bp = panel;
        }
        const int last = k0 + kc >= kdim;
        for (int i = 0; i < m; i += CNN_MR) {
            const float *ap = a + (size_t)i * kdim + (size_t)k0 * CNN_MR;
            const float *bi = last && bias ? bias + i : NULL;
            const int mm = cnn_min(CNN_MR, m - i), ai = last ? act : CNN_ACT_NONE;
            if (mm == CNN_MR && nn == CNN_NR)
                cnn_gemm_micro(kc, ap, bp, CNN_NR, NULL, c + (size_t)i * ldc + j, ldc, k0 > 0,
                               bi, ai);
            else
                cnn_gemm_micro_edge(kc, ap, bp, CNN_NR, c + (size_t)i * ldc + j, ldc,
                                    k0 > 0, bi, ai, mm, nn);
        }
    }
}

/* C[m x n] = act(A * B + bias), A packed in MR-row panels (m rounded up), bias one value per
 * row of C or NULL, act a CNN_ACT_ code. B is packed in NR-column panels (ldb == 0), or
 * row-major with rows ldb apart, in which case each KC x NR block is copied into a contiguous
 * panel first (rows of a 1x1 convolution's input lie a whole image plane apart) and then read
 * by every row panel of A.
 * With B in place and more than NR columns, a last partial block is done as the full block
 * that ends at column n. It overlaps the block before it and writes the same values there
 * (each column's sums do not depend on its neighbours), in the same loop iteration, hence
 * the same thread, after that block's last pass over K: no edge tile, no copies. */
static inline void cnn_gemm(int m, int kdim, int n, const float *restrict a,
                            const float *restrict b, int ldb, float *restrict c, int ldc,
                            const float *restrict bias, int act, int parallel)
{
    const int overlap = ldb && n > CNN_NR && n % CNN_NR;
    const int blocks = overlap ? n / CNN_NR : (n + CNN_NR - 1) / CNN_NR;
    CNN_FOR_THREADS(parallel, jb, 0, blocks, 1,
        cnn_gemm_block(m, kdim, a, b, ldb, c, ldc, bias, act, jb * CNN_NR,
                       cnn_min(CNN_NR, n - jb * CNN_NR));
        if (overlap && jb == blocks - 1)
            cnn_gemm_block(m, kdim, a, b, ldb, c, ldc, bias, act, n - CNN_NR, CNN_NR));
}

/* C[m x n] = A * B with row k of B at b + off[k] (cnn_gemm_micro with an offset table); C has ldc >= n
 * rounded up to NR columns, so no column edge case; rows past m are written to tile. */
static inline void cnn_gemm_rows_block(int m, int kdim, const float *restrict a,
                                       const float *restrict b, const int *restrict off,
                                       float *restrict c, int ldc, int i, int k0)
{
    float tile[CNN_MR * CNN_NR];
    const int kc = cnn_min(CNN_GEMM_KC, kdim - k0);
    const float *ap = a + (size_t)i * kdim + (size_t)k0 * CNN_MR;
    const int mm = cnn_min(CNN_MR, m - i);
    if (mm == CNN_MR) {
        cnn_gemm_micro(kc, ap, b, 0, off + k0, c + (size_t)i * ldc, ldc, k0 > 0, NULL,
                       CNN_ACT_NONE);
        return;
    }
    if (k0 > 0)
        for (int r = 0; r < mm; ++r)
            memcpy(tile + r * CNN_NR, c + (size_t)(i + r) * ldc, sizeof(float) * CNN_NR);
    cnn_gemm_micro(kc, ap, b, 0, off + k0, tile, CNN_NR, k0 > 0, NULL, CNN_ACT_NONE);
    for (int r = 0; r < mm; ++r)
        memcpy(c + (size_t)(i + r) * ldc, tile + r * CNN_NR, sizeof(float) * CNN_NR);
}

/* C[m x n] = A * B with row k of B at b + off[k] (cnn_gemm_micro with an offset table); C has ldc >= n
 * rounded up to NR columns, so there is no column edge. With few column blocks (small
 * images, where the weights are the bulk of the data) each MR x KC block of A is loaded once
 * and used for every column block, and threads share the row panels; otherwise each K x NR
 * panel of B is read from L1 by every row panel of A in turn, and threads share the column
 * blocks. */
static inline void cnn_gemm_rows(int m, int kdim, int n, const float *restrict a,
                                 const float *restrict b, const int *restrict off,
                                 float *restrict c, int ldc, int parallel)
{
    const int blocks = (n + CNN_NR - 1) / CNN_NR;
    int few = blocks <= CNN_GEMM_FEW_BLOCKS;
#if defined(_OPENMP)
    few = few || (parallel && blocks < 2 * omp_get_max_threads());
#endif
    if (few) {
        CNN_FOR_THREADS(parallel, i, 0, m, CNN_MR,
            for (int k0 = 0; k0 < kdim; k0 += CNN_GEMM_KC)
                for (int j = 0; j < blocks; ++j)
                    cnn_gemm_rows_block(m, kdim, a, b + j * CNN_NR, off, c + j * CNN_NR, ldc,
                                        i, k0));
        return;
    }
    CNN_FOR_THREADS(parallel, j, 0, blocks, 1,
        for (int k0 = 0; k0 < kdim; k0 += CNN_GEMM_KC)
            for (int i = 0; i < m; i += CNN_MR)
                cnn_gemm_rows_block(m, kdim, a, b + j * CNN_NR, off, c + j * CNN_NR, ldc, i, k0));
}

#define CNN_BPANEL 32 /* columns of B packed at compile time: ops/conv.py's NR_MAX */

/* One CNN_NR-column block, from column j, of C[rows_pad x *] = A * B: A in MR-row panels
 * (rows_pad a multiple of MR), B packed at compile time in CNN_BPANEL-column panels
 * b[panel][k][CNN_BPANEL] (a CNN_NR block lies inside one of them, CNN_NR dividing
 * CNN_BPANEL). A KC x NR block of B stays in L1 for every row panel. */
static inline void cnn_gemm_bpacked_block(int rows_pad, int kdim, const float *restrict a,
                                          const float *restrict b, int j, float *restrict c,
                                          int ldc)
{
    const float *restrict bj = b + (size_t)(j / CNN_BPANEL) * kdim * CNN_BPANEL + j % CNN_BPANEL;
    for (int k0 = 0; k0 < kdim; k0 += CNN_GEMM_KC) {
        const int kc = cnn_min(CNN_GEMM_KC, kdim - k0);
        for (int i = 0; i < rows_pad; i += CNN_MR)
            cnn_gemm_micro(kc, a + (size_t)i * kdim + (size_t)k0 * CNN_MR,
                           bj + (size_t)k0 * CNN_BPANEL, CNN_BPANEL, NULL,
                           c + (size_t)i * ldc + j, ldc, k0 > 0, NULL, CNN_ACT_NONE);
    }
}

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
static inline void cnn_im2row_panels(const float *restrict x, size_t xs, int samples,
                                     int channels, int in_h, int in_w, int kh_n, int kw_n,
                                     int stride_h, int stride_w, int pad_top, int pad_left,
                                     int dil_h, int dil_w, int out_w, int n,
                                     float *restrict a, int parallel)
{
    const int rows = channels * kh_n * kw_n, total = samples * n;
    const int panels = (total + CNN_MR - 1) / CNN_MR;
    CNN_FOR_THREADS(parallel, p, 0, panels, 1,
        cnn_im2row_panel(x, xs, channels, in_h, in_w, kh_n, kw_n, stride_h, stride_w, pad_top,
                         pad_left, dil_h, dil_w, out_w, n, rows, total, a, p));
}

/* y (C x OH x OW) = x (C x H x W) at rows oh * sh and columns ow * sw: the input of a 1x1
 * strided, unpadded convolution as the dense matrix a 1x1 GEMM reads. */
static inline void cnn_subsample(const float *restrict x, int channels, int in_h, int in_w,
                                 int stride_h, int stride_w, int out_h, int out_w,
                                 float *restrict y)
{
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
 * of them (Hp/sh and Wp/sw rounded up). A kernel tap then reads one plane shifted by a
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
static inline void cnn_pad_phase_plane(const float *restrict x, int channels, int in_h, int in_w,
                                       int pad_top, int pad_left, int stride_h, int stride_w,
                                       int nph, int npw, int hq, int wq, int slack,
                                       float *restrict xq, int q)
{
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
        memset(plane + (size_t)hq * wq, 0, sizeof(float) * (size_t)slack);
}

static inline void cnn_pad_phases(const float *restrict x, int channels, int in_h, int in_w,
                                  int pad_top, int pad_left, int stride_h, int stride_w,
                                  int nph, int npw, int hq, int wq, int slack,
                                  float *restrict xq)
{
    for (int q = 0; q < cnn_phase_planes(channels, nph, npw); ++q)
        cnn_pad_phase_plane(x, channels, in_h, in_w, pad_top, pad_left, stride_h, stride_w, nph,
                            npw, hq, wq, slack, xq, q);
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

/* im2col into NR-column panels: columns [p0, p0 + np) of the (C * KH * KW) x (OH * OW)
 * matrix of a convolution's input patches, written as b[panel][row][NR], the last panel
 * zero-padded. Row r = (c * KH + kh) * KW + kw; column p = oh * OW + ow. coords: room for
 * 2 * (np rounded up to NR) ints, each column's window origin, computed once per chunk so
 * that the copy loop has no division and no branch. */
static inline void cnn_im2col_panels(const float *restrict x, int channels, int in_h, int in_w,
                                     int kh_n, int kw_n, int stride_h, int stride_w,
                                     int pad_top, int pad_left, int dil_h, int dil_w,
                                     int out_w, int p0, int np, float *restrict b,
                                     int *restrict coords, int parallel)
{
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
    CNN_FOR_THREADS(parallel, r, 0, rows, 1,
        cnn_im2col_row(x, in_h, in_w, kh_n, kw_n, dil_h, dil_w, rows, panels, h0, w0, b, r));
}

#endif /* CNN_GEMM_H */
