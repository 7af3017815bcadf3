/* cnn_winograd.h: 3x3, stride-1 convolutions by Winograd's minimal filtering F(4x4, 3x3)
 * (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016).
 *
 * A 4x4 block of output ("tile") is A^T [U . V] A, with V = B^T d B the transform of the
 * 6x6 input patch d under it and U = G g G^T that of the 3x3 kernel g: 36 multiplications per
 * tile and channel pair where the direct form needs 144. Summed over the input channels, the
 * elementwise products become 36 independent matrix products, one per position xi of the
 * transformed 6x6 tile:
 *
 *     M_xi [T x K] = V_xi [T x C] * U_xi [C x K]      (T tiles, C inputs, K outputs)
 *
 * run on the micro-kernel of cnn_gemm.h with the tiles as its rows. cnncompile computes U at
 * compile time and packs it in panels of CNN_BPANEL columns (output channels); the input
 * transform writes V directly as the micro-kernel's MR-row panels. Interpolation points
 * 0, 1, -1, 2, -2 and infinity, as in the paper. The input transform from channel blocks
 * is in cnn_nchw16c_winograd.h.
 */
#ifndef CNN_WINOGRAD_H
#define CNN_WINOGRAD_H

#include "cnn_gemm.h"

/* With GCC's shuffles on 16-float vectors, the patches of the tiles of a panel that sit side
 * by side in a tile row are read a patch row at a time as vectors and dealt out by shuffles;
 * otherwise (and with CNN_WINO_GATHER) float by float. */
#if defined(CNN_VBYTES) && CNN_VBYTES == 64 && CNN_MR == 8 && !defined(__clang__) && \
    !defined(CNN_WINO_GATHER)
#define CNN_WINO_ROWS 1
#else
#define CNN_WINO_ROWS 0
#endif

/* The size x size patches of a panel's MR tiles, tile index innermost: d[(r * size + q) *
 * 2 MR + l] = xc[origin[l] + r * wq + q] for l < n, 0 for the lanes past n (d has 2 MR lanes
 * a position). With CNN_WINO_ROWS, the tiles that sit side by side in a tile row (tile t is
 * lane 0, tiles_w a row, origins step pixels apart) are read a patch row at a time: pixels
 * 0-31 (and 4-35 for q >= 4) as pairs of vectors, each q one two-source shuffle, 8 lanes
 * stored and the lanes past the run written over by the next one. The reads go at most to
 * pixel 35 of a patch row, into the next rows of the planes or the scratch after them, never
 * past the workspace. Otherwise float by float. */
static inline __attribute__((always_inline)) void
cnn_winograd_patches(const float *restrict xc, const int *restrict origin, int n, int t,
                     int tiles_w, int wq, int size, int step, float *restrict d)
{
    const int ld = 2 * CNN_MR;
#if CNN_WINO_ROWS
    cnn_vi idx[4];
    for (int q = 0; q < 4; ++q)
        for (int l = 0; l < 16; ++l)
            idx[q][l] = step * (l % 8) + q;
    for (int l0 = 0; l0 < n; l0 += tiles_w - (t + l0) % tiles_w)
        for (int r = 0; r < size; ++r) {
            const float *restrict row = xc + origin[l0] + (size_t)r * wq;
            const cnn_vf a0 = cnn_vload(row), a1 = cnn_vload(row + 16);
            cnn_vf b0 = a0, b1 = a1;
            if (size > 4) {
                b0 = cnn_vload(row + 4);
                b1 = cnn_vload(row + 20);
            }
            for (int q = 0; q < size; ++q) {
                const cnn_vf v = q < 4 ? __builtin_shuffle(a0, a1, idx[q])
                                       : __builtin_shuffle(b0, b1, idx[q - 4]);
                memcpy(d + (r * size + q) * ld + l0, &v, sizeof(float) * CNN_MR);
            }
        }
    for (int r = 0; r < size * size; ++r)
        for (int l = n; l < CNN_MR; ++l)
            d[r * ld + l] = 0.0f;
#else
    (void)t, (void)tiles_w, (void)step;
    for (int l = 0; l < CNN_MR; ++l)
        for (int r = 0; r < size; ++r)
            for (int q = 0; q < size; ++q)
                d[(r * size + q) * ld + l] = l < n ? xc[origin[l] + r * wq + q] : 0.0f;
#endif
}

/* The offsets in the input planes of the patches of a panel's tiles t, t + 1, ..., t + MR - 1
 * (tiles_w a row, `step` pixels apart, wq floats a plane row); the tiles past the last of
 * `left` read tile 0's patch, and their lanes are written as 0. Returns the real tiles. */
static inline __attribute__((always_inline)) int
cnn_winograd_origins(int t, int left, int tiles_w, int wq, int step, int origin[CNN_MR])
{
    const int n = cnn_min(CNN_MR, left);
    for (int l = 0; l < CNN_MR; ++l)
        origin[l] = l < n ? (t + l) / tiles_w * step * wq + (t + l) % tiles_w * step : 0;
    return n;
}

/* The panel of tiles [first + t0, first + t0 + MR) of cnn_winograd_input (below). */
static inline __attribute__((always_inline)) void
cnn_winograd_input_panel(const float *restrict xp, int channels, int hq, int wq, int tiles_w,
                         int first, int count, size_t xi_stride, float *restrict v, int t0)
{
    int origin[CNN_MR];
    const int n = cnn_winograd_origins(first + t0, count - t0, tiles_w, wq, 4, origin);
    for (int c = 0; c < channels; ++c) {
        const float *restrict xc = xp + (size_t)c * hq * wq;
        float d[6][6][2 * CNN_MR], cols[6][6][CNN_MR], out[36][CNN_MR];
        cnn_winograd_patches(xc, origin, n, first + t0, tiles_w, wq, 6, 4, &d[0][0][0]);
        for (int q = 0; q < 6; ++q) /* B^T d, vectorised across the tiles */
            for (int l = 0; l < CNN_MR; ++l) {
                const float d0 = d[0][q][l], d1 = d[1][q][l], d2 = d[2][q][l],
                            d3 = d[3][q][l], d4 = d[4][q][l], d5 = d[5][q][l];
                cols[0][q][l] = 4.0f * d0 - 5.0f * d2 + d4;
                cols[1][q][l] = -4.0f * (d1 + d2) + d3 + d4;
                cols[2][q][l] = 4.0f * (d1 - d2) - d3 + d4;
                cols[3][q][l] = 2.0f * (d3 - d1) - d2 + d4;
                cols[4][q][l] = 2.0f * (d1 - d3) - d2 + d4;
                cols[5][q][l] = 4.0f * d1 - 5.0f * d3 + d5;
            }
        for (int r = 0; r < 6; ++r) /* (B^T d) B */
            for (int l = 0; l < CNN_MR; ++l) {
                const float d0 = cols[r][0][l], d1 = cols[r][1][l], d2 = cols[r][2][l],
                            d3 = cols[r][3][l], d4 = cols[r][4][l], d5 = cols[r][5][l];
                out[6 * r][l] = 4.0f * d0 - 5.0f * d2 + d4;
                out[6 * r + 1][l] = -4.0f * (d1 + d2) + d3 + d4;
                out[6 * r + 2][l] = 4.0f * (d1 - d2) - d3 + d4;
                out[6 * r + 3][l] = 2.0f * (d3 - d1) - d2 + d4;
                out[6 * r + 4][l] = 2.0f * (d1 - d3) - d2 + d4;
                out[6 * r + 5][l] = 4.0f * d1 - 5.0f * d3 + d5;
            }
        float *restrict dst = v + ((size_t)t0 * channels + (size_t)c * CNN_MR);
        for (int xi = 0; xi < 36; ++xi)
            memcpy(dst + xi * xi_stride, out[xi], sizeof out[xi]);
    }
}

/* V for tiles [first, first + count) from the zero-padded input planes xp (channels x hq x
 * wq, hq >= 4 tiles_h + 2 and wq >= 4 tiles_w + 2): v[xi][tile / MR][c][tile % MR], rows (a
 * multiple of MR, >= count) rows per xi, the rows past the last tile zero. One MR-tile panel
 * at a time, channel after channel, so that each of the 36 planes of V is written
 * sequentially. */
typedef struct {
    const float *xp;
    float *v;
    int channels, hq, wq, tiles_w, first, count;
    size_t xi_stride;
} cnn_winograd_input_args;

static inline void cnn_winograd_input_task(void *ctx, int p0, int p1, int slot)
{
    const cnn_winograd_input_args *g = ctx;
    (void)slot;
    for (int t0 = p0 * CNN_MR; t0 < p1 * CNN_MR; t0 += CNN_MR)
        cnn_winograd_input_panel(g->xp, g->channels, g->hq, g->wq, g->tiles_w, g->first,
                                 g->count, g->xi_stride, g->v, t0);
}

static inline void cnn_winograd_input(const float *restrict xp, int channels, int hq, int wq,
                                      int tiles_w, int first, int count, int rows,
                                      float *restrict v, int parallel)
{
    cnn_winograd_input_args g = {.xp = xp, .v = v, .channels = channels, .hq = hq, .wq = wq,
                                 .tiles_w = tiles_w, .first = first, .count = count,
                                 .xi_stride = (size_t)rows * channels};
    cnn_parallel(parallel, (rows + CNN_MR - 1) / CNN_MR, cnn_winograd_input_task, &g);
}

typedef struct {
    int tiles_pad, channels, kpad, blocks;
    const float *v, *u;
    float *m;
} cnn_winograd_gemm_args;

/* (position, column block) pairs [t0, t1) */
static inline void cnn_winograd_gemm_task(void *ctx, int t0, int t1, int slot)
{
    const cnn_winograd_gemm_args *g = ctx;
    (void)slot;
    for (int task = t0; task < t1; ++task) {
        const int xi = task / g->blocks;
        cnn_gemm_bpacked_block(g->tiles_pad, g->channels,
                               g->v + (size_t)xi * g->tiles_pad * g->channels,
                               g->u + (size_t)xi * g->channels * g->kpad,
                               task % g->blocks * CNN_NR,
                               g->m + (size_t)xi * g->tiles_pad * g->kpad, g->kpad);
    }
}

/* M_xi = V_xi * U_xi for the 36 (F(2x2, 3x3): 16) positions: m[xi][tile][kpad], kpad (a multiple of
 * CNN_BPANEL) columns per row. Threads share the (xi, column block) pairs. */
static inline void cnn_winograd_gemm(int positions, int tiles_pad, int channels, int kpad,
                                     const float *restrict v, const float *restrict u,
                                     float *restrict m, int parallel)
{
    cnn_winograd_gemm_args g = {.tiles_pad = tiles_pad, .channels = channels, .kpad = kpad,
                                .blocks = kpad / CNN_NR, .v = v, .u = u, .m = m};
    cnn_parallel(parallel, positions * g.blocks, cnn_winograd_gemm_task, &g);
}

/* The same for one panel of CNN_MR tiles (v: positions x channels x MR, m: positions x MR x
 * kpad), on one thread: for layers with so few channels that V and M of a panel fit on the
 * thread's stack (ops/winograd.py: PANEL_BYTES). The micro-kernel is inlined, its loop over
 * the channels a constant, without prefetches: U, small, stays in cache across the panels. */
static inline __attribute__((always_inline)) void
cnn_winograd_panel_gemm(int positions, int channels, int kpad, const float *restrict v,
                        const float *restrict u, float *restrict m)
{
    for (int xi = 0; xi < positions; ++xi)
        for (int j = 0; j < kpad; j += CNN_NR)
            cnn_gemm_micro_inline(channels, v + (size_t)xi * CNN_MR * channels,
                                  u + (size_t)xi * channels * kpad +
                                      (size_t)(j / CNN_BPANEL) * channels * CNN_BPANEL +
                                      j % CNN_BPANEL,
                                  CNN_BPANEL, NULL, m + (size_t)xi * CNN_MR * kpad + j, kpad, 0,
                                  NULL, CNN_ACT_NONE, 0);
}

#define CNN_WINO_KB 16 /* output channels per output transform block: divides CNN_BPANEL */

/* The 4x4 output tiles o = A^T M A of CNN_WINO_KB consecutive output channels, from their 36
 * values m[xi * stride + k]: o[pixel][k], vectorised across k. */
static inline void cnn_winograd_output(const float *restrict m, size_t stride,
                                       float o[16][CNN_WINO_KB])
{
    float r[4][6][CNN_WINO_KB];
    for (int j = 0; j < 6; ++j) {
        const float *restrict c = m + j * stride;
        for (int k = 0; k < CNN_WINO_KB; ++k) {
            const float m0 = c[k], m1 = c[6 * stride + k], m2 = c[12 * stride + k],
                        m3 = c[18 * stride + k], m4 = c[24 * stride + k],
                        m5 = c[30 * stride + k];
            const float p12 = m1 + m2, n12 = m1 - m2, p34 = m3 + m4, n34 = m3 - m4;
            r[0][j][k] = m0 + p12 + p34;
            r[1][j][k] = n12 + 2.0f * n34;
            r[2][j][k] = p12 + 4.0f * p34;
            r[3][j][k] = n12 + 8.0f * n34 + m5;
        }
    }
    for (int i = 0; i < 4; ++i)
        for (int k = 0; k < CNN_WINO_KB; ++k) {
            const float m0 = r[i][0][k], m1 = r[i][1][k], m2 = r[i][2][k], m3 = r[i][3][k],
                        m4 = r[i][4][k], m5 = r[i][5][k];
            const float p12 = m1 + m2, n12 = m1 - m2, p34 = m3 + m4, n34 = m3 - m4;
            o[4 * i][k] = m0 + p12 + p34;
            o[4 * i + 1][k] = n12 + 2.0f * n34;
            o[4 * i + 2][k] = p12 + 4.0f * p34;
            o[4 * i + 3][k] = n12 + 8.0f * n34 + m5;
        }
}

/* The panel of tiles [first + t0, first + t0 + MR) of cnn_winograd2_input (below). */
static inline __attribute__((always_inline)) void
cnn_winograd2_input_panel(const float *restrict xp, int channels, int hq, int wq, int tiles_w,
                          int first, int count, size_t xi_stride, float *restrict v, int t0)
{
    int origin[CNN_MR];
    const int n = cnn_winograd_origins(first + t0, count - t0, tiles_w, wq, 2, origin);
    for (int c = 0; c < channels; ++c) {
        const float *restrict xc = xp + (size_t)c * hq * wq;
        float d[4][4][2 * CNN_MR], cols[4][4][CNN_MR], out[16][CNN_MR];
        cnn_winograd_patches(xc, origin, n, first + t0, tiles_w, wq, 4, 2, &d[0][0][0]);
        for (int q = 0; q < 4; ++q)
            for (int l = 0; l < CNN_MR; ++l) {
                cols[0][q][l] = d[0][q][l] - d[2][q][l];
                cols[1][q][l] = d[1][q][l] + d[2][q][l];
                cols[2][q][l] = d[2][q][l] - d[1][q][l];
                cols[3][q][l] = d[1][q][l] - d[3][q][l];
            }
        for (int r = 0; r < 4; ++r)
            for (int l = 0; l < CNN_MR; ++l) {
                out[4 * r][l] = cols[r][0][l] - cols[r][2][l];
                out[4 * r + 1][l] = cols[r][1][l] + cols[r][2][l];
                out[4 * r + 2][l] = cols[r][2][l] - cols[r][1][l];
                out[4 * r + 3][l] = cols[r][1][l] - cols[r][3][l];
            }
        float *restrict dst = v + ((size_t)t0 * channels + (size_t)c * CNN_MR);
        for (int xi = 0; xi < 16; ++xi)
            memcpy(dst + xi * xi_stride, out[xi], sizeof out[xi]);
    }
}

/* F(2x2, 3x3), for images too small for 4x4 tiles: 4x4 patches two pixels apart, 16
 * positions, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1].
 * The same layout as cnn_winograd_input, with 16 planes of V. The panel loop is written out
 * again rather than shared with a transform passed as a function pointer: that version,
 * measured, ran F(4x4, 3x3) on 64 channels of 56x56 in 3.1 ms instead of 1.6. */
static inline void cnn_winograd2_input_task(void *ctx, int p0, int p1, int slot)
{
    const cnn_winograd_input_args *g = ctx;
    (void)slot;
    for (int t0 = p0 * CNN_MR; t0 < p1 * CNN_MR; t0 += CNN_MR)
        cnn_winograd2_input_panel(g->xp, g->channels, g->hq, g->wq, g->tiles_w, g->first,
                                  g->count, g->xi_stride, g->v, t0);
}

static inline void cnn_winograd2_input(const float *restrict xp, int channels, int hq, int wq,
                                       int tiles_w, int first, int count, int rows,
                                       float *restrict v, int parallel)
{
    cnn_winograd_input_args g = {.xp = xp, .v = v, .channels = channels, .hq = hq, .wq = wq,
                                 .tiles_w = tiles_w, .first = first, .count = count,
                                 .xi_stride = (size_t)rows * channels};
    cnn_parallel(parallel, (rows + CNN_MR - 1) / CNN_MR, cnn_winograd2_input_task, &g);
}

/* The 2x2 output tiles of CNN_WINO_KB output channels from their 16 values m[xi * stride + k]:
 * o[pixel][k], pixel = 2 * row + column. */
static inline void cnn_winograd2_output(const float *restrict m, size_t stride,
                                        float o[4][CNN_WINO_KB])
{
    float r[2][4][CNN_WINO_KB];
    for (int j = 0; j < 4; ++j) {
        const float *restrict c = m + j * stride;
        for (int k = 0; k < CNN_WINO_KB; ++k) {
            const float m0 = c[k], m1 = c[4 * stride + k], m2 = c[8 * stride + k],
                        m3 = c[12 * stride + k];
            r[0][j][k] = m0 + m1 + m2;
            r[1][j][k] = m1 - m2 - m3;
        }
    }
    for (int i = 0; i < 2; ++i)
        for (int k = 0; k < CNN_WINO_KB; ++k) {
            o[2 * i][k] = r[i][0][k] + r[i][1][k] + r[i][2][k];
            o[2 * i + 1][k] = r[i][1][k] - r[i][2][k] - r[i][3][k];
        }
}

#endif /* CNN_WINOGRAD_H */
