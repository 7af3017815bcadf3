"""The column passes of resizing (runtime/cnn_resize.h), called directly: every output column
copies the input column, or blends the two, its tables name, in any order, with repeats."""
import numpy as np
import pytest

import c_harness
from c_harness import assert_close, filled, ptr, random

HEADERS = ["cnn_resize.h"]

SOURCE = r"""
void blend_columns(float *y, const float *row, const int *i0, const int *i1, const float *w0,
                   const float *w1, int n)
{
    cnn_blend_columns(y, row, i0, i1, w0, w1, n);
}

void gather_columns(float *y, const float *row, const int *i, int n)
{
    cnn_gather_columns(y, row, i, n);
}
"""

lib = c_harness.fixture(HEADERS, SOURCE)


@pytest.mark.parametrize("in_w,out_w", [(1, 1), (4, 8), (7, 3), (16, 37), (33, 64)])
def test_blend_columns(lib, in_w, out_w):
    rng = np.random.default_rng(in_w * 100 + out_w)
    row = random(rng, in_w)
    i0 = rng.integers(0, in_w, out_w).astype(np.int32)
    i1 = np.minimum(i0 + 1, in_w - 1).astype(np.int32)
    w1 = random(rng, out_w, 0.0, 1.0)
    w0 = (1 - w1).astype(np.float32)
    y = filled(out_w)
    lib.lib.blend_columns(ptr(lib, y), ptr(lib, row), ptr(lib, i0), ptr(lib, i1), ptr(lib, w0),
                          ptr(lib, w1), out_w)
    assert_close(y, w0 * row[i0] + w1 * row[i1])


@pytest.mark.parametrize("in_w,out_w", [(1, 3), (5, 5), (16, 37), (40, 9)])
def test_gather_columns(lib, in_w, out_w):
    rng = np.random.default_rng(in_w * 100 + out_w)
    row = random(rng, in_w)
    i = rng.integers(0, in_w, out_w).astype(np.int32)
    y = filled(out_w)
    lib.lib.gather_columns(ptr(lib, y), ptr(lib, row), ptr(lib, i), out_w)
    assert (y == row[i]).all()
