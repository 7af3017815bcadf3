"""Numeric edge cases, compiled against torch: NaN and infinities, -0.0, denormals, softmax of
large logits, ceil_mode windows that start in the padding, count_include_pad both ways,
BatchNorm with a variance near zero, and a batch of zero samples."""
import numpy as np
import pytest
import torch

import cnncompile
import cnncompile.nn as nn
from helpers import random_input, run_torch, torch_twin


def twins(build):
    cnncompile.manual_seed(7)
    model = build(nn).eval()
    return model, torch_twin(model, build(torch.nn))


def same_as_torch(compiled, twin, x):
    """Equal to torch to float32 precision, with NaN where torch has NaN and infinities and
    signs of zero where torch has them."""
    y, want = compiled(x), run_torch(twin, x)
    assert y.shape == want.shape
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(y) & (y > 0), np.isinf(want) & (want > 0))
    np.testing.assert_array_equal(np.isinf(y) & (y < 0), np.isinf(want) & (want < 0))
    finite = np.isfinite(want)
    np.testing.assert_allclose(y[finite], want[finite], rtol=1e-4, atol=1e-5)
    return y, want


def special_input(shape, seed=0):
    x = random_input(shape, seed).ravel()
    rng = np.random.default_rng(seed)
    idx = rng.choice(x.size, size=min(x.size, 12), replace=False)
    specials = [np.nan, np.inf, -np.inf, -0.0, 1e-40, -1e-40, 3e38, -3e38, np.nan, np.inf,
                -np.inf, -0.0]
    x[idx] = np.array(specials[:len(idx)], np.float32)
    return x.reshape(shape)


@pytest.mark.parametrize("act", ["ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "Hardswish",
                                 "Hardsigmoid", "ELU", "SiLU", "GELU", "Hardtanh"])
def test_activations_and_max_pool_on_nan_inf_and_signed_zero(act):
    model, twin = twins(lambda n: n.Sequential(getattr(n, act)(), n.MaxPool2d(2, ceil_mode=True)))
    compiled = cnncompile.compile(model, (1, 2, 5, 5))
    x = special_input((3, 2, 5, 5))
    if act == "GELU":  # torch's CPU GELU gives NaN at +-inf and overflows at 3e38 (its
        # x * (1 + erf) comes first); cnncompile gives the limits and 3e38
        huge = ~np.isnan(x) & (np.abs(x) > 1e30)
        x[huge] = np.sign(x[huge]) * 50
    same_as_torch(compiled, twin, x)


def test_relu_of_negative_zero_and_denormals_matches_torch_bit_for_bit():
    model, twin = twins(lambda n: n.Sequential(n.ReLU()))
    compiled = cnncompile.compile(model, (1, 8))
    x = np.array([[-0.0, 0.0, 1e-40, -1e-40, 1e-45, -1e-45, np.nan, -np.inf]], np.float32)
    y, want = compiled(x), run_torch(twin, x)
    np.testing.assert_array_equal(y.view(np.uint32)[:, :6], want.view(np.uint32)[:, :6])
    assert np.isnan(y[0, 6]) and y[0, 7] == 0


def test_convolution_and_linear_propagate_infinities_and_nan():
    model, twin = twins(lambda n: n.Sequential(n.Conv2d(2, 3, 3, padding=1), n.Flatten(),
                                               n.Linear(3 * 4 * 4, 5)))
    compiled = cnncompile.compile(model, (1, 2, 4, 4))
    x = random_input((2, 2, 4, 4))
    x[0, 0, 1, 1] = np.inf
    x[1, 1, 2, 2] = np.nan
    same_as_torch(compiled, twin, x)


@pytest.mark.parametrize("scale", [1.0, 1e4, 1e30])
def test_softmax_of_large_logits(scale):
    model, twin = twins(lambda n: n.Sequential(n.Flatten(), n.Softmax(dim=1)))
    compiled = cnncompile.compile(model, (1, 3, 2, 2))
    x = random_input((4, 3, 2, 2)) * np.float32(scale)
    y, _ = same_as_torch(compiled, twin, x)
    assert np.all(np.isfinite(y)) and np.allclose(y.sum(axis=1), 1, atol=1e-5)
    logsm, logsm_twin = twins(lambda n: n.Sequential(n.Flatten(), n.LogSoftmax(dim=1)))
    same_as_torch(cnncompile.compile(logsm, (1, 3, 2, 2)), logsm_twin, x)


@pytest.mark.parametrize("pool", ["max", "avg_include", "avg_exclude"])
@pytest.mark.parametrize("size,k,s,p", [(5, 3, 2, 1), (6, 3, 3, 1), (4, 2, 3, 1), (7, 3, 2, 1),
                                        (1, 3, 2, 1), (2, 2, 2, 1)])
def test_ceil_mode_windows_that_start_in_the_padding(pool, size, k, s, p):
    """Sizes where ceil_mode would add a window starting in the right padding, which torch
    drops (the last window must start inside the input or the left padding)."""
    def build(n):
        if pool == "max":
            return n.Sequential(n.MaxPool2d(k, s, p, ceil_mode=True))
        return n.Sequential(n.AvgPool2d(k, s, p, ceil_mode=True,
                                        count_include_pad=pool == "avg_include"))
    model, twin = twins(build)
    compiled = cnncompile.compile(model, (1, 2, size, size + 1))
    same_as_torch(compiled, twin, random_input((2, 2, size, size + 1)))


@pytest.mark.parametrize("var", [0.0, 1e-12, 1e-7])
def test_batch_norm_with_variance_near_zero(var):
    model, twin = twins(lambda n: n.Sequential(n.Conv2d(2, 3, 3), n.BatchNorm2d(3), n.ReLU()))
    model[1].running_var[...] = var
    twin[1].running_var.fill_(var)
    compiled = cnncompile.compile(model, (1, 2, 5, 5))
    same_as_torch(compiled, twin, random_input((2, 2, 5, 5)))


def test_batch_of_zero_samples():
    model, _ = twins(lambda n: n.Sequential(n.Conv2d(1, 2, 3), n.ReLU()))
    compiled = cnncompile.compile(model, (1, 1, 5, 5))
    y = compiled(np.zeros((0, 1, 5, 5), np.float32))
    assert y.shape == (0, 2, 3, 3) and y.dtype == np.float32


@pytest.mark.parametrize("kernel", ["nchw.gemm_1x1", "nchw.im2col_gemm"])
@pytest.mark.parametrize("act", ["ReLU", "ReLU6"])
def test_activation_applied_inside_the_gemm_micro_kernel(kernel, act):
    """The GEMM micro-kernel adds the bias and applies ReLU / ReLU6 to a block of outputs
    while it is in vector registers: NaN, infinities and clipping as torch, on a block with
    edge rows (13 channels) and edge columns (36 pixels)."""
    model, twin = twins(lambda n: n.Sequential(n.Conv2d(5, 13, 1), getattr(n, act)()))
    compiled = cnncompile.compile(model, (1, 5, 6, 6), kernels={"0": kernel})
    assert compiled.graph.nx.nodes["0"]["node"].meta["kernel"] == kernel
    x = special_input((2, 5, 6, 6))
    x[np.abs(x) < 1e30] *= 4  # past 6 more often; 3e38 stays finite
    same_as_torch(compiled, twin, x)


def test_sigmoid_is_accurate_across_the_float_range():
    """cnn_sigmoid computes e^-v without expf (so that its loops vectorise): within 3e-7 of
    the float64 value wherever that is a normal float, 0 far below, 1 far above, NaN kept."""
    model = nn.Sequential(nn.Sigmoid()).eval()
    x = np.linspace(-120, 120, 240001, dtype=np.float32)[None]
    compiled = cnncompile.compile(model, x.shape, werror=True)
    y, exact = compiled(x)[0], 1 / (1 + np.exp(-x[0].astype(np.float64)))
    normal = exact > 1.2e-38
    assert (np.abs(y - exact)[normal] <= 3e-7 * exact[normal]).all()
    assert (np.abs(y - exact)[~normal] < 1e-38).all()
    ends = np.zeros_like(x)
    ends[0, :4] = [np.nan, np.inf, -np.inf, -3e38]
    assert np.isnan(compiled(ends)[0, 0]) and list(compiled(ends)[0, 1:4]) == [1.0, 0.0, 0.0]



@pytest.mark.parametrize("act", ["ReLU", "ReLU6"])
def test_activations_fused_into_each_kernel_let_nan_through_and_clamp_infinities(act):
    """ReLU and ReLU6 applied in the epilogues of the blocked kernels (stem, depthwise, 1x1),
    of the GEMM (a planar 3x3 layer) and of both linear kernels, on values that are NaN or infinite
    there: NaN stays NaN, +inf becomes 6 under ReLU6, -inf 0, as in torch. The linear
    layer's specials come from its bias, so that each reaches one output."""
    def convs(n):
        a = getattr(n, act)
        return n.Sequential(n.Conv2d(3, 32, 3, padding=1), a(),
                            n.Conv2d(32, 32, 3, padding=1, groups=32), a(),
                            n.Conv2d(32, 48, 1), a(), n.Conv2d(48, 8, 3), a())
    model, twin = twins(convs)
    compiled = cnncompile.compile(model, (1, 3, 12, 12), werror=True)
    fused = {n.meta["kernel"] for n in compiled.graph.nodes() if "activation" in n.meta}
    assert {"nchw_to_nchw16c.shifted", "nchw16c.depthwise", "nchw16c.pointwise"} < fused, fused
    x = random_input((2, 3, 12, 12))
    x[0, 0, 0, 0], x[0, 1, 8, 8], x[1, 2, 5, 5], x[1, 0, 10, 2] = np.nan, np.inf, -np.inf, np.inf
    y, want = same_as_torch(compiled, twin, x)
    assert np.isnan(want[0]).any() and np.isfinite(want).any()

    def planar(n):  # 5 channels: on planes, the activation in the GEMM's epilogue
        return n.Sequential(n.Conv2d(3, 5, 3, padding=1), getattr(n, act)())
    model, twin = twins(planar)
    compiled = cnncompile.compile(model, (1, 3, 12, 12), kernels={"0": "nchw.im2col_gemm"},
                                  werror=True)
    assert "CNN_ACT_RELU" in compiled.c_source
    y, want = same_as_torch(compiled, twin, x)
    assert np.isnan(want[0]).any() and np.isfinite(want).any()

    def linear(n):
        return n.Sequential(n.Linear(40, 24), getattr(n, act)())
    model = linear(nn).eval()
    model[0].bias[:4] = np.array([np.nan, np.inf, -np.inf, 3e38], np.float32)
    twin = torch_twin(model, linear(torch.nn))
    top = np.float32(np.inf if act == "ReLU" else 6.0)
    for kernel in ("nc.linear_rows", "nc.linear_blocks"):
        compiled = cnncompile.compile(model, (1, 40), kernels={"0": kernel}, werror=True)
        assert compiled.graph.node("0").meta["kernel"] == kernel
        y, want = same_as_torch(compiled, twin, random_input((3, 40)))
        np.testing.assert_array_equal(want[:, 1:4], [[top, 0.0, min(top, np.float32(3e38))]] * 3)
        np.testing.assert_array_equal(y[:, :4], want[:, :4])  # NaN where torch has NaN
