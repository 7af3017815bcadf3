"""The activations the vector kernels fuse (runtime/cnn_vec.h: cnn_vact, cnn_nchw16c.h: cnn_bact,
CNN_ACT_*), called directly: on the GEMM's vectors and on 16-channel blocks they give the same
bits as the scalar functions of cnn_runtime.h, NaN, infinities and -0.0 included, and keep 0 at
0 (the padding channels of blocks)."""
import math

import numpy as np
import pytest

import c_harness
from c_harness import filled, ptr, random

HEADERS = ["cnn_vec.h", "cnn_nchw16c.h"]

SOURCE = r"""
/* y = act(x) three ways, n a multiple of 16: the scalar function (cnn_relu ...), the
 * GEMM's vector (cnn_vact; cnn_act without vector extensions), the block (cnn_bact) */
void activate(int act, const float *x, int n, float *scalar, float *vector, float *block)
{
    for (int i = 0; i < n; ++i)
        scalar[i] = act == CNN_ACT_RELU ? cnn_relu(x[i]) : act == CNN_ACT_RELU6 ? cnn_relu6(x[i])
                  : act == CNN_ACT_HARDSWISH ? cnn_hardswish(x[i])
                  : act == CNN_ACT_SILU ? cnn_silu(x[i])
                  : act == CNN_ACT_GELU ? cnn_gelu(x[i]) : x[i];
#if defined(CNN_VBYTES)
    for (int i = 0; i < n; i += CNN_VLEN) {
        cnn_vf v;
        memcpy(&v, x + i, sizeof v);
        v = cnn_vact(v, act);
        memcpy(vector + i, &v, sizeof v);
    }
#else
    for (int i = 0; i < n; ++i)
        vector[i] = cnn_act(x[i], act);
#endif
    for (int i = 0; i < n; i += CNN_CB)
        cnn_bstore(block + i, cnn_bact(cnn_bload(x + i), act));
}
"""

lib = c_harness.fixture(HEADERS, SOURCE, c_harness.BLOCKED_FLAVOURS)

# CNN_ACT_* codes and torch.nn's formulas
CODES = {"none": (0, lambda x: x), "relu": (1, lambda x: np.maximum(x, 0.0)),
         "relu6": (2, lambda x: np.clip(x, 0.0, 6.0)),
         "hardswish": (3, lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0),
         "silu": (4, lambda x: x / (1.0 + np.exp(-x))),
         "gelu": (5, lambda x: 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0))))}


@pytest.mark.parametrize("name", CODES)
def test_vector_activations_match_the_scalar_bits(lib, name):
    code, formula = CODES[name]
    rng = np.random.default_rng(code)
    edges = [0.0, -0.0, -3.0, 3.0, -2.9, 6.0, 6.5, 1e-30, -1e-30, np.inf, -np.inf, np.nan]
    x = np.concatenate([random(rng, 96, -10, 10), np.array(edges * 3, np.float32)[:36]])
    x = np.ascontiguousarray(x[: x.size // 16 * 16])
    scalar, vector, block = filled(x.size), filled(x.size), filled(x.size)
    lib.lib.activate(code, ptr(lib, x), x.size, ptr(lib, scalar), ptr(lib, vector),
                     ptr(lib, block))
    for got, what in ((vector, "vector"), (block, "block")):
        assert np.array_equal(got.view(np.int32), scalar.view(np.int32)), what
    with np.errstate(invalid="ignore"):
        expected = formula(x.astype(np.float64))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(scalar[finite], expected[finite], rtol=1e-6, atol=1e-7)
    assert np.isnan(scalar[np.isnan(x)]).all(), "NaN does not pass through"
    assert (scalar[x == 0] == 0).all(), "0 does not stay 0"
