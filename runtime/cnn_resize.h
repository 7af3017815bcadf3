/* cnn_resize.h: the column pass of resizing (interpolate.c.j2): each output column copies
 * one input column (nearest) or blends two (linear), found through index tables.
 */
#ifndef CNN_RESIZE_H
#define CNN_RESIZE_H

#include "cnn_runtime.h"

/* GCC vectorises the loops below under -march=native with AVX2 gather instructions, which on
 * common x86 cores (and more so with the Gather Data Sampling microcode fix) take longer than
 * the loads they replace: the loops are compiled without AVX2, in functions of their own
 * (unused: the header is included in every model). */
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define CNN_NO_GATHER __attribute__((target("no-avx2"), noinline, unused))
#else
#define CNN_NO_GATHER __attribute__((unused))
#endif

/* y[o] = w0[o] * row[i0[o]] + w1[o] * row[i1[o]] for the n output columns o */
static CNN_NO_GATHER void cnn_blend_columns(float *restrict y, const float *restrict row,
                                            const int *restrict i0, const int *restrict i1,
                                            const float *restrict w0, const float *restrict w1,
                                            int n)
{
    for (int o = 0; o < n; ++o)
        y[o] = w0[o] * row[i0[o]] + w1[o] * row[i1[o]];
}

/* y[o] = row[i[o]] for the n output columns o */
static CNN_NO_GATHER void cnn_gather_columns(float *restrict y, const float *restrict row,
                                             const int *restrict i, int n)
{
    for (int o = 0; o < n; ++o)
        y[o] = row[i[o]];
}

#endif
