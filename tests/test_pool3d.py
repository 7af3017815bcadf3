"""1-D and 3-D pooling beyond the op cases: ONNX exports against torch, ONNX pools (3-D, and
AveragePool with dilations) against ONNX Runtime, the functional forms on numpy arrays, and
the errors a user can meet."""
import numpy as np
import pytest
import torch
from onnx import helper

import cnncompile
import cnncompile.nn as nn
from cnncompile.errors import ShapeError, UnsupportedError
from helpers import assert_close, random_input, run_torch
from test_frontend_onnx import check_against_ort, export, make_model


def video(framework):
    class Video(framework.Module):
        def __init__(self):
            super().__init__()
            self.conv = framework.Conv3d(3, 6, 3, padding=1)
            self.pool = framework.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1), ceil_mode=True)
            self.avg = framework.AvgPool3d(2, 1, 1, count_include_pad=False)
            self.head = framework.AdaptiveAvgPool3d(1)
            self.fc = framework.Linear(6, 4)

        def forward(self, x):
            x = self.avg(self.pool(torch.relu(self.conv(x))))
            return self.fc(torch.flatten(self.head(x), 1))
    return Video()


def test_video_model_exported_to_onnx_matches_torch():
    torch.manual_seed(0)
    model = video(torch.nn).eval()
    compiled = cnncompile.from_onnx(export(model, (1, 3, 4, 9, 9)), werror=True)
    ops = {n.op for n in compiled.graph.nodes()}
    assert {"max_pool3d", "avg_pool3d"} <= ops
    for batch in (1, 3):
        x = random_input((batch, 3, 4, 9, 9), seed=batch)
        assert_close(compiled(x), run_torch(model, x), f"batch {batch}")


def test_1d_pools_exported_to_onnx_match_torch():
    model = torch.nn.Sequential(torch.nn.MaxPool1d(3, 2, 1, dilation=2),
                                torch.nn.AvgPool1d(3, 1, 1, count_include_pad=False),
                                torch.nn.AdaptiveMaxPool1d(1)).eval()
    compiled = cnncompile.from_onnx(export(model, (1, 4, 17)), werror=True)
    x = random_input((2, 4, 17))
    assert_close(compiled(x), run_torch(model, x))


def pool_node(op, **attrs):
    return helper.make_node(op, ["x"], ["y"], name="pool", **attrs)


def ort_model(node, in_shape, opset):
    return make_model([node], {}, ["N"] + list(in_shape[1:]), None, opset=opset)


@pytest.mark.parametrize("attrs,shape", [
    (dict(kernel_shape=[3, 2], dilations=[2, 3], strides=[1, 2]), (1, 2, 9, 10)),
    (dict(kernel_shape=[3, 2], dilations=[2, 2], strides=[2, 1], pads=[1, 1, 1, 1],
          count_include_pad=1), (1, 2, 9, 10)),
    (dict(kernel_shape=[3, 2], dilations=[2, 2], strides=[2, 1], pads=[1, 1, 1, 1]),
     (1, 2, 9, 10)),
    (dict(kernel_shape=[3, 3], dilations=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
          ceil_mode=1), (1, 2, 9, 10)),
    (dict(kernel_shape=[3, 3], dilations=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
          ceil_mode=1, count_include_pad=1), (1, 2, 9, 10)),
    # asymmetric pads: a pad layer first, then the divisor rescaled per window
    (dict(kernel_shape=[3, 3], dilations=[2, 2], strides=[2, 2], pads=[2, 0, 1, 2]),
     (1, 2, 9, 10)),
    (dict(kernel_shape=[3], dilations=[3], strides=[2], pads=[2, 2]), (1, 3, 12)),
    (dict(kernel_shape=[2, 3, 2], dilations=[2, 1, 3], strides=[1, 2, 1],
          pads=[1, 1, 1, 1, 1, 1]), (1, 2, 5, 6, 7)),
], ids=lambda v: str(v) if isinstance(v, tuple) else None)
def test_average_pool_with_dilations_against_onnxruntime(attrs, shape):
    check_against_ort(ort_model(pool_node("AveragePool", **attrs), shape, 19), shape)


@pytest.mark.parametrize("op,attrs", [
    ("MaxPool", dict(kernel_shape=[2, 3, 3], strides=[1, 2, 2], pads=[0, 1, 1, 0, 1, 1])),
    ("MaxPool", dict(kernel_shape=[3, 3, 3], strides=[2, 2, 2], pads=[1, 1, 1, 1, 1, 1],
                     ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[2, 2, 2], dilations=[2, 1, 2], pads=[1, 0, 1, 1, 1, 1])),
    ("MaxPool", dict(kernel_shape=[3, 3, 3], pads=[0, 2, 1, 1, 0, 2])),
    ("AveragePool", dict(kernel_shape=[3, 3, 3], strides=[2, 2, 2], pads=[1, 1, 1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[3, 3, 3], strides=[2, 2, 2], pads=[1, 1, 1, 1, 1, 1],
                         count_include_pad=1, ceil_mode=1)),
    ("AveragePool", dict(kernel_shape=[3, 2, 3], pads=[0, 1, 1, 1, 0, 2])),
    ("AveragePool", dict(kernel_shape=[2, 2, 2], auto_pad="SAME_UPPER", strides=[2, 2, 2])),
    ("GlobalAveragePool", {}),
    ("GlobalMaxPool", {}),
], ids=lambda v: str(v) if isinstance(v, dict) else v)
def test_3d_pools_against_onnxruntime(op, attrs):
    shape = (1, 3, 5, 7, 6)
    compiled = check_against_ort(ort_model(pool_node(op, **attrs), shape, 19), shape)
    assert "pool" in compiled.graph.nx.nodes


def onnx_pool(x, op, kernel, strides, dilations, begins):
    """ONNX MaxPool / AveragePool (count_include_pad 0) by the specification, in numpy: taps
    ``dilations`` apart, padding neither the max nor the divisor."""
    out_sizes = [-(-size // s) for size, s in zip(x.shape[2:], strides)]  # SAME
    y = np.empty(x.shape[:2] + tuple(out_sizes))
    for index in np.ndindex(*out_sizes):
        taps = [[o * s - b + i * d for i in range(k) if 0 <= o * s - b + i * d < size]
                for o, s, b, d, k, size in zip(index, strides, begins, dilations, kernel,
                                               x.shape[2:])]
        win = x[np.ix_(range(x.shape[0]), range(x.shape[1]), *taps)].reshape(x.shape[:2] + (-1,))
        y[(slice(None), slice(None)) + index] = (win.max(-1) if op == "MaxPool"
                                                 else win.mean(-1))
    return y.astype(np.float32)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("shape", [(1, 2, 7, 8), (1, 3, 5, 7, 6)])
def test_same_padding_with_dilations_follows_the_onnx_specification(op, shape):
    """auto_pad SAME pads for the dilated window, as the specification says (ONNX Runtime
    1.32 pads pools for the undilated kernel, and onnx.reference shifts dilated averages)."""
    rank = len(shape) - 2
    kernel, dilations, strides = [3] * rank, [2] + [1] * (rank - 1), [1] * (rank - 1) + [2]
    node = pool_node(op, kernel_shape=kernel, dilations=dilations, auto_pad="SAME_UPPER",
                     strides=strides)
    compiled = cnncompile.from_onnx(ort_model(node, shape, 19), werror=True)
    x = random_input((2,) + shape[1:])
    begins = [max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0) // 2
              for n, k, s, d in zip(shape[2:], kernel, strides, dilations)]
    assert_close(compiled(x), onnx_pool(x, op, kernel, strides, dilations, begins))


def test_functional_forms_on_numpy_arrays_run_the_reference():
    x = random_input((2, 3, 4, 6, 5))
    F, T = nn.functional, torch.nn.functional
    t = torch.from_numpy(x)
    assert_close(F.max_pool3d(x, 3, 2, 1, ceil_mode=True),
                 T.max_pool3d(t, 3, 2, 1, ceil_mode=True).numpy())
    assert_close(F.avg_pool3d(x, 2, 1, 1, divisor_override=3),
                 T.avg_pool3d(t, 2, 1, 1, divisor_override=3).numpy())
    assert_close(F.adaptive_max_pool3d(x, (None, 4, 2)),
                 T.adaptive_max_pool3d(t, (None, 4, 2)).numpy())
    flat, tflat = x.reshape(2, 3, -1), t.flatten(2)
    assert_close(F.adaptive_avg_pool1d(flat, 9), T.adaptive_avg_pool1d(tflat, 9).numpy())
    assert_close(F.avg_pool1d(flat, 4, 3, 2, True, False),
                 T.avg_pool1d(tflat, 4, 3, 2, True, False).numpy())


def test_nan_propagates_like_torch():
    model = nn.Sequential(nn.MaxPool3d(2), nn.AdaptiveMaxPool3d(1))
    compiled = cnncompile.compile(model, (1, 1, 4, 4, 4), werror=True)
    x = np.arange(64, dtype=np.float32).reshape(1, 1, 4, 4, 4) - 32
    x[0, 0, 1, 2, 3] = np.nan
    expected = torch.nn.Sequential(torch.nn.MaxPool3d(2), torch.nn.AdaptiveMaxPool3d(1))(
        torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(compiled(x), expected)


def error_of(model, shape):
    with pytest.raises(cnncompile.CompileError) as info:
        cnncompile.compile(model, shape)
    return info.value


def test_errors_name_the_layer_and_what_to_change():
    e = error_of(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool3d(2)), (1, 3, 8, 8))
    assert isinstance(e, ShapeError) and e.layer == "1"
    assert "MaxPool3d expects a 5-D input (N, C, D, H, W) but receives 4-D" in str(e)
    e = error_of(nn.Sequential(nn.AvgPool1d(4)), (1, 3, 8, 8))
    assert "AvgPool1d expects a 3-D input (N, C, L)" in str(e)
    e = error_of(nn.Sequential(nn.MaxPool3d(4)), (1, 3, 4, 3, 5))
    assert "MaxPool3d window 4x4x4 does not fit its input 4x3x5" in str(e)
    e = error_of(nn.Sequential(nn.AvgPool3d(3, padding=2)), (1, 3, 8, 8, 8))
    assert "AvgPool3d padding 2 is more than half the kernel size 3; use padding <= 1" in str(e)
    e = error_of(nn.Sequential(nn.MaxPool3d(2, return_indices=True)), (1, 3, 4, 4, 4))
    assert isinstance(e, UnsupportedError)
    assert "MaxPool3d(return_indices=True) is not supported" in str(e)
    e = error_of(nn.Sequential(nn.AdaptiveMaxPool1d(2, return_indices=True)), (1, 3, 8))
    assert "AdaptiveMaxPool1d(return_indices=True) is not supported" in str(e)
    e = error_of(nn.Sequential(nn.AvgPool3d(2, divisor_override=0)), (1, 3, 4, 4, 4))
    assert "AvgPool3d divisor_override must not be zero" in str(e)
