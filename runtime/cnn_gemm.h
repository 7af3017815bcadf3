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
 * Used by conv_gemm, conv_im2row, conv_shifted, conv_transpose2d_gemm and _interleave, and
 * Winograd's products; the vectors are cnn_vec.h's, the copies that pack B cnn_im2col.h's.
 */
#ifndef CNN_GEMM_H
#define CNN_GEMM_H

#include <string.h>

#include "cnn_vec.h"

#define CNN_MR 8 /* rows of C per micro-kernel: the weight packing in cnncompile uses it */
#define CNN_NR (CNN_VLEN * CNN_NRV) /* columns of C per micro-kernel */

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

#if defined(CNN_VBYTES)
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
        /* the rows ahead may lie past the end of B: a prefetch there never faults, so GCC's
         * bounds warning, given B's size as a constant, does not apply */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
        if (!off && prefetch)
            for (int j = 0; j < CNN_NR; j += 16)
                __builtin_prefetch(row + (size_t)prefetch * ldb + j);
#pragma GCC diagnostic pop
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
    if (accumulate) {
        /* the micro-kernel reads the whole tile, past m rows and n columns too */
        memset(tile, 0, sizeof tile);
        for (int i = 0; i < m; ++i)
            memcpy(tile + i * CNN_NR, c + i * ldc, sizeof(float) * (size_t)n);
    }
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

/* Columns [j, j + nn) of rows [i0, m) of C = act(A * B + bias), nn <= NR, i0 a multiple
 * of MR: see cnn_gemm. */
static inline void cnn_gemm_block(int i0, int m, int kdim, const float *restrict a,
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
        for (int i = i0; i < m; i += CNN_MR) {
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
typedef struct {
    int m, kdim, n, ldb, ldc, act, blocks, overlap, parts;
    const float *a, *b, *bias;
    float *c;
} cnn_gemm_args;

/* column blocks [jb0, jb1) of rows [i0, i1) */
static inline void cnn_gemm_part(const cnn_gemm_args *g, int jb0, int jb1, int i0, int i1)
{
    for (int jb = jb0; jb < jb1; ++jb) {
        cnn_gemm_block(i0, i1, g->kdim, g->a, g->b, g->ldb, g->c, g->ldc, g->bias, g->act,
                       jb * CNN_NR, cnn_min(CNN_NR, g->n - jb * CNN_NR));
        if (g->overlap && jb == g->blocks - 1)
            cnn_gemm_block(i0, i1, g->kdim, g->a, g->b, g->ldb, g->c, g->ldc, g->bias, g->act,
                           g->n - CNN_NR, CNN_NR);
    }
}

/* column blocks [jb0, jb1), every row */
static inline void cnn_gemm_task(void *ctx, int jb0, int jb1, int slot)
{
    (void)slot;
    cnn_gemm_part(ctx, jb0, jb1, 0, ((const cnn_gemm_args *)ctx)->m);
}

/* parts [s0, s1) of g->parts, each an even share of the row panels through every column
 * block: few and large, since each copies B's panels (cnn_gemm_block) for its rows */
static inline void cnn_gemm_row_task(void *ctx, int s0, int s1, int slot)
{
    const cnn_gemm_args *g = ctx;
    const int panels = (g->m + CNN_MR - 1) / CNN_MR;
    (void)slot;
    for (int s = s0; s < s1; ++s)
        cnn_gemm_part(g, 0, g->blocks, panels * s / g->parts * CNN_MR,
                      cnn_min(panels * (s + 1) / g->parts * CNN_MR, g->m));
}

static inline void cnn_gemm(int m, int kdim, int n, const float *restrict a,
                            const float *restrict b, int ldb, float *restrict c, int ldc,
                            const float *restrict bias, int act, int parallel)
{
    const int overlap = ldb && n > CNN_NR && n % CNN_NR;
    const int blocks = overlap ? n / CNN_NR : (n + CNN_NR - 1) / CNN_NR;
    cnn_gemm_args g = {.m = m, .kdim = kdim, .n = n, .ldb = ldb, .ldc = ldc, .act = act,
                       .blocks = blocks, .overlap = overlap, .a = a, .b = b, .bias = bias,
                       .c = c};
    /* fewer column blocks than two per thread (small images: the weights are the bulk of
     * the data): the threads share the rows instead, each reading its rows' weights only */
    const int team = parallel ? cnn_team_size() : 1;
    g.parts = cnn_min(team, (m + CNN_MR - 1) / CNN_MR);
    if (team > 1 && blocks < 2 * team)
        cnn_parallel(parallel, g.parts, cnn_gemm_row_task, &g);
    else
        cnn_parallel(parallel, blocks, cnn_gemm_task, &g);
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
typedef struct {
    int m, kdim, blocks, ldc;
    const float *a, *b;
    const int *off;
    float *c;
} cnn_gemm_rows_args;

/* row panels [p0, p1), each through every column block */
static inline void cnn_gemm_rows_by_rows(void *ctx, int p0, int p1, int slot)
{
    const cnn_gemm_rows_args *g = ctx;
    (void)slot;
    for (int i = p0 * CNN_MR; i < p1 * CNN_MR; i += CNN_MR)
        for (int k0 = 0; k0 < g->kdim; k0 += CNN_GEMM_KC)
            for (int j = 0; j < g->blocks; ++j)
                cnn_gemm_rows_block(g->m, g->kdim, g->a, g->b + j * CNN_NR, g->off,
                                    g->c + j * CNN_NR, g->ldc, i, k0);
}

/* column blocks [j0, j1), each through every row panel */
static inline void cnn_gemm_rows_by_columns(void *ctx, int j0, int j1, int slot)
{
    const cnn_gemm_rows_args *g = ctx;
    (void)slot;
    for (int j = j0; j < j1; ++j)
        for (int k0 = 0; k0 < g->kdim; k0 += CNN_GEMM_KC)
            for (int i = 0; i < g->m; i += CNN_MR)
                cnn_gemm_rows_block(g->m, g->kdim, g->a, g->b + j * CNN_NR, g->off,
                                    g->c + j * CNN_NR, g->ldc, i, k0);
}

static inline void cnn_gemm_rows(int m, int kdim, int n, const float *restrict a,
                                 const float *restrict b, const int *restrict off,
                                 float *restrict c, int ldc, int parallel)
{
    const int blocks = (n + CNN_NR - 1) / CNN_NR;
    cnn_gemm_rows_args g = {.m = m, .kdim = kdim, .blocks = blocks, .ldc = ldc, .a = a,
                            .b = b, .off = off, .c = c};
    if (blocks <= CNN_GEMM_FEW_BLOCKS || (parallel && blocks < 2 * cnn_team_size()))
        cnn_parallel(parallel, (m + CNN_MR - 1) / CNN_MR, cnn_gemm_rows_by_rows, &g);
    else
        cnn_parallel(parallel, blocks, cnn_gemm_rows_by_columns, &g);
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

#endif /* CNN_GEMM_H */
