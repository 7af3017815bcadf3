"""The math functions of runtime/cnn_unary.h, called directly, against torch's float32
kernels on ordinary and special values (NaN, infinities, zeros of both signs, overflow)."""
import numpy as np
import pytest
import torch

import c_harness
from c_harness import assert_close, filled, ptr, random

HEADERS = ["cnn_runtime.h", "cnn_unary.h"]

SOURCE = r"""
/* y = f(x) for function `which` (the order of FUNCTIONS in the test), a and b its
 * parameters */
void unary(int which, const float *x, int n, float a, float b, float *y)
{
    for (int i = 0; i < n; ++i) {
        const float v = x[i];
        switch (which) {
        case 0: y[i] = cnn_abs(v); break;
        case 1: y[i] = cnn_exp(v); break;
        case 2: y[i] = cnn_log(v); break;
        case 3: y[i] = cnn_sqrt(v); break;
        case 4: y[i] = cnn_rsqrt(v); break;
        case 5: y[i] = cnn_reciprocal(v); break;
        case 6: y[i] = cnn_square(v); break;
        case 7: y[i] = cnn_pow(v, a); break;
        case 8: y[i] = cnn_softplus(v, a, b); break;
        case 9: y[i] = cnn_mish(v); break;
        default: y[i] = cnn_min_nan(a, v); break;
        }
    }
}
"""

lib = c_harness.fixture(HEADERS, SOURCE, ("native", "portable"))

# the C functions' order in SOURCE's switch, their parameters (a, b), and torch's function
FUNCTIONS = [
    ("abs", (0, 0), torch.abs), ("exp", (0, 0), torch.exp), ("log", (0, 0), torch.log),
    ("sqrt", (0, 0), torch.sqrt), ("rsqrt", (0, 0), torch.rsqrt),
    ("reciprocal", (0, 0), torch.reciprocal), ("square", (0, 0), torch.square),
    *[(f"pow{p}", (p, 0), lambda x, p=p: torch.pow(x, p))
      for p in (2.0, 3.0, 0.5, -0.5, -1.0, -2.0, 1.0, 0.0, 1.7, -2.5)],
    *[(f"softplus{beta},{t}", (beta, t), lambda x, beta=beta, t=t:
       torch.nn.functional.softplus(x, beta, t)) for beta, t in ((1.0, 20.0), (2.0, 1.0),
                                                                 (0.5, 30.0))],
    ("mish", (0, 0), torch.nn.functional.mish),
]
INDEX = {"abs": 0, "exp": 1, "log": 2, "sqrt": 3, "rsqrt": 4, "reciprocal": 5, "square": 6,
         "pow": 7, "softplus": 8, "mish": 9}
EDGES = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 3e-40, 1.0, -1.0, 0.5, 19.9,
         20.1, 88.5, -88.5, 100.0, -100.0, 1e30, -1e30]


@pytest.mark.parametrize("case", range(len(FUNCTIONS)), ids=[f[0] for f in FUNCTIONS])
def test_function_against_torch(lib, case):
    name, (a, b), fn = FUNCTIONS[case]
    which = INDEX[name.rstrip("0123456789.,-")]
    rng = np.random.default_rng(case)
    x = np.concatenate([random(rng, 300, -10, 10), np.array(EDGES, np.float32)])
    y = filled(x.size)
    lib.lib.unary(which, ptr(lib, x), x.size, a, b, ptr(lib, y))
    expected = fn(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert_close(y[finite], expected[finite], np.abs(expected[finite]), rtol=2e-6, atol=1e-30)


def test_min_lets_nan_win(lib):
    x = np.array([3.0, np.nan, -1.0, np.inf, -np.inf], np.float32)
    y = filled(x.size)
    lib.lib.unary(10, ptr(lib, x), x.size, 0.5, 0, ptr(lib, y))
    np.testing.assert_array_equal(y, [0.5, np.nan, -1.0, 0.5, -np.inf])
