/* cnn_nchw16c.h: the channel-blocked layout: the 16-channel vector cnn_vb and its operations,
 * the pixel tiles of the kernels on blocks, the 16 x 16 transposes. Each kernel family on
 * blocks has a header of its own, cnn_nchw16c_<family>.h, that includes this one.
 *
 * A tensor of C channels and P = H x W pixels in the blocked layout (oneDNN calls it nChw16c,
 * ONNX Runtime NCHWc) is ceil(C / 16) blocks, each P pixels of 16 consecutive channels:
 * x[block][pixel][16]. Channels past C are zero, and stay zero: every kernel on blocks has zero
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
#ifndef CNN_NCHW16C_H
#define CNN_NCHW16C_H

#include "cnn_vec.h"
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

static inline __attribute__((always_inline)) cnn_vb cnn_bselect(cnn_vbi mask, cnn_vb a,
                                                                 cnn_vb b)
{
    return (cnn_vb)((mask & (cnn_vbi)a) | (~mask & (cnn_vbi)b));
}

/* cnn_relu / cnn_relu6 / cnn_hardswish lane by lane, the same comparisons (NaN passes
 * through), cnn_silu and cnn_gelu lane by lane; a block is the GEMM's vector with AVX-512, whose cnn_vact clamps in one
 * instruction each. Always inlined: a copy of its own would return a 64-byte vector, whose
 * ABI differs with and without AVX-512 (GCC's -Wpsabi). */
static inline __attribute__((always_inline)) cnn_vb cnn_bact(cnn_vb v, int act)
{
#if CNN_VBYTES == 64
    return (cnn_vb)cnn_vact((cnn_vf)v, act);
#else
    if (act == CNN_ACT_SILU || act == CNN_ACT_GELU) {
        cnn_act_lanes((float *)&v, CNN_CB, act);
        return v;
    }
    const cnn_vb zero = {0}, six = zero + 6.0f, x = v;
    if (act == CNN_ACT_HARDSWISH)
        v = v + 3.0f;
    if (act == CNN_ACT_RELU6 || act == CNN_ACT_HARDSWISH)
        v = cnn_bselect(v > six, six, v);
    if (act != CNN_ACT_NONE)
        v = cnn_bselect(v < zero, zero, v);
    if (act == CNN_ACT_HARDSWISH)
        v = x * v * (1.0f / 6.0f);
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
        v.v[l] = cnn_act(v.v[l], act);
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

/* The pixel tiles of the kernels on blocks (pointwise, direct, entry), named by role:
 *   CNN_TILE_MR x CNN_TILE_NB: the narrow tile, pixels x output blocks, for any layer;
 *   CNN_WIDE_MR x CNN_WIDE_NB: the wide tile, for layers of four output blocks or more;
 *   CNN_TILE7_MR: 7 pixels in place of either tile's MR, for runs that 7 divides better.
 * kernels/conv_nchw16c.py (blocked_lower, pixel_tile) chooses one per layer. */

/* The narrow tile: TILE_MR pixels x TILE_NB output blocks of accumulators, as many
 * as the registers hold beside the weights (AVX-512: 16 of 32 zmm; AVX2: 8 of 16 ymm, each
 * block being two; 128-bit vectors: 8 of 16 or 32). */
#if defined(__AVX512F__)
#define CNN_TILE_MR 8
#define CNN_TILE_NB 2
#elif defined(__AVX__)
#define CNN_TILE_MR 4
#define CNN_TILE_NB 1
#else
#define CNN_TILE_MR 2
#define CNN_TILE_NB 1
#endif
/* ... and the wide tile of the pointwise, stem and direct kernels, for layers of four output
 * blocks or more (a last partial group is a tile of its 1 to 3 blocks): with AVX-512, 6
 * pixels x 4 blocks, 24 accumulators (MLAS's NCHWc pointwise kernel likewise takes up to 4
 * filter blocks at once); 128 -> 256 channels on 32x32, one thread: 0.58 -> 0.53 ms.
 * Elsewhere it is the TILE_MR x TILE_NB tile. */
#if defined(CNN_WIDE_MR)
#elif defined(__AVX512F__)
#define CNN_WIDE_MR 6
#define CNN_WIDE_NB 4
#else
#define CNN_WIDE_MR CNN_TILE_MR
#define CNN_WIDE_NB CNN_TILE_NB
#endif
/* ... and a 7-pixel variant of either, for runs of pixels that tiles of 7 cover with less
 * waste (7x7 feature maps, rows of 14, 28, 56 pixels; kernels/conv_nchw16c.py: pixel_tile chooses):
 * 7 x 4 blocks is 28 accumulators beside 4 weight vectors, the pixel's value read by the FMA
 * itself. */
#if defined(__AVX512F__)
#define CNN_TILE7_MR 7
#else
#define CNN_TILE7_MR CNN_TILE_MR
#endif
/* ... and the tile of one output block, for the direct kernel on convolution groups of one
 * block (RegNet's groups of 16): as many accumulators in pixels, each weight vector meeting
 * more of them (AVX-512: 14 pixels, which split rows of 56, 28 and 14 evenly). */
#if defined(CNN_SINGLE_MR)
#elif defined(__AVX512F__)
#define CNN_SINGLE_MR 14
#elif defined(__AVX__)
#define CNN_SINGLE_MR 6
#else
#define CNN_SINGLE_MR CNN_TILE_MR
#endif
/* accumulator arrays hold any of the tiles (nb <= 4 in all) */
#define CNN_TILE_MR_MAX                                                                        \
    (CNN_SINGLE_MR > CNN_TILE_MR && CNN_SINGLE_MR > CNN_WIDE_MR ? CNN_SINGLE_MR                  \
     : CNN_TILE_MR > CNN_WIDE_MR                                ? CNN_TILE_MR                    \
                                                                : CNN_WIDE_MR)
#if CNN_TILE7_MR > CNN_TILE_MR_MAX
#error "CNN_TILE_MR_MAX must hold the 7-pixel tile"
#endif

/* The geometry of one convolution on channel blocks, declared once by each layer's function
 * (templates/ops/conv_*_nchwc.c.j2) with designated initializers, as a static constant, and
 * passed by value to the kernels below and in cnn_nchw16c_*.h: they are always inlined, and
 * GCC folds each field to its constant, as it did the positional arguments (a static object
 * is no variable a task's context has to carry). A kernel reads the fields it needs; the
 * others stay zero. */
typedef struct {
    int in_h, in_w;            /* input pixels */
    int out_h, out_w;          /* output pixels */
    int in_channels;           /* input channels (the pointwise kernel skips a partial block's padding) */
    int in_blocks, out_blocks; /* channel blocks of 16 */
    int kh, kw;                /* kernel taps */
    int stride_h, stride_w;
    int dil_h, dil_w;
    int pad_top, pad_left;
    int padded_h, padded_w;    /* pixels a block of the input the direct kernel reads (padded copy) */
    int inner_lo, inner_hi;    /* depthwise: the output columns that see every column tap */
    int taps;                  /* entry kernel: input values per output (channels x kh x kw) */
    int row_step, pixel_step;  /* entry kernel: floats from a tap's value for one output row,
                                  and pixel, to the next's */
    int mr, nb;                /* the tile: pixels x output blocks (CNN_TILE_MR ...) */
    int act;                   /* CNN_ACT_* */
    int group_in_blocks, group_out_blocks; /* direct kernel, grouped: the input blocks that
                                  each run of group_out_blocks output blocks reads (0: all) */
} cnn_conv16_geom;


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

/* The callers' loops are written in each layer's template (templates/ops/), so that the
 * task functions the thread pool runs, and the always-inlined bodies of the cnn_nchw16c_*.h
 * kernels, see the layer's shapes as constants: a loop here would be compiled once for
 * every layer. */

#endif /* CNN_NCHW16C_H */
