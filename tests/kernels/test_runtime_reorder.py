"""The reorders between channel planes and blocks of 16 channels (runtime/cnn_nchwc.h), and the
16 x 16 transpose they are made of, called directly: every value copied bit for bit, the
padding channels zero."""
import numpy as np
import pytest

import c_harness
from c_harness import BLOCK, PARALLEL, assert_equal, filled, ptr, random

HEADERS = ["cnn_nchw16c_reorder.h"]

SOURCE = r"""
void transpose16(const float *src, size_t src_stride, float *dst, size_t dst_stride)
{
    cnn_transpose16(src, src_stride, dst, dst_stride);
}

/* what the tasks of to_blocks() and from_blocks() share */
struct reorder_args {
    int channels, plane;
    const float *x;
    float *y;
};

/* blocks [b0, b1) from the planes */
static inline void to_blocks_task(void *ctx, int b0, int b1, int slot)
{
    const struct reorder_args *a = ctx;
    (void)slot;
    for (int b = b0; b < b1; ++b)
        cnn_to_blocks(a->x, a->channels, a->plane, a->y, b);
}

/* blocks [b0, b1) into the planes */
static inline void from_blocks_task(void *ctx, int b0, int b1, int slot)
{
    const struct reorder_args *a = ctx;
    (void)slot;
    for (int b = b0; b < b1; ++b)
        cnn_from_blocks(a->x, a->channels, a->plane, a->y, b);
}

/* every block, as reorder.c.j2 runs them */
void to_blocks(const float *x, int channels, int plane, float *y, int parallel)
{
    struct reorder_args a = {.channels = channels, .plane = plane, .x = x, .y = y};
    cnn_parallel(parallel, (channels + CNN_CB - 1) / CNN_CB, to_blocks_task, &a);
}

void from_blocks(const float *x, int channels, int plane, float *y, int parallel)
{
    struct reorder_args a = {.channels = channels, .plane = plane, .x = x, .y = y};
    cnn_parallel(parallel, (channels + CNN_CB - 1) / CNN_CB, from_blocks_task, &a);
}

/* rows of out_w pixels of each block (rows: blocks x out_h x out_w x 16) into the planes,
 * as max_pool2d_from_blocks.c.j2 stores its rows */
void block_rows_to_planes(const float *rows, int channels, int out_h, int out_w, float *y)
{
    for (int r = 0; r < (channels + CNN_CB - 1) / CNN_CB * out_h; ++r)
        cnn_block_row_to_planes(rows + (size_t)r * out_w * CNN_CB, out_w, channels,
                                out_h * out_w, y + (size_t)(r % out_h) * out_w, r / out_h);
}
"""

lib = c_harness.fixture(HEADERS, SOURCE, c_harness.BLOCKED_FLAVOURS)


@pytest.mark.parametrize("src_stride,dst_stride", [(16, 16), (17, 16), (16, 40), (33, 19)])
def test_transpose16(lib, src_stride, dst_stride):
    rng = np.random.default_rng(src_stride * dst_stride)
    src = random(rng, (BLOCK, src_stride))
    dst = filled((BLOCK, dst_stride))
    lib.lib.transpose16(ptr(lib, src), src_stride, ptr(lib, dst), dst_stride)
    assert_equal(dst[:, :BLOCK], src[:, :BLOCK].T)
    assert np.isnan(dst[:, BLOCK:]).all(), "written past 16 columns"


CHANNELS = [1, 5, 16, 17, 40]
PLANES = [1, 7, 16, 17, 50]


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("plane", PLANES)
def test_to_blocks(lib, channels, plane):
    rng = np.random.default_rng(channels * plane)
    x = random(rng, (channels, plane))
    for parallel, threads in PARALLEL:
        y = filled((-(-channels // BLOCK), plane, BLOCK))
        with c_harness.threads(lib, threads):
            lib.lib.to_blocks(ptr(lib, x), channels, plane, ptr(lib, y), parallel)
        assert_equal(y, c_harness.to_blocks(x), f"parallel {parallel}, {threads} threads")


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("plane", PLANES)
def test_from_blocks(lib, channels, plane):
    rng = np.random.default_rng(channels + plane)
    xb = c_harness.to_blocks(random(rng, (channels, plane)))
    for parallel, threads in PARALLEL:
        # the planes of the padding channels of the last block are not written
        y = filled((-(-channels // BLOCK) * BLOCK, plane))
        with c_harness.threads(lib, threads):
            lib.lib.from_blocks(ptr(lib, xb), channels, plane, ptr(lib, y), parallel)
        what = f"parallel {parallel}, {threads} threads"
        assert_equal(y[:channels], c_harness.from_blocks(xb, channels), what)
        assert np.isnan(y[channels:]).all(), f"{what}: wrote planes past the channels"


@pytest.mark.parametrize("channels", [3, 16, 35])
@pytest.mark.parametrize("out_h,out_w", [(1, 1), (3, 17), (2, 40)])
def test_block_rows_to_planes(lib, channels, out_h, out_w):
    rng = np.random.default_rng(channels * out_w)
    x = random(rng, (channels, out_h, out_w))
    y = filled((-(-channels // BLOCK) * BLOCK, out_h, out_w))
    lib.lib.block_rows_to_planes(ptr(lib, c_harness.to_blocks(x)), channels, out_h, out_w,
                                 ptr(lib, y))
    assert_equal(y[:channels], x)
    assert np.isnan(y[channels:]).all(), "wrote planes past the channels"
