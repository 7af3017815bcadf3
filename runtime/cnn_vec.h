/* cnn_vec.h: the GEMM's vector of floats, cnn_vf, as wide as the target's registers, and
 * the fused activations on it (cnn_vact; cnn_act on one float without vectors). Used by the
 * GEMM (cnn_gemm.h), Winograd (cnn_winograd.h) and the channel blocks (cnn_nchw16c.h).
 * Written with GCC/Clang vector extensions, so the same code becomes AVX-512, AVX2 or NEON;
 * CNN_VBYTES picks the vector width from the target. Without vector extensions, plain C.
 */
#ifndef CNN_VEC_H
#define CNN_VEC_H

#include "cnn_runtime.h"
#if defined(__AVX__)
#include <immintrin.h>
#endif

/* The epilogue a micro-kernel can apply to its block of C while the block is still in
 * registers, on the last pass over K: a bias per row of C, then one of these activations
 * (ops/conv.py: GEMM_ACTIVATIONS). Anything else runs as a pass over the output afterwards. */
#define CNN_ACT_NONE 0
#define CNN_ACT_RELU 1
#define CNN_ACT_RELU6 2
#define CNN_ACT_HARDSWISH 3 /* v * relu6(v + 3) / 6, as cnn_hardswish: 0 stays 0 */
#define CNN_ACT_SILU 4      /* v * sigmoid(v), as cnn_silu: 0 stays 0 */
#define CNN_ACT_GELU 5      /* v * Phi(v), as cnn_gelu: 0 stays 0 */

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

/* SiLU and GELU over the n floats of a vector or block in place (vector types alias their
 * floats), lane by lane: their exponentials have no vector form here, and the loop
 * vectorises, CNN_VLEN lanes at a time (-march=native on AVX-512 prefers 8-lane loops,
 * which take twice the instructions) */
static inline __attribute__((always_inline)) void cnn_act_lanes(float *lanes, int n, int act)
{
    if (act == CNN_ACT_SILU) {
        CNN_SIMD_LANES(CNN_VLEN)
        for (int l = 0; l < n; ++l)
            lanes[l] = cnn_silu(lanes[l]);
    } else {
        CNN_SIMD_LANES(CNN_VLEN)
        for (int l = 0; l < n; ++l)
            lanes[l] = cnn_gelu(lanes[l]);
    }
}

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

/* cnn_relu / cnn_relu6 / cnn_hardswish on a vector, with the same comparisons, so the same
 * bits: NaN and -0.0 pass through; cnn_silu and cnn_gelu lane by lane. */
static inline __attribute__((always_inline)) cnn_vf cnn_vact(cnn_vf v, int act)
{
    if (act == CNN_ACT_SILU || act == CNN_ACT_GELU) {
        cnn_act_lanes((float *)&v, CNN_VLEN, act);
        return v;
    }
    const cnn_vf zero = {0}, six = zero + 6.0f, x = v;
    const int clamp6 = act == CNN_ACT_RELU6 || act == CNN_ACT_HARDSWISH;
    if (act == CNN_ACT_HARDSWISH)
        v = v + 3.0f;
#if CNN_VBYTES == 64 && defined(__AVX512F__) && !defined(CNN_NO_MAX_INTRINSICS)
    /* one instruction each, the same bits: VMINPS(a, b) is a < b ? a : b and VMAXPS(a, b)
     * is a > b ? a : b, each returning b when either is NaN, which is exactly v > 6 ? 6 : v
     * and v < 0 ? 0 : v (-0.0 kept), where the selects take a comparison and a masked move */
    if (clamp6)
        v = (cnn_vf)_mm512_min_ps((__m512)six, (__m512)v);
    if (act != CNN_ACT_NONE)
        v = (cnn_vf)_mm512_max_ps((__m512)zero, (__m512)v);
#elif CNN_VBYTES == 32 && defined(__AVX__) && !defined(CNN_NO_MAX_INTRINSICS)
    if (clamp6)
        v = (cnn_vf)_mm256_min_ps((__m256)six, (__m256)v);
    if (act != CNN_ACT_NONE)
        v = (cnn_vf)_mm256_max_ps((__m256)zero, (__m256)v);
#else
    if (clamp6)
        v = cnn_vselect(v > six, six, v);
    if (act != CNN_ACT_NONE)
        v = cnn_vselect(v < zero, zero, v);
#endif
    if (act == CNN_ACT_HARDSWISH)
        v = x * v * (1.0f / 6.0f);
    return v;
}
#else
static inline float cnn_act(float v, int act)
{
    return act == CNN_ACT_RELU6 ? cnn_relu6(v) : act == CNN_ACT_RELU ? cnn_relu(v)
           : act == CNN_ACT_HARDSWISH ? cnn_hardswish(v) : act == CNN_ACT_SILU ? cnn_silu(v)
           : act == CNN_ACT_GELU ? cnn_gelu(v) : v;
}
#endif

#endif /* CNN_VEC_H */
