"""Channel-blocked layout (passes/select_kernels.py, select_layout.py, kernels/conv_nchw16c.py,
runtime/cnn_nchw16c*.h):
which layers run on blocks, where the reorders go, and the numbers of the blocked kernels
against the reference and torch on awkward shapes."""
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cnncompile
import cnncompile.nn as cnn
from cnncompile.api import build_graph
from cnncompile.build import PORTABLE_FLAGS
from cnncompile import kernels, layout
from cnncompile.kernels.conv_nchw16c import pixel_tile
from helpers import (assert_close, assert_memory_plan_safe, check_against_reference, random_input,
                     run_torch, torch_twin)


def separable(nn, F, channels=24, mid=40, stride=2, kernel=3, dilation=1, bias=True):
    """stem -> depthwise -> 1x1 (ReLU6) -> depthwise (no bias) -> 1x1 + skip -> depthwise +
    skip (ReLU) -> global pool, and two more heads reading the blocked value on planes."""
    class Separable(nn.Module):
        def __init__(self):
            super().__init__()
            pad = dilation * (kernel - 1) // 2
            self.stem = nn.Conv2d(3, channels, 3, padding=1)
            self.dw = nn.Conv2d(channels, channels, kernel, stride=stride, padding=pad,
                                dilation=dilation, groups=channels, bias=bias)
            self.pw = nn.Conv2d(channels, mid, 1)
            self.dw2 = nn.Conv2d(mid, mid, 5, padding=2, groups=mid, bias=False)
            self.pw2 = nn.Conv2d(mid, mid, 1, bias=bias)
            self.dw3 = nn.Conv2d(mid, mid, 3, padding=1, groups=mid)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Conv2d(mid, mid, 3, padding=1)

        def forward(self, x):
            y = F.relu6(self.pw(F.relu(self.dw(self.stem(x)))))
            z = self.pw2(self.dw2(y)) + y
            z = F.relu(self.dw3(z) + z)
            return self.pool(z) + F.adaptive_max_pool2d(self.head(z), 1) + \
                F.adaptive_avg_pool2d(F.sigmoid(z), 1)
    return Separable()


def pooled(nn, F, channels=32, out=20, pool=(2, 2, 0, 1, False), stride=1, act=True):
    """stem -> max pool (kernel, stride, padding, dilation, ceil_mode) -> 3x3 conv (ReLU)
    -> 2x2 max pool: the stem writes blocks, the first pool and the conv run on them, the
    last pool reads them and writes the output's planes."""
    k, s, p, d, ceil = pool

    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, channels, 3, padding=1)
            self.pool = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
            self.conv = nn.Conv2d(channels, out, 3, stride=stride, padding=1)
            self.pool2 = nn.MaxPool2d(2, ceil_mode=True)

        def forward(self, x):
            x = self.pool(F.relu(self.stem(x)) if act else self.stem(x))
            return self.pool2(F.relu(self.conv(x)))
    return Pooled()


def residual(nn, F, channels=64):
    """stem -> 3x3 stride 2 (nchw16c.direct) -> two 3x3 stride-1 layers (Winograd on blocks),
    the second adding the stride-2 layer's output -> global average pooling."""
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, channels, 3, padding=1)
            self.down = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            y = F.relu(self.down(F.relu(self.stem(x))))
            z = F.relu(self.conv2(F.relu(self.conv(y))) + y)
            return self.pool(z)
    return Residual()


def twins(build, **kwargs):
    cnncompile.manual_seed(0)
    model = build(cnn, cnn.functional, **kwargs).eval()
    return model, torch_twin(model, build(torch.nn, torch.nn.functional, **kwargs))


def pair(**kwargs):
    return twins(separable, **kwargs)


@pytest.mark.parametrize("shape,kwargs,stem", [
    ((1, 3, 17, 13), {}, "nchw_to_nchw16c.shifted"),
    ((1, 3, 17, 13), {}, "nchw.shifted_gemm"),  # then a reorder into blocks
    ((1, 3, 9, 9), dict(channels=1, mid=3, stride=1), "nchw_to_nchw16c.shifted"),
    ((1, 3, 1, 1), dict(channels=16, mid=33), "nchw.shifted_gemm"),
    ((1, 3, 2, 3), dict(channels=17, mid=32, kernel=5), "nchw_to_nchw16c.shifted"),
    ((1, 3, 12, 7), dict(channels=33, mid=17, stride=1, dilation=2, bias=False), "nchw.shifted_gemm"),
    ((1, 3, 30, 30), dict(channels=48, mid=96, stride=2), "nchw_to_nchw16c.shifted"),
    # 4 and 8 output blocks: the wide pointwise tile, on 63, 25 (weights outweighing the
    # image) and 1 pixel
    ((1, 3, 17, 13), dict(channels=32, mid=64), "nchw_to_nchw16c.shifted"),
    ((1, 3, 5, 5), dict(channels=16, mid=128, stride=1), "nchw_to_nchw16c.shifted"),
    ((1, 3, 1, 1), dict(channels=16, mid=64), "nchw_to_nchw16c.shifted"),
    ((1, 3, 4, 5), dict(channels=64, mid=64, stride=1), "nchw_to_nchw16c.shifted"),  # a wide stem
    # 5 and 7 output blocks: wide tiles, then a last tile of 1 or 3 blocks
    ((1, 3, 9, 11), dict(channels=80, mid=112), "nchw_to_nchw16c.shifted"),
    ((1, 3, 6, 6), dict(channels=112, mid=80, stride=1), "nchw_to_nchw16c.shifted"),
])
def test_blocked_runs_match_the_reference_and_torch(shape, kwargs, stem):
    model, twin = pair(**kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 3), torch_model=twin,
                                       kernels={"stem": stem})
    g = compiled.graph
    assert g.node("stem").meta["kernel"] == stem
    assert [g.node(n).meta["kernel"] for n in ("dw", "pw", "dw2", "pw2", "dw3")] == \
        ["nchw16c.depthwise", "nchw16c.pointwise", "nchw16c.depthwise", "nchw16c.pointwise",
         "nchw16c.depthwise"]
    assert g.node("pool").meta.get("reads") == "blocks"
    wide = "pixels x CNN_WIDE_NB blocks (runtime" in compiled.c_source
    assert wide == (kwargs.get("mid", 40) > 48)  # four output blocks or more
    wide_stem = "pixels x CNN_WIDE_NB blocks along each output row"
    assert (wide_stem in compiled.c_source) == (stem == "nchw_to_nchw16c.shifted" and
                                                kwargs.get("channels", 24) > 48)


@pytest.mark.parametrize("run,wide,tile", [
    (49, True, "CNN_TILE7_MR"),    # 7x7: 7 tiles of 7 against 9 of 6
    (49, False, "CNN_TILE7_MR"),   # ... and 7 of 8
    (7, False, "CNN_TILE7_MR"),    # a row of 7: one tile, not 7 single pixels
    (14, True, "CNN_TILE7_MR"),    # rows of 14: no tile of 2 left over
    (196, True, "CNN_WIDE_MR"),   # 14x14: 198 pixels computed against 196, too few to gain
    (196, False, "CNN_TILE_MR"),
    (12, True, "CNN_WIDE_MR"),    # 6 divides it
    (5, True, "CNN_WIDE_MR"),     # fewer than a tile: one pixel at a time, as before
    (5, False, "CNN_TILE_MR"),
])
def test_seven_pixel_tiles_where_they_compute_fewer_pixels(run, wide, tile):
    assert pixel_tile(run, wide) == tile


@pytest.mark.parametrize("build,kwargs,shape,layer", [
    (separable, dict(channels=16, mid=64, stride=1), (1, 3, 7, 7), "pw"),  # 7 tiles, 4 blocks
    (separable, dict(channels=16, mid=32, stride=1), (1, 3, 7, 7), "pw"),  # ... 2 blocks
    (separable, dict(channels=16, mid=48, stride=1), (1, 3, 1, 7), "pw"),  # one tile, 3 blocks
    (residual, dict(channels=64), (1, 3, 28, 28), "down"),  # direct on rows of 14
    (residual, dict(channels=48), (1, 3, 14, 14), "down"),  # ... of 7, 3 blocks
    (pooled, dict(channels=16, out=16, pool=(1, 1, 0, 1, False)), (1, 3, 10, 14), "stem"),
])
def test_seven_pixel_tiles_match_the_reference_and_torch(build, kwargs, shape, layer):
    model, twin = twins(build, **kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 3), torch_model=twin)
    assert kernels.get(compiled.graph.node(layer)).layout_out == layout.BLOCKS
    assert compiled.c_source.count("tiles of CNN_TILE7_MR pixels") >= 1


@pytest.mark.parametrize("shape,kwargs", [
    ((1, 3, 16, 16), {}),
    ((1, 3, 13, 11), dict(channels=16, out=33, pool=(3, 2, 1, 1, False), act=False)),
    ((1, 3, 9, 14), dict(channels=48, out=16, pool=(3, 1, 1, 2, False), stride=2)),
    ((1, 3, 7, 5), dict(channels=40, out=1, pool=(2, 2, 0, 1, True))),
    ((1, 3, 2, 2), dict(channels=16, out=17, pool=(3, 3, 1, 1, True))),
    ((1, 3, 21, 19), dict(channels=64, out=64, pool=(3, 2, 1, 1, True), stride=2)),
])
def test_pooled_convolutions_on_blocks_match_the_reference_and_torch(shape, kwargs):
    """nchw16c.direct on awkward shapes, and max pools inside a run and at its end: 1 to 64
    channels, 2x2 to 21x19 images, pooling with padding, dilation and ceil_mode."""
    model, twin = twins(pooled, **kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 3), torch_model=twin)
    g = compiled.graph
    assert [g.node(n).meta["kernel"] for n in ("stem", "conv")] == ["nchw_to_nchw16c.shifted",
                                                                     "nchw16c.direct"]
    assert g.node("pool").meta["layout"] == "blocks"
    assert g.node("pool2").meta.get("reads") == "blocks" and "layout" not in g.node("pool2").meta
    assert not any(n.op == "reorder" for n in g.nodes())
    assert_memory_plan_safe(g)


@pytest.mark.parametrize("shape,channels,winograd", [
    ((1, 3, 32, 32), 64, "nchw16c.winograd_f4x4"),
    ((1, 3, 17, 15), 80, "nchw16c.winograd_f2x2"),  # 9 x 8 after the stride: partial tiles
    ((1, 3, 32, 32), 77, "nchw16c.winograd_f4x4"),  # 13 channels in the last block
    ((1, 3, 17, 15), 88, "nchw16c.winograd_f2x2"),  # 8 channels in the last block
    ((1, 3, 72, 72), 64, "nchw16c.winograd_f4x4"),  # 81 tiles: two tile blocks
])
def test_winograd_layers_run_on_blocks_inside_a_run(shape, channels, winograd):
    model, twin = twins(residual, channels=channels)
    compiled = check_against_reference(model, shape, batches=(1, 2), torch_model=twin)
    g = compiled.graph
    assert g.node("down").meta["kernel"] == "nchw16c.direct"
    for name in ("conv", "conv2"):
        assert g.node(name).meta["kernel"] == winograd and g.node(name).meta["layout"] == "blocks"
    assert g.input_names("conv2")[1:] == ["down"]  # the residual, blocked
    assert not any(n.op == "reorder" for n in g.nodes())
    # four layers, each value read by the next or the one after: nothing left to reuse
    # beside the transforms' scratch
    assert_memory_plan_safe(g, reused=False)


def unpadded_stem(nn, F, in_channels=3, channels=16, kernel=2, stride=2, dilation=1):
    """An unpadded stem (nchw_to_nchw16c.shifted reading its input in place) -> depthwise -> 1x1."""
    return nn.Sequential(nn.Conv2d(in_channels, channels, kernel, stride=stride,
                                   dilation=dilation), nn.ReLU(),
                         nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
                         nn.Conv2d(channels, 24, 1))


@pytest.mark.parametrize("shape,kwargs", [
    ((1, 1, 38, 30), dict(in_channels=1)),                    # 19 x 15: a partial last tile
    ((1, 3, 13, 11), dict(channels=20, kernel=3, stride=1, dilation=2)),  # rows of 7 pixels
    ((1, 2, 5, 9), dict(in_channels=2, channels=32, kernel=(2, 3), stride=(1, 2))),
    ((1, 3, 3, 3), dict(kernel=3, stride=1)),                 # one output pixel
])
def test_unpadded_stems_read_their_input_in_place(shape, kwargs):
    model, twin = twins(unpadded_stem, **kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 3), torch_model=twin)
    assert compiled.graph.node("0").meta["kernel"] == "nchw_to_nchw16c.shifted"
    assert "the unpadded input read in place" in compiled.c_source
    assert "scratch" not in compiled.graph.node("0").meta  # no phase planes


def depthwise_pointwise(nn, F, channels=16, out=16):
    return nn.Sequential(nn.Conv2d(channels, channels, 3, groups=channels, padding=1),
                         nn.ReLU(), nn.Conv2d(channels, out, 1))


@pytest.mark.parametrize("shape", [(1, 16, 1, 4), (1, 16, 2, 2), (1, 16, 1, 1)])
def test_small_pointwise_layers_prefetch_only_inside_their_weights(shape):
    """16 -> 16 channels on 1 to 4 pixels, compiled with -Werror: GCC proved the weight
    prefetch 32 vectors ahead to lie past the layer's 256 weights (-Warray-bounds)."""
    model, twin = twins(depthwise_pointwise)
    compiled = check_against_reference(model, shape, batches=(1, 2), torch_model=twin)
    assert compiled.graph.node("2").meta["kernel"] == "nchw16c.pointwise"


@pytest.mark.parametrize("shape,kwargs,panels", [
    ((1, 3, 34, 30), dict(channels=16, out=32), True),   # 17x15: partial tiles, 20 of them
    ((1, 3, 32, 32), dict(channels=32, out=20), True),   # 16 tiles; 4 channels in block 2
    ((1, 3, 40, 36), dict(channels=48, out=48, pool=(3, 2, 1, 1, False)), True),  # 25 tiles
    ((1, 3, 34, 34), dict(channels=64, out=48), False),  # a panel's V and M: 144 KiB
])
def test_small_winograd_layers_run_on_blocks_panel_by_panel(shape, kwargs, panels):
    """A 3x3 layer with fewer than 64 output channels and 16 or more 4x4 tiles takes
    Winograd on blocks instead of nchw16c.direct; with V and M of a panel of 8 tiles in
    128 KiB, each thread takes its panels through all three steps."""
    model, twin = twins(pooled, **kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 3), torch_model=twin)
    g = compiled.graph
    assert g.node("conv").meta["kernel"] == "nchw16c.winograd_f4x4"
    assert g.node("conv").meta["layout"] == "blocks"
    assert ("a panel of CNN_MR tiles at a time" in compiled.c_source) == panels
    # on planes (an override to the planes kernel keeps the layer there), no Winograd
    g = build_graph(model, shape, kernels={"conv": "nchw.shifted_gemm"})
    assert "layout" not in g.node("conv").meta


@pytest.mark.parametrize("shape,down", [
    ((1, 3, 12, 12), "nchw16c.direct"),  # 6x6 out: rows of 5 or more pixels, 3 bands of 2
    ((1, 3, 14, 14), "nchw16c.direct"),  # 7x7 out: bands of 2 rows, the last of 1
    ((1, 3, 8, 8), "nchw.im2row_gemm"),     # 4x4 out: the GEMM's 16-row tiles do better
])
def test_direct_replaces_im2row_on_rows_of_five_pixels_or_more(shape, down):
    """128 channels on a small image: planes would take nchw.im2row_gemm for the stride-2 layer.
    Its weights outweigh its input, so nchw16c.direct loops over output blocks outermost."""
    model, twin = twins(residual, channels=128)
    compiled = check_against_reference(model, shape, batches=(1, 2), torch_model=twin)
    g = compiled.graph
    assert g.node("down").meta["kernel"] == down
    assert (g.node("down").meta.get("layout") == "blocks") == (down == "nchw16c.direct")
    if down == "nchw16c.direct":
        assert "output blocks outermost, the weights outweighing the input" in compiled.c_source
        assert "a band of 2 rows of one group of output blocks" in compiled.c_source
    assert_memory_plan_safe(g, reused=False)


def grouped(nn, F, channels=64, groups=4, stride=1):
    """1x1 -> grouped 3x3 (ReLU) -> 1x1, as a ResNeXt or RegNet block computes it."""
    return nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(),
                         nn.Conv2d(channels, channels, 3, stride=stride, padding=1,
                                   groups=groups), nn.ReLU(),
                         nn.Conv2d(channels, 24, 1))


@pytest.mark.parametrize("shape,kwargs,kernel", [
    ((1, 64, 9, 9), dict(groups=4), "nchw16c.direct"),      # a block a group
    ((1, 64, 8, 11), dict(groups=2, stride=2), "nchw16c.direct"),  # two blocks a group
    ((1, 400, 7, 7), dict(channels=400, groups=25), "nchw16c.direct"),
    ((1, 104, 6, 6), dict(channels=104, groups=13), "nchw16c.direct"),  # 8 a group, 2 a block
    ((1, 48, 7, 7), dict(channels=48, groups=12), "nchw.shifted_gemm"),  # 4 a group
])
def test_grouped_convolutions_run_on_blocks(shape, kwargs, kernel):
    """Groups of whole blocks read only their own input blocks; groups of 8 channels share a
    block with zero weights between them; narrower groups stay on planes."""
    model, twin = twins(grouped, **kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 2), torch_model=twin)
    g = compiled.graph
    assert g.node("2").meta["kernel"] == kernel
    assert (g.node("2").meta.get("layout") == "blocks") == (kernel == "nchw16c.direct")
    if kernel == "nchw16c.direct":
        assert "each reading its own input blocks" in compiled.c_source
    assert_memory_plan_safe(g)


def test_max_pools_on_blocks_let_nan_win_and_never_padding():
    """Negative values under padded windows (no ReLU), NaN in one input pixel: every output
    its window reaches is NaN, as in torch."""
    model, twin = twins(pooled, channels=16, out=16, pool=(3, 2, 1, 1, False), act=False)
    compiled = cnncompile.compile(model, (1, 3, 12, 12), werror=True)
    assert compiled.graph.node("pool").meta["layout"] == "blocks"
    x = random_input((2, 3, 12, 12)) - 0.5
    x[1, 0, 5, 6] = np.nan
    y, expected = compiled(x), run_torch(twin, x)
    assert np.isnan(y[1]).sum() == np.isnan(expected[1]).sum() > 0
    assert not np.isnan(y[0]).any()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5, equal_nan=True)


def test_direct_convolutions_join_runs_when_their_channels_fill_blocks():
    """A 3x3 layer joins a run on blocks when its input channels fill their blocks to 4/5 (40
    of 48 do, 20 of 32 do not); the pooling that ends a run reads blocks only on rows of up
    to 256 pixels; without a run, a stem writes blocks for its pooling only when its output
    channels fill their blocks."""
    g = build_graph(twins(pooled, channels=40)[0], (1, 3, 10, 10))
    assert g.node("conv").meta["kernel"] == "nchw16c.direct"
    g = build_graph(twins(pooled, channels=20)[0], (1, 3, 10, 10))
    assert g.node("conv").meta["kernel"] == "nchw.shifted_gemm"
    assert g.node("stem").meta["kernel"] == "nchw.shifted_gemm"  # 20 channels: not worth it
    assert not any("layout" in n.meta or "reads" in n.meta for n in g.nodes())
    g = build_graph(twins(pooled, channels=32, pool=(1, 1, 0, 1, False))[0], (1, 3, 4, 514))
    assert g.node("pool2").meta["shape"][3] == 257
    assert "reads" not in g.node("pool2").meta and g.node("pool2").meta["layout"] == "blocks"
    assert g.outputs == ["pool2.to_planes"]


def conv_pool(nn, F, in_channels=3, channels=10, kernel=3, pool=4, act=False):
    """conv -> max pool -> 3x3 conv on 20 channels: seed_quiz's shape."""
    class ConvPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, channels, kernel)
            self.pool = nn.MaxPool2d(pool)
            self.head = nn.Conv2d(channels, 20, 3)

        def forward(self, x):
            x = self.conv(x)
            return self.head(self.pool(F.relu(x) if act else x))
    return ConvPool()


@pytest.mark.parametrize("shape,kwargs,entry", [
    ((1, 3, 34, 30), dict(), True),                              # 10 channels: 16 either way
    ((1, 6, 12, 13), dict(in_channels=6, channels=12, kernel=5, pool=2, act=True), True),
    ((2, 1, 28, 28), dict(in_channels=1, channels=6, kernel=5, pool=2), False),  # 16 against 8
    ((1, 3, 20, 20), dict(channels=20, pool=2), False),          # 32 against 24
])
def test_stems_write_blocks_for_their_pooling_where_the_gemm_pads_as_much(shape, kwargs, entry):
    """Without a run, a stem writes blocks for the max pooling after it (which writes planes)
    when its output channels fill their blocks, or when the shifted GEMM's panels of 8
    weight rows would hold as many padding channels as the blocks."""
    model, twin = twins(conv_pool, **kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 3), torch_model=twin)
    g = compiled.graph
    assert g.node("conv").meta["kernel"] == ("nchw_to_nchw16c.shifted" if entry else "nchw.shifted_gemm")
    assert (g.node("pool").meta.get("reads") == "blocks") == entry
    assert not any(n.op == "reorder" for n in g.nodes())
    assert g.node("head").meta["kernel"] != "nchw_to_nchw16c.shifted"


def test_reorders_sit_at_the_edges_of_a_run():
    model, _ = pair()
    g = build_graph(model, (1, 3, 17, 13))
    reorders = {n.name: (g.input_names(n.name), n.attrs["to"]) for n in g.nodes()
                if n.op == "reorder"}
    # the stem writes blocks; back to planes once, for the reader on planes; the 3x3 head
    # joins the run (nchw16c.direct) and goes back to planes after it
    assert reorders == {"dw3.to_planes": (["dw3"], "planes"),
                        "head.to_planes": (["head"], "planes")}
    assert g.node("stem").meta["kernel"] == "nchw_to_nchw16c.shifted"
    assert g.node("head").meta["kernel"] == "nchw16c.direct"
    assert g.input_names("dw") == ["stem"]
    assert g.input_names("pw2") == ["dw2", "pw"]  # the residuals stay blocked
    assert g.input_names("dw3") == ["pw2", "pw2"]
    assert g.input_names("pool") == ["dw3"]       # global average pooling reads blocks
    assert g.users("dw3.to_planes") == ["sigmoid"]
    assert g.node("pw").meta["layout"] == "blocks"
    # a stem kept on planes gets a reorder into blocks, shared by both its readers
    g = build_graph(model, (1, 3, 17, 13), kernels={"stem": "nchw.shifted_gemm"})
    assert g.input_names("dw") == ["stem.to_blocks"] and g.users("stem") == ["stem.to_blocks"]


def test_a_lone_depthwise_layer_and_overrides_stay_on_planes():
    class Lone(cnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = cnn.Conv2d(3, 8, 3)
            self.dw = cnn.Conv2d(8, 8, 3, groups=8)

        def forward(self, x):
            return self.dw(self.conv(x))
    g = build_graph(Lone(), (1, 3, 9, 9))
    assert g.node("dw").meta["kernel"] in ("nchw.depthwise_rows", "nchw.depthwise_planes")
    assert not any(n.op == "reorder" for n in g.nodes())
    # an override to a planes kernel keeps that layer out of the run
    model, _ = pair()
    g = build_graph(model, (1, 3, 17, 13), kernels={"dw": "nchw.depthwise_rows", "pw2": "nchw.gemm_1x1"})
    assert g.node("dw").meta["kernel"] == "nchw.depthwise_rows" and "layout" not in g.node("dw").meta
    assert g.node("pw").meta["kernel"] == "nchw16c.pointwise"
    assert g.node("pw2").meta["kernel"] == "nchw.gemm_1x1"
    # ... and one to a blocked kernel puts a lone layer on blocks
    g = build_graph(Lone(), (1, 3, 9, 9), kernels={"dw": "nchw16c.depthwise"})
    assert [n.op for n in g.nodes()] == ["input", "conv2d", "conv2d", "reorder"]
    assert g.node("conv").meta["kernel"] == "nchw_to_nchw16c.shifted"  # writes the blocks dw reads
    assert g.outputs == ["dw.to_planes"]
    g = build_graph(Lone(), (1, 3, 9, 9), kernels={"conv": "nchw_to_nchw16c.shifted"})
    assert [n.op for n in g.nodes()] == ["input", "conv2d", "reorder", "conv2d"]
    assert g.input_names("dw") == ["conv.to_planes"]


def strided(nn, F, stem_in=1, stem=16, out=32):
    """stem (stride 2) -> 3x3 stride-2 conv -> 2x2 stride-2 transposed conv (sigmoid): the
    autoencoder's shape of encoder and decoder."""
    class Strided(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(stem_in, stem, 3, stride=2, padding=1)
            self.conv = nn.Conv2d(stem, out, 3, stride=2, padding=1)
            self.up = nn.ConvTranspose2d(out, 3, 2, stride=2)

        def forward(self, x):
            return F.sigmoid(self.up(F.relu(self.conv(F.relu(self.stem(x))))))
    return Strided()


def test_a_lone_direct_layer_runs_on_blocks_when_its_stem_writes_them():
    """One gaining layer makes a run when every input comes from a convolution that writes
    blocks for it: no reorder in, one out. 16 -> 32 channels on 13x15 -> 7x8 -> 4x4."""
    model, twin = twins(strided)
    compiled = check_against_reference(model, (1, 1, 13, 15), batches=(1, 2),
                                       torch_model=twin)
    g = compiled.graph
    assert [(n.name, n.meta.get("kernel")) for n in g.nodes()] == [
        ("input", None), ("stem", "nchw_to_nchw16c.shifted"), ("conv", "nchw16c.direct"),
        ("conv.to_planes", None), ("up", "nchw.gemm_interleave")]
    assert_memory_plan_safe(g)
    # a first layer too large to write blocks (36 input channels x 9 taps), and too sparse
    # on blocks to run on them (36 of 48 channels), keeps the lone layer on planes
    g = build_graph(twins(strided, stem_in=36)[0], (1, 36, 13, 15))
    assert g.node("stem").meta["kernel"] != "nchw_to_nchw16c.shifted"
    assert g.node("conv").meta["kernel"] == "nchw.shifted_gemm"
    assert not any(n.op == "reorder" for n in g.nodes())


@pytest.mark.parametrize("threads", [1, 2])
def test_large_global_pools_on_blocks_sum_their_pixels_in_parts(threads):
    """64 channels on 33x33 (69,696 floats): the pool reading the blocks sums 8 parts of its
    1,089 pixels (136 or 137 each) on the threads, then adds the parts; the same numbers on
    one thread or two."""
    model, twin = pair(channels=16, mid=64)
    compiled = check_against_reference(model, (1, 3, 66, 66), batches=(1, 2), torch_model=twin,
                                       num_threads=threads)
    g = compiled.graph
    assert g.node("pool").meta["reads"] == "blocks"
    assert "the pixels in 8 parts" in compiled.c_source
    assert_memory_plan_safe(g)
    x = random_input((2, 3, 66, 66))
    compiled.num_threads = 3 - threads
    other = compiled(x)
    compiled.num_threads = threads
    np.testing.assert_array_equal(compiled(x), other)


def expansion(nn, F):
    """stem -> 1x1 expansion 32 -> 192 (ReLU6) -> depthwise, as MobileNetV2's on 28x28."""
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 192, 1),
                         nn.ReLU6(), nn.Conv2d(192, 192, 3, padding=1, groups=192))


@pytest.mark.parametrize("size", [28, 23])
def test_pointwise_chunks_are_shared_evenly_and_cover_every_pixel(size):
    """The 1x1 layer's pixel tiles go in chunks whose count is a multiple of the threads a
    call may have (runtime/cnn_nchw16c_pointwise.h: cnn_pointwise_chunk): 28x28 is 130 tiles of 6
    pixels, 8 chunks for two threads, 9 for three; 23x23 leaves a partial tile. Every pixel is
    computed on 1, 2 or 3 threads, with the same numbers."""
    model, twin = twins(expansion)
    compiled = check_against_reference(model, (1, 3, size, size), batches=(1, 2),
                                       torch_model=twin, num_threads=2)
    assert compiled.graph.node("2").meta["kernel"] == "nchw16c.pointwise"
    assert "cnn_pointwise_chunk(2, CNN_WIDE_MR, steps, cnn_team_if(1))" in compiled.c_source
    x = random_input((2, 3, size, size))
    want = compiled(x)
    for threads in (1, 3):
        compiled.num_threads = threads
        np.testing.assert_array_equal(compiled(x), want)


def test_depthwise_layers_on_blocks_get_threads_from_half_a_megaflop():
    """MobileNetV2's 7x7 depthwise layers (960 channels, 0.85 MFLOP) run on the threads that
    wrote their input (ops/conv.py: BLOCKED_DEPTHWISE_SLOWDOWN); one of 64 channels
    (0.06 MFLOP) stays on one thread."""
    def block(nn, F, channels):
        return nn.Sequential(nn.Conv2d(160, channels, 1), nn.ReLU6(),
                             nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
                             nn.ReLU6(), nn.Conv2d(channels, 160, 1))
    for channels, threads in ((960, 1), (64, 0)):
        model, twin = twins(block, channels=channels)
        compiled = check_against_reference(model, (1, 160, 7, 7), batches=(1, 2),
                                           torch_model=twin, num_threads=2)
        assert compiled.graph.node("2").meta["kernel"] == "nchw16c.depthwise"
        body = compiled.c_source.split("static void layer_2(")[1].split("static void")[0]
        assert f"cnn_parallel({threads}," in body


def test_blocked_kernels_refuse_what_they_cannot_compute():
    model, _ = pair()
    with pytest.raises(ValueError, match="kernel 'nchw16c.pointwise' cannot compute"):
        build_graph(model, (1, 3, 17, 13), kernels={"stem": "nchw16c.pointwise"})
    with pytest.raises(ValueError, match="kernel 'nchw16c.depthwise' cannot compute"):
        build_graph(model, (1, 3, 17, 13), kernels={"pw": "nchw16c.depthwise"})


def test_blocked_buffers_hold_whole_blocks():
    """17 and 33 channels take 2 and 3 blocks of 16: the memory plan sizes them so."""
    model, twin = pair(channels=17, mid=33)
    g = build_graph(model, (1, 3, 6, 6))
    assert layout.floats(g.node("pw").shape) == 48 * 3 * 3  # stride 2: 3x3 pixels
    assert_memory_plan_safe(g)
    x = random_input((2, 3, 6, 6))
    assert_close(cnncompile.compile(model, (1, 3, 6, 6))(x), run_torch(twin, x))


@pytest.mark.parametrize("flags", [PORTABLE_FLAGS, PORTABLE_FLAGS + ["-DCNN_NO_VECTOR_EXTENSIONS"]],
                         ids=["portable", "no-vector-extensions"])
def test_blocked_kernels_in_portable_c(flags, tmp_path):
    for (model, twin), shape in ((pair(channels=20, mid=36), (1, 3, 11, 10)),
                                 (twins(pooled, out=33, pool=(3, 2, 1, 1, True)), (1, 3, 9, 13)),
                                 (twins(residual, channels=80), (1, 3, 17, 15)),
                                 (twins(pooled, channels=16, out=20), (1, 3, 34, 30)),
                                 (twins(unpadded_stem, in_channels=1), (1, 1, 38, 30)),
                                 (pair(channels=16, mid=64), (1, 3, 66, 66)),  # pool parts
                                 (pair(channels=16, mid=64, stride=1), (1, 3, 7, 7)),  # 7-tiles
                                 (twins(pointwise_depthwise, mid=64), (1, 3, 64, 64))):  # pipelined
        compiled = cnncompile.compile(model, shape, flags=flags, werror=True,
                                      cache_dir=tmp_path)
        x = random_input((2,) + shape[1:], seed=5)
        assert_close(compiled(x), run_torch(twin, x))
        assert np.isfinite(compiled(x)).all()


def pointwise_depthwise(nn, F, channels=8, mid=40, kernel=3, stride=1, padding=1, dilation=1,
                        bias=True, skip=False):
    """stem -> 1x1 (ReLU6) -> depthwise (ReLU) -> 1x1 head; skip: the depthwise layer adds a
    projection of the stem's output (fused into its epilogue)."""
    class PointwiseDepthwise(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, channels, 3, padding=1)
            self.proj = nn.Conv2d(channels, mid, 1, stride=stride)
            self.pw = nn.Conv2d(channels, mid, 1)
            self.dw = nn.Conv2d(mid, mid, kernel, stride=stride, padding=padding,
                                dilation=dilation, groups=mid, bias=bias)
            self.head = nn.Conv2d(mid, 8, 1)

        def forward(self, x):
            s = self.stem(x)
            p = self.proj(s) if skip else None
            z = self.dw(F.relu6(self.pw(s)))
            return self.head(F.relu(z + p if skip else z))
    return PointwiseDepthwise()


@pytest.fixture
def pipeline_every_pair(monkeypatch):
    """Pipeline 1x1 -> depthwise pairs of any size, so that small images exercise it."""
    import importlib
    monkeypatch.setattr(importlib.import_module("cnncompile.passes.pipeline_pointwise"),
                        "PIPELINE_MIN_BYTES", 0)


@pytest.mark.parametrize("shape,kwargs,threads", [
    ((1, 3, 9, 7), dict(), 1),                                       # 40 channels: 8 in a block
    ((1, 3, 11, 10), dict(mid=64, stride=2), 2),                     # odd rows, wide tiles
    ((1, 3, 6, 13), dict(mid=17, kernel=5, padding=2, bias=False), 3),  # 3 bands of 6 rows
    ((1, 3, 10, 9), dict(mid=33, padding=2, dilation=2), 2),         # a ring of 5 rows
    ((1, 3, 9, 30), dict(mid=20, kernel=7, stride=2, padding=6, dilation=2), 2),  # tiles read
    # 19 columns: more than the registers the tile loads them into (CNN_DW_COLS)
    ((1, 3, 8, 8), dict(stride=2, padding=0), 2),                    # no padding
    ((1, 3, 1, 1), dict(mid=16), 2),                                 # one pixel
    ((1, 3, 5, 3), dict(mid=24), 1),                                 # rows shorter than a tile
    ((1, 3, 12, 14), dict(mid=48, skip=True), 2),                    # a residual on the depthwise
    ((1, 3, 13, 9), dict(mid=32, skip=True, stride=2), 4),           # ... with a stride
])
def test_pipelined_pointwise_depthwise_matches_the_reference_and_torch(
        pipeline_every_pair, shape, kwargs, threads):
    """The depthwise layer computes the 1x1 layer's rows into its rings: strides, dilation,
    5x5 and 7x7 kernels (more weights than the tile holds in registers), partial blocks, 1-pixel images, rows shorter than a pixel tile, a residual,
    and bands of rows shared by 1 to 4 threads (4 bands: more threads than rows here)."""
    model, twin = twins(pointwise_depthwise, **kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 3), torch_model=twin,
                                       num_threads=threads)
    g = compiled.graph
    assert g.node("dw").meta["pipelined_from"] == "pw" and g.node("pw").meta["buffer"] is None
    assert "static void layer_dw(" in compiled.c_source  # one function, the 1x1 layer's inside
    assert "layer_pw" not in compiled.c_source
    assert ("residual" in g.node("dw").meta) == kwargs.get("skip", False)
    assert_memory_plan_safe(g, reused=False)


def test_a_pipelined_pointwise_layer_tiles_its_rows(pipeline_every_pair):
    """Computed a row at a time, a 1x1 layer takes the pixel tile for its rows: rows of 14
    are two tiles of 7, where its 84-pixel plane keeps the usual tile."""
    model, twin = twins(pointwise_depthwise, mid=40)
    compiled = check_against_reference(model, (1, 3, 6, 14), batches=(1, 2), torch_model=twin)
    assert compiled.graph.node("pw").meta["reader"] == "depthwise"
    assert "in tiles of CNN_TILE7_MR pixels" in compiled.c_source
    assert pixel_tile(6 * 14, wide=False) == "CNN_TILE_MR"


def pointwise_pool(nn, F, channels=8, mid=40, bias=True):
    """stem -> 1x1 (ReLU) -> global average pool -> linear: seed_separable's head."""
    class PointwisePool(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, channels, 3, padding=1)
            self.dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
            self.pw = nn.Conv2d(channels, mid, 1, bias=bias)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(mid, 5)

        def forward(self, x):
            return self.fc(self.pool(F.relu(self.pw(self.dw(self.stem(x))))).flatten(1))
    return PointwisePool()


@pytest.mark.parametrize("shape,kwargs,threads", [
    ((1, 3, 9, 7), dict(), 1),                         # 63 pixels: parts of 7 and 8
    ((1, 3, 11, 10), dict(mid=64), 2),                 # wide tiles
    ((1, 3, 1, 1), dict(mid=16), 2),                   # one pixel: one part
    ((1, 3, 5, 5), dict(mid=17, bias=False), 3),       # a partial block, no bias
    ((1, 3, 32, 33), dict(mid=48), 2),                 # parts of 132 pixels: runs of 24, then 12
])
def test_pipelined_pointwise_pool_matches_the_reference_and_torch(
        pipeline_every_pair, shape, kwargs, threads):
    """The global average pool computes the 1x1 layer's outputs a run of pixels at a time and
    adds each tile into its sums: partial blocks and tiles, parts of unequal size, 1 pixel."""
    model, twin = twins(pointwise_pool, **kwargs)
    compiled = check_against_reference(model, shape, batches=(1, 3), torch_model=twin,
                                       num_threads=threads)
    g = compiled.graph
    assert g.node("pool").meta["pipelined_from"] == "pw" and g.node("pw").meta["buffer"] is None
    assert "static void layer_pool(" in compiled.c_source and "layer_pw" not in compiled.c_source
    assert_memory_plan_safe(g, reused=False)


@settings(max_examples=max(5, int(os.environ.get("CNNCOMPILE_FUZZ_EXAMPLES", "25")) // 2),
          deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 19), w=st.integers(1, 19), channels=st.integers(1, 20),
       mid=st.integers(2, 70), kernel=st.integers(1, 5), stride=st.integers(1, 3),
       padding=st.integers(0, 2), dilation=st.integers(1, 2), bias=st.booleans(),
       reader=st.sampled_from(["depthwise", "skip", "pool"]), threads=st.integers(1, 3))
def test_random_pipelined_pairs_match_the_reference_and_torch(pipeline_every_pair, h, w,
                                                              channels, mid, kernel, stride,
                                                              padding, dilation, bias, reader,
                                                              threads):
    """Drawn 1x1 -> depthwise (with or without a residual) and 1x1 -> global pool pairs, every
    one pipelined (the fixture's threshold holds for every drawn example), against the
    reference and torch."""
    def out(size):
        return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if reader == "pool":
        model, twin = twins(pointwise_pool, channels=channels, mid=mid, bias=bias)
    else:
        assume(out(h) >= 1 and out(w) >= 1)
        # the skip is a strided 1x1 projection: the same output size as the depthwise layer
        assume(reader != "skip" or (out(h), out(w)) == ((h - 1) // stride + 1,
                                                          (w - 1) // stride + 1))
        model, twin = twins(pointwise_depthwise, channels=channels, mid=mid, kernel=kernel,
                            stride=stride, padding=padding, dilation=dilation, bias=bias,
                            skip=reader == "skip")
    compiled = check_against_reference(model, (1, 3, h, w), batches=(2,), torch_model=twin,
                                       num_threads=threads)
    reader_node = compiled.graph.node("pool" if reader == "pool" else "dw")
    assert reader_node.meta["pipelined_from"] == "pw"
    assert_memory_plan_safe(compiled.graph, reused=False)


def test_only_large_pointwise_outputs_read_by_a_depthwise_alone_are_pipelined():
    """From PIPELINE_MIN_BYTES of 1x1 output (smaller ones stay in L2 between two layers), and
    only when the depthwise layer is the output's one reader."""
    model, twin = twins(pointwise_depthwise, mid=64)
    g = build_graph(model, (1, 3, 64, 64))  # 64 channels x 64 x 64: 1 MiB
    assert g.node("dw").meta["pipelined_from"] == "pw"
    assert g.node("dw").meta["fused"][0] == {"layer": "pw", "op": "1x1 conv2d, pipelined"}
    assert_memory_plan_safe(g)
    x = random_input((2, 3, 64, 64))
    compiled = cnncompile.compile(model, (1, 3, 64, 64), werror=True)
    assert_close(compiled(x), run_torch(twin, x))
    rows = {r[0]: r for r in compiled.profile(x[:1], repeat=1, warmup=0, layers=True)["layers"]}
    assert rows["dw (+ pw)"][3] > 0 and "pw" not in rows  # both layers' FLOPs, one call
    g = build_graph(model, (1, 3, 63, 64))
    assert not any("pipelined_from" in n.meta for n in g.nodes())
    model, _ = pair(channels=16, mid=64, stride=1)  # its 1x1 output is also the skip's
    g = build_graph(model, (1, 3, 80, 80))
    assert g.node("pw2").meta["kernel"] == "nchw16c.pointwise" and not any(
        "pipelined_from" in n.meta for n in g.nodes())
