/* cnn_runtime.h: helpers shared by every model cnncompile generates: the thread pool
 * (cnn_threads.h), window bounds, min and max, and the activations on one float
 * (ops/activations.py).
 *
 * Plain C99; everything is static inline so that the compiler specialises it at each call
 * site, where the arguments are literal constants. No state and no allocation but the
 * thread pool's.
 */
#ifndef CNN_RUNTIME_H
#define CNN_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Vectorise a float sum when the build enables OpenMP SIMD (-fopenmp-simd -DCNN_OMP_SIMD);
 * without it, the loop is compiled as written and no pragma warning is raised. */
#define CNN_PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP) || defined(CNN_OMP_SIMD)
#define CNN_SIMD_SUM(...) CNN_PRAGMA(omp simd reduction(+:__VA_ARGS__))
#define CNN_SIMD_LANES(n) CNN_PRAGMA(omp simd simdlen(n))
#else
#define CNN_SIMD_SUM(...)
#define CNN_SIMD_LANES(n)
#endif

#include "cnn_threads.h"

/* a layer's tensors and loop bounds, as its loops' tasks see them (templates/ops/_parallel.c.j2) */
typedef struct {
    const float *x, *res;
    float *y, *scratch;
    int i[4];
} cnn_args;

static inline int cnn_min(int a, int b)
{
    return a < b ? a : b;
}

static inline int cnn_max(int a, int b)
{
    return a > b ? a : b;
}

/* Sliding windows. An output index o reads input index o * stride + offset - pad, where
 * offset is the kernel tap's position (k * dilation). These give the range of o for which
 * that input index lies inside [0, in), so the inner loops need no bounds tests. */
static inline int cnn_out_lo(int pad, int offset, int stride)
{
    return pad > offset ? (pad - offset + stride - 1) / stride : 0;
}

static inline int cnn_out_hi(int in, int pad, int offset, int stride, int out)
{
    const int last = in - 1 + pad - offset;
    if (last < 0)
        return 0;
    return last / stride + 1 < out ? last / stride + 1 : out;
}

/* The taps k of a window starting at input index start (may be negative) that fall inside
 * [0, in): k in [cnn_tap_lo, cnn_tap_hi). */
static inline int cnn_tap_lo(int start, int dilation)
{
    return start < 0 ? (-start + dilation - 1) / dilation : 0;
}

static inline int cnn_tap_hi(int start, int dilation, int in, int taps)
{
    const int last = in - 1 - start;
    if (last < 0)
        return 0;
    return last / dilation + 1 < taps ? last / dilation + 1 : taps;
}

/* One kernel row's contribution to a depthwise output pixel whose window starts at column
 * w0 of input row `row`, the taps outside [0, in_w) skipped: the border columns' path. */
static inline float cnn_dw_row_point(const float *row, const float *w, int w0, int in_w,
                                     int kw_n, int dil_w)
{
    float acc = 0.0f;
    const int kw1 = cnn_tap_hi(w0, dil_w, in_w, kw_n);
    for (int kw = cnn_tap_lo(w0, dil_w); kw < kw1; ++kw)
        acc += w[kw] * row[w0 + kw * dil_w];
    return acc;
}

/* Activations, as the torch.nn documentation defines them. NaN passes through, as in torch. */
static inline float cnn_relu(float v)
{
    return v < 0.0f ? 0.0f : v;
}

static inline float cnn_hardtanh(float v, float lo, float hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static inline float cnn_relu6(float v)
{
    return cnn_hardtanh(v, 0.0f, 6.0f);
}

static inline float cnn_leaky_relu(float v, float slope)
{
    return v > 0.0f ? v : v * slope;
}

static inline float cnn_elu(float v, float alpha)
{
    return v > 0.0f ? v : alpha * expm1f(v);
}

/* e^x for x in [-87, 88] without a call, so that loops over it vectorise: x = n ln 2 + r with
 * n rounded to nearest (the 1.5 * 2^23 shifter) and ln 2 split in two (Cody and Waite), so
 * |r| <= ln 2 / 2, then e^r by its Taylor series to degree 6 (relative error below 1.3e-7,
 * 2 float32 ulp) times 2^n built in the exponent bits. */
static inline float cnn_exp_bounded(float x)
{
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    const float t = x * 1.44269504088896341f + shifter;
    const float n = t - shifter;
    const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
    const float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6.0f + r * (1.0f / 24.0f +
                    r * (1.0f / 120.0f + r * (1.0f / 720.0f))))));
    int32_t bits;
    memcpy(&bits, &t, sizeof bits); /* n + 0x400000 in the low bits */
    bits = (bits - 0x4B400000 + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* 1 / (1 + e^-v): e^-v clamped to [-87, 88] (below -88, sigmoid is under 7e-39: 0 here),
 * NaN passed through. No call, so activation loops vectorise: the autoencoder's 784-pixel
 * sigmoid took 5 of its 8 us through expf. */
static inline float cnn_sigmoid(float v)
{
    float m = -v;
    m = m > 88.0f ? 88.0f : m;
    m = m < -87.0f ? -87.0f : m;
    m = v != v ? 0.0f : m;
    const float s = 1.0f / (1.0f + cnn_exp_bounded(m));
    return v != v ? v : (v < -88.0f ? 0.0f : s);
}

static inline float cnn_tanh(float v)
{
    return tanhf(v);
}

static inline float cnn_hardswish(float v)
{
    return v * cnn_hardtanh(v + 3.0f, 0.0f, 6.0f) * (1.0f / 6.0f);
}

static inline float cnn_hardsigmoid(float v)
{
    return cnn_hardtanh(v + 3.0f, 0.0f, 6.0f) * (1.0f / 6.0f);
}

/* v * sigmoid(v), through cnn_sigmoid's exponential: no call, so the loops vectorise */
static inline float cnn_silu(float v)
{
    return v * cnn_sigmoid(v);
}

/* erfc(z) for z >= 0 without a call, so that loops over it vectorise (for GELU; the erf op
 * keeps erff): t e^(-z^2 + P(t)), t = 1 / (1 + z / 2), with the Chebyshev-fitted P of
 * Numerical Recipes' erfcc (Press et al., 2nd ed., 6.2): fractional error below 1.2e-7.
 * Below an exponent of -87, where erfc is under 1e-38, it is 0; NaN passes through. */
static inline float cnn_erfc_nonneg(float z)
{
    const float t = 1.0f / (1.0f + 0.5f * z);
    float e = -z * z - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f +
              t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f +
              t * (-0.82215223f + t * 0.17087277f))))))));
    const int tiny = e < -87.0f;
    e = tiny ? -87.0f : e;
    return z != z ? z : (tiny ? 0.0f : t * cnn_exp_bounded(e));
}

/* GELU: x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, where 1 + erf(-z) = erfc(z): taken from erfc
 * on both sides, so the negative tail keeps its relative precision. The tanh form is the
 * approximation of Hendrycks & Gimpel (2016). */
static inline float cnn_gelu(float v)
{
    const float c = cnn_erfc_nonneg((v < 0.0f ? -v : v) * 0.70710678118654752f);
    return 0.5f * v * (v < 0.0f ? c : 2.0f - c);
}

static inline float cnn_gelu_tanh(float v)
{
    const float k = 0.79788456080286536f; /* sqrt(2 / pi) */
    return 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
}

/* max that lets NaN win, as torch's max pooling does */
static inline float cnn_max_nan(float m, float v)
{
    const float r = v > m ? v : m; /* two selects, no short circuit: loops over it vectorise */
    return v != v ? v : r;
}

/* m and the taps of a window row starting at w0, the ones inside [0, in) */
static inline float cnn_max_clipped(const float *row, int w0, int dilation, int in, int taps,
                                    float m)
{
    const int hi = cnn_tap_hi(w0, dilation, in, taps);
    for (int k = cnn_tap_lo(w0, dilation); k < hi; ++k)
        m = cnn_max_nan(m, row[w0 + k * dilation]);
    return m;
}

#endif /* CNN_RUNTIME_H */
