"""The linear-layer kernels of runtime/cnn_nchwc.h, called directly: samples as the lanes of a
vector (linear.c.j2's group path, weights in rows or in blocks), and one sample's outputs
in groups of output blocks (nc.linear_blocks)."""
import numpy as np
import pytest

import c_harness
from c_harness import ACTIVATIONS, PARALLEL, assert_close, filled, ptr, random

HEADERS = ["cnn_linear.h"]

SOURCE = r"""
void linear_lanes(int in, int out, const float *x, size_t xs, const float *w, int blocked,
                  const float *bias, float *y, size_t ys, int count, float *xt)
{
    cnn_linear_lanes(in, out, x, xs, w, blocked, bias, y, ys, count, xt);
}

/* every group of nb output blocks, as linear.c.j2 runs them: nb 4 (ops/linear.py: BLOCKS_NB)
 * a constant, as there, or another nb */
static __attribute__((noinline)) void
linear_group(int in, int out, int nb, const float *x, const float *w, const float *bias,
             int act, float *y, int g)
{
    if (nb == 4)
        cnn_linear_blocks_group(in, out, 4, x, w, bias, act, y, g);
    else
        cnn_linear_blocks_group(in, out, nb, x, w, bias, act, y, g);
}

/* what the tasks of linear_blocks() share: the sizes and the tensors */
struct linear_args {
    int in, out, nb, act;
    const float *x, *w, *bias;
    float *y;
};

/* groups [g0, g1) */
static inline void linear_groups_task(void *ctx, int g0, int g1, int slot)
{
    const struct linear_args *a = ctx;
    (void)slot;
    for (int g = g0; g < g1; ++g)
        linear_group(a->in, a->out, a->nb, a->x, a->w, a->bias, a->act, a->y, g);
}

void linear_blocks(int in, int out, int nb, const float *x, const float *w, const float *bias,
                   int act, float *y, int parallel)
{
    const int groups = ((out + CNN_CB - 1) / CNN_CB + nb - 1) / nb;
    struct linear_args a = {.in = in, .out = out, .nb = nb, .act = act, .x = x, .w = w,
                            .bias = bias, .y = y};
    cnn_parallel(parallel, groups, linear_groups_task, &a);
}
"""

lib = c_harness.fixture(HEADERS, SOURCE, c_harness.BLOCKED_FLAVOURS)


def linear_reference(x, w, bias):
    """x (samples, in) -> x W^T + b in float64, and |x| |W|^T + |b|."""
    y = x.astype(np.float64) @ w.T
    mag = np.abs(x) @ np.abs(w).T
    if bias is not None:
        y, mag = y + bias, mag + np.abs(bias)
    return y, mag


@pytest.mark.parametrize("in_,out", [(1, 1), (5, 3), (16, 8), (17, 9), (40, 21), (100, 4)])
@pytest.mark.parametrize("count", [1, 5, 16, 17, 33])
@pytest.mark.parametrize("blocked", [0, 1], ids=["rows", "blocks"])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_lanes(lib, in_, out, count, blocked, bias):
    rng = np.random.default_rng(in_ * out + count)
    xs, ys = in_ + 3, out + 2  # samples further apart than their features
    x = random(rng, (count, xs))
    w = random(rng, (out, in_))
    b = random(rng, out, -4, 4) if bias else None
    wp, bp = c_harness.pack_linear_blocks(w, b) if blocked else (w, b)
    y = filled((count, ys))
    xt = filled(in_ * c_harness.BLOCK)
    lib.lib.linear_lanes(in_, out, ptr(lib, x), xs, ptr(lib, wp), blocked, ptr(lib, bp),
                         ptr(lib, y), ys, count, ptr(lib, xt))
    expected, mag = linear_reference(x[:, :in_], w, b)
    assert_close(y[:, :out], expected, mag)
    assert np.isnan(y[:, out:]).all(), "written past the outputs"


@pytest.mark.parametrize("in_,out", [(1, 1), (7, 16), (16, 33), (40, 70), (129, 64),
                                     (3, 100)])
@pytest.mark.parametrize("nb", [4, 3])
@pytest.mark.parametrize("act,bias", [(0, False), (1, True), (2, True)])
def test_linear_blocks(lib, in_, out, nb, act, bias):
    rng = np.random.default_rng(in_ + out)
    x = random(rng, in_)
    w = random(rng, (out, in_))
    b = random(rng, out, -8, 8) if bias else None
    wp, bp = c_harness.pack_linear_blocks(w, b)
    expected, mag = linear_reference(x[None], w, b)
    for parallel, threads in PARALLEL:
        y = filled(out + 5)
        with c_harness.threads(lib, threads):
            lib.lib.linear_blocks(in_, out, nb, ptr(lib, x), ptr(lib, wp), ptr(lib, bp), act,
                                  ptr(lib, y), parallel)
        what = f"parallel {parallel}, {threads} threads"
        assert_close(y[:out], ACTIVATIONS[act](expected[0]), mag[0], what)
        assert np.isnan(y[out:]).all(), f"{what}: written past the outputs"
