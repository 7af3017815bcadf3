/* cnn_unary.h: the elementwise math functions on one float (ops/activations.py: abs, exp,
 * log, sqrt, rsqrt, reciprocal, square, pow, mish, softplus) and the minimum for reductions.
 *
 * Each follows torch's CPU kernel for float32, NaN and infinities included. Every constant
 * argument (an exponent, beta, a threshold) is a literal at the call site, so the branches on
 * it fold away once inlined.
 */
#ifndef CNN_UNARY_H
#define CNN_UNARY_H

#include <math.h>

static inline float cnn_abs(float v)
{
    return fabsf(v);
}

static inline float cnn_exp(float v)
{
    return expf(v);
}

static inline float cnn_log(float v)
{
    return logf(v);
}

static inline float cnn_erf(float v)
{
    return erff(v);
}

static inline float cnn_sqrt(float v)
{
    return sqrtf(v);
}

static inline float cnn_rsqrt(float v)
{
    return 1.0f / sqrtf(v);
}

static inline float cnn_reciprocal(float v)
{
    return 1.0f / v;
}

static inline float cnn_square(float v)
{
    return v * v;
}

/* x ** p for a constant p: the exponents torch computes without pow (x * x for 2, sqrt for
 * 0.5, ...; aten/src/ATen/native/cpu/PowKernel.cpp) the same way, so results agree */
static inline float cnn_pow(float v, float p)
{
    if (p == 1.0f)
        return v;
    if (p == 2.0f)
        return v * v;
    if (p == 3.0f)
        return v * v * v;
    if (p == 0.5f)
        return sqrtf(v);
    if (p == -0.5f)
        return 1.0f / sqrtf(v);
    if (p == -1.0f)
        return 1.0f / v;
    if (p == -2.0f)
        return 1.0f / (v * v);
    return powf(v, p);
}

/* log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (torch.nn.Softplus) */
static inline float cnn_softplus(float v, float beta, float threshold)
{
    return v * beta > threshold ? v : log1pf(expf(v * beta)) / beta;
}

/* x tanh(softplus(x)) with beta 1 and no threshold, as torch's Mish kernel computes it */
static inline float cnn_mish(float v)
{
    return v * tanhf(log1pf(expf(v)));
}

/* min that lets NaN win, as torch's amin does (cnn_max_nan's twin) */
static inline float cnn_min_nan(float m, float v)
{
    const float r = v < m ? v : m;
    return v != v ? v : r;
}

#endif /* CNN_UNARY_H */
