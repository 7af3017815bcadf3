"""The scalar helpers of runtime/cnn_runtime.h that the kernels on planes use, called directly:
the ranges of a sliding window that lie inside the input (against brute force), a row's
clipped taps, and the activations (against their torch.nn definitions, NaN passing
through)."""
import itertools
import math

import numpy as np
import pytest

import c_harness
from c_harness import assert_close, filled, ptr, random

HEADERS = ["cnn_runtime.h"]

SOURCE = r"""
/* per case (pad, offset, stride, in, out): [cnn_out_lo, cnn_out_hi) */
void out_ranges(int cases, const int *args, int *range)
{
    for (int i = 0; i < cases; ++i) {
        const int *a = args + 5 * i;
        range[2 * i] = cnn_out_lo(a[0], a[1], a[2]);
        range[2 * i + 1] = cnn_out_hi(a[3], a[0], a[1], a[2], a[4]);
    }
}

/* per case (start, dilation, in, taps): [cnn_tap_lo, cnn_tap_hi) */
void tap_ranges(int cases, const int *args, int *range)
{
    for (int i = 0; i < cases; ++i) {
        const int *a = args + 4 * i;
        range[2 * i] = cnn_tap_lo(a[0], a[1]);
        range[2 * i + 1] = cnn_tap_hi(a[0], a[1], a[2], a[3]);
    }
}

float dw_row_point(const float *row, const float *w, int w0, int in_w, int kw_n, int dil_w)
{
    return cnn_dw_row_point(row, w, w0, in_w, kw_n, dil_w);
}

float max_clipped(const float *row, int w0, int dilation, int in, int taps, float m)
{
    return cnn_max_clipped(row, w0, dilation, in, taps, m);
}

/* y = f(x) for activation `which` (the order of ACTIVATIONS in the test), a and b its
 * parameters */
void activation(int which, const float *x, int n, float a, float b, float *y)
{
    for (int i = 0; i < n; ++i) {
        const float v = x[i];
        switch (which) {
        case 0: y[i] = cnn_relu(v); break;
        case 1: y[i] = cnn_relu6(v); break;
        case 2: y[i] = cnn_hardtanh(v, a, b); break;
        case 3: y[i] = cnn_leaky_relu(v, a); break;
        case 4: y[i] = cnn_elu(v, a); break;
        case 5: y[i] = cnn_sigmoid(v); break;
        case 6: y[i] = cnn_tanh(v); break;
        case 7: y[i] = cnn_hardswish(v); break;
        case 8: y[i] = cnn_hardsigmoid(v); break;
        case 9: y[i] = cnn_silu(v); break;
        case 10: y[i] = cnn_gelu(v); break;
        case 11: y[i] = cnn_gelu_tanh(v); break;
        default: y[i] = cnn_exp_bounded(v); break;
        }
    }
}
"""

lib = c_harness.fixture(HEADERS, SOURCE, ("native", "portable"))


def test_out_range(lib):
    """cnn_out_lo/hi: output o reads input o * stride + offset - pad, inside [0, in) exactly
    for o in [lo, hi) (of the outputs [0, out))."""
    cases = np.array(list(itertools.product(range(4), range(7), (1, 2, 3), (1, 2, 5, 8),
                                            (1, 3, 6))), np.int32)
    ranges = np.zeros((len(cases), 2), np.int32)
    lib.lib.out_ranges(len(cases), ptr(lib, cases), ptr(lib, ranges))
    for (pad, offset, stride, in_, out), (lo, hi) in zip(cases.tolist(), ranges.tolist()):
        inside = [0 <= o * stride + offset - pad < in_ for o in range(out)]
        assert inside == [lo <= o < hi for o in range(out)], (pad, offset, stride, in_, out)


def test_tap_range(lib):
    """cnn_tap_lo/hi: tap k of a window from `start` reads start + k * dilation, inside
    [0, in) exactly for k in [lo, hi) (of the taps [0, taps))."""
    cases = np.array(list(itertools.product(range(-6, 9), (1, 2, 3), (1, 2, 5, 8), (1, 3, 7))),
                     np.int32)
    ranges = np.zeros((len(cases), 2), np.int32)
    lib.lib.tap_ranges(len(cases), ptr(lib, cases), ptr(lib, ranges))
    for (start, dil, in_, taps), (lo, hi) in zip(cases.tolist(), ranges.tolist()):
        inside = [0 <= start + k * dil < in_ for k in range(taps)]
        assert inside == [lo <= k < hi for k in range(taps)], (start, dil, in_, taps)


@pytest.mark.parametrize("in_w,kw,dil", [(1, 1, 1), (5, 3, 1), (7, 5, 2), (3, 7, 1)])
def test_clipped_row(lib, in_w, kw, dil):
    """A window row's taps inside [0, in_w): the depthwise sum and the max (NaN wins)."""
    rng = np.random.default_rng(in_w * kw)
    row = random(rng, in_w + 2)[1:-1].copy()  # nothing readable around it is needed
    w = random(rng, kw)
    for w0 in range(-kw * dil, in_w + 1):
        taps = [k for k in range(kw) if 0 <= w0 + k * dil < in_w]
        got = lib.lib.dw_row_point(ptr(lib, row), ptr(lib, w), w0, in_w, kw, dil)
        expected = sum(float(w[k]) * float(row[w0 + k * dil]) for k in taps)
        assert abs(got - expected) <= 1e-5 * (1 + sum(abs(w[k]) for k in taps)), w0
        got = lib.lib.max_clipped(ptr(lib, row), w0, dil, in_w, kw, -np.inf)
        assert got == max([-np.inf] + [float(row[w0 + k * dil]) for k in taps]), w0
    row[in_w // 2] = np.nan
    assert math.isnan(lib.lib.max_clipped(ptr(lib, row), 0, 1, in_w, in_w, 0.0))


def _hardtanh(x, lo, hi):
    return np.where(x < lo, lo, np.where(x > hi, hi, x))


_erf = np.vectorize(math.erf, otypes=[np.float64])

# the C functions' order in SOURCE's switch, their parameters (a, b), and torch.nn's formulas
ACTIVATIONS = [
    ("relu", (0, 0), lambda x, a, b: np.where(x < 0, 0.0, x)),
    ("relu6", (0, 0), lambda x, a, b: _hardtanh(x, 0.0, 6.0)),
    ("hardtanh", (-0.5, 2.0), lambda x, a, b: _hardtanh(x, a, b)),
    ("leaky_relu", (0.1, 0), lambda x, a, b: np.where(x > 0, x, a * x)),
    ("elu", (0.7, 0), lambda x, a, b: np.where(x > 0, x, a * np.expm1(x))),
    ("sigmoid", (0, 0), lambda x, a, b: 1 / (1 + np.exp(-x))),
    ("tanh", (0, 0), lambda x, a, b: np.tanh(x)),
    ("hardswish", (0, 0), lambda x, a, b: x * _hardtanh(x + 3, 0.0, 6.0) / 6),
    ("hardsigmoid", (0, 0), lambda x, a, b: _hardtanh(x + 3, 0.0, 6.0) / 6),
    ("silu", (0, 0), lambda x, a, b: x / (1 + np.exp(-x))),
    ("gelu", (0, 0), lambda x, a, b: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    ("gelu_tanh", (0, 0), lambda x, a, b: 0.5 * x * (1 + np.tanh(
        math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
]


@pytest.mark.parametrize("which", range(len(ACTIVATIONS)), ids=[a[0] for a in ACTIVATIONS])
def test_activation(lib, which):
    _, (a, b), formula = ACTIVATIONS[which]
    rng = np.random.default_rng(which)
    edges = [0.0, -0.0, 1e-30, -1e-30, -3.0, 3.0, 6.0, 6.5, -87.5, -88.5, 88.5, 100.0,
             -100.0, np.inf, -np.inf]
    x = np.concatenate([random(rng, 300, -10, 10), np.array(edges, np.float32)])
    y = filled(x.size)
    lib.lib.activation(which, ptr(lib, x), x.size, a, b, ptr(lib, y))
    with np.errstate(over="ignore", invalid="ignore"):
        expected = formula(x.astype(np.float64), a, b)
    finite = np.isfinite(expected)
    assert_close(y[finite], expected[finite], rtol=2e-6, atol=1e-6)
    same = (y[~finite] == expected[~finite]) | (np.isnan(y[~finite]) & np.isnan(expected[~finite]))
    assert same.all(), f"{y[~finite]} against {expected[~finite]} (infinite or NaN)"
    nan = filled(3)
    lib.lib.activation(which, ptr(lib, nan), nan.size, a, b, ptr(lib, nan))
    assert np.isnan(nan).all(), "NaN does not pass through"


def test_exp_bounded(lib):
    """e^x on [-87, 88] within 2 float32 ulp, as its comment promises."""
    x = np.linspace(-87, 88, 20001, dtype=np.float32)
    y = filled(x.size)
    lib.lib.activation(len(ACTIVATIONS), ptr(lib, x), x.size, 0, 0, ptr(lib, y))
    expected = np.exp(x.astype(np.float64))
    assert_close(y, expected, 0, rtol=2.5e-7)


def test_gelu_relative(lib):
    """cnn_gelu relative to its value from erfc in float64, into its negative tail, where
    1 + erf would cancel: 2e-6 where |y| > 1e-3; further out the float32 rounding of -x^2 / 2
    (the exponent) grows with x^2: 1e-5 down to 1e-20, 3e-5 to 1e-30; 0 below the range."""
    gelu = [a[0] for a in ACTIVATIONS].index("gelu")
    x = np.linspace(-14, 14, 20001, dtype=np.float32)
    y = filled(x.size)
    lib.lib.activation(gelu, ptr(lib, x), x.size, 0, 0, ptr(lib, y))
    x64 = x.astype(np.float64)
    expected = 0.5 * x64 * np.vectorize(math.erfc, otypes=[np.float64])(-x64 / math.sqrt(2))
    for low, high, rtol in ((1e-3, np.inf, 2e-6), (1e-20, 1e-3, 1e-5), (1e-30, 1e-20, 3e-5)):
        band = (np.abs(expected) > low) & (np.abs(expected) <= high)
        assert_close(y[band], expected[band], 0, rtol=rtol)
    far = filled(2)
    lib.lib.activation(gelu, ptr(lib, np.array([-20.0, -1000.0], np.float32)), 2, 0, 0,
                       ptr(lib, far))
    assert (far == 0).all(), far


def test_sigmoid_relative(lib):
    """cnn_sigmoid relative to its value, down to its smallest normal results: its tail is
    e^x itself, not 0."""
    x = np.linspace(-87, 88, 20001, dtype=np.float32)
    y = filled(x.size)
    lib.lib.activation(5, ptr(lib, x), x.size, 0, 0, ptr(lib, y))
    assert_close(y, 1 / (1 + np.exp(-x.astype(np.float64))), 0, rtol=1e-6)
