"""Resizing from ONNX (Resize, Upsample) against ONNX Runtime and torch, and the errors for
the resizing cnncompile refuses."""
import numpy as np
import pytest
import torch
from onnx import helper

import cnncompile
import cnncompile.nn as cnn
from helpers import assert_close, random_input, run_torch
from test_frontend_onnx import export, make_model, run_ort

IN = ["N", 2, 5, 7]
OUT = ["N", 2, None, None]
SCALES = np.array([1, 1, 2, 1.5], np.float32)
SIZES = np.array([1, 2, 9, 4], np.int64)


def resize_model(opset, scales=None, sizes=None, in_shape=IN, axes=None, **attrs):
    inputs = ["x", "roi" if opset < 13 else "", "scales" if scales is not None else ""]
    inits = {}
    if opset < 13:
        inits["roi"] = np.zeros(0, np.float32)
    if scales is not None:
        inits["scales"] = scales
    else:
        inputs[2] = "" if opset >= 13 else "scales"
        if opset < 13:
            inits["scales"] = np.zeros(0, np.float32)
        inputs.append("sizes")
        inits["sizes"] = sizes
    if axes is not None:
        attrs["axes"] = axes
    node = helper.make_node("Resize", inputs, ["y"], name="resize", **attrs)
    return make_model([node], inits, in_shape, [in_shape[0], in_shape[1]] +
                      [None] * (len(in_shape) - 2), opset=opset)


def check(model, shape=(1, 2, 5, 7), batches=(1, 2)):
    """(ONNX Runtime reads a batch other than the one in sizes as resizing the batch.)"""
    compiled = cnncompile.from_onnx(model, werror=True)
    for batch in batches:
        x = random_input((batch,) + tuple(shape[1:]), seed=batch)
        assert_close(compiled(x), run_ort(model, x), f"batch {batch} vs ONNX Runtime")


COORDS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]


@pytest.mark.parametrize("opset", [11, 13, 18, 19])
@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("by", ["scales", "sizes"])
def test_linear_resize_against_onnxruntime(opset, coord, by):
    given = dict(scales=SCALES) if by == "scales" else dict(sizes=SIZES)
    check(resize_model(opset, mode="linear", coordinate_transformation_mode=coord, **given),
          batches=(1, 2) if by == "scales" else (1,))


@pytest.mark.parametrize("rounding", ["floor", "round_prefer_floor", "round_prefer_ceil", "ceil"])
@pytest.mark.parametrize("coord", COORDS + ["tf_half_pixel_for_nn"])
def test_nearest_resize_against_onnxruntime(rounding, coord):
    check(resize_model(13, sizes=np.array([1, 2, 12, 3], np.int64), mode="nearest",
                       coordinate_transformation_mode=coord, nearest_mode=rounding), batches=(1,))
    check(resize_model(13, scales=np.array([1, 1, 1.5, 0.6], np.float32), mode="nearest",
                       coordinate_transformation_mode=coord, nearest_mode=rounding))


def test_resize_1d_3d_and_spatial_axes_against_onnxruntime():
    check(resize_model(13, scales=np.array([1, 1, 2.5], np.float32), in_shape=["N", 3, 6],
                       mode="linear"), (1, 3, 6))
    check(resize_model(13, sizes=np.array([1, 2, 4, 6, 3], np.int64), in_shape=["N", 2, 3, 4, 5],
                       mode="linear", coordinate_transformation_mode="align_corners"),
          (1, 2, 3, 4, 5), batches=(1,))
    check(resize_model(18, sizes=np.array([10, 3], np.int64), axes=[2, 3], mode="linear"))
    check(resize_model(19, scales=np.array([2, 2], np.float32), axes=[-2, -1]))


def test_upsample_of_old_opsets_against_onnxruntime():
    """Upsample-9 and Resize-10 (brought to opset 11 by onnx's converter) sample at
    x_out / scale, linear and nearest."""
    for mode in ("nearest", "linear"):
        node = helper.make_node("Upsample", ["x", "scales"], ["y"], mode=mode)
        model = make_model([node], {"scales": np.array([1, 1, 2, 3], np.float32)}, IN, OUT,
                           opset=9)
        check(model)
        node = helper.make_node("Resize", ["x", "scales"], ["y"], mode=mode)
        check(make_model([node], {"scales": np.array([1, 1, 2, 0.5], np.float32)}, IN, OUT,
                         opset=10))


def upsampler(nn, **kwargs):
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Upsample(**kwargs))


class Head(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.conv, self.kwargs = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), kwargs

    def forward(self, x):
        return torch.nn.functional.interpolate(self.conv(x), size=x.shape[-2:], **self.kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2), dict(scale_factor=2, mode="bilinear"),
    dict(scale_factor=2, mode="bilinear", align_corners=True),
    dict(scale_factor=1.5, mode="nearest"), dict(size=(7, 9), mode="bilinear"),
    dict(scale_factor=(2, 0.5), mode="nearest"),
], ids=str)
def test_torch_exports_against_torch(kwargs):
    twin = upsampler(torch.nn, **kwargs).eval()
    check_export(twin, (1, 3, 10, 12))


@pytest.mark.parametrize("kwargs", [dict(mode="bilinear", align_corners=False),
                                    dict(mode="bilinear", align_corners=True), dict()], ids=str)
def test_torch_export_to_the_input_size_against_torch(kwargs):
    check_export(Head(**kwargs).eval(), (1, 3, 11, 14))


def check_export(twin, shape):
    compiled = cnncompile.from_onnx(export(twin, shape), werror=True)
    for batch in (1, 3):
        x = random_input((batch,) + tuple(shape[1:]), seed=batch)
        assert_close(compiled(x), run_torch(twin, x), f"batch {batch} vs torch")


# -- what is refused, and how it is said ---------------------------------------------------
@pytest.mark.parametrize("attrs,match", [
    (dict(mode="cubic"), "cubic.*use mode 'linear'"),
    (dict(coordinate_transformation_mode="tf_crop_and_resize"), "tf_crop_and_resize"),
    (dict(antialias=1, mode="linear"), "antialias"),
    (dict(keep_aspect_ratio_policy="not_larger"), "keep_aspect_ratio_policy"),
])
def test_onnx_resize_refusals_name_the_node(attrs, match):
    with pytest.raises(cnncompile.UnsupportedError, match=match) as info:
        cnncompile.from_onnx(resize_model(18, scales=SCALES, **attrs))
    assert "resize" in str(info.value)


def test_onnx_resize_of_channels_is_refused():
    with pytest.raises(cnncompile.UnsupportedError, match="channels"):
        cnncompile.from_onnx(resize_model(13, scales=np.array([1, 2, 2, 2], np.float32)))
    with pytest.raises(cnncompile.UnsupportedError, match="channels"):
        cnncompile.from_onnx(resize_model(18, sizes=np.array([4, 10], np.int64), axes=[1, 2]))


@pytest.mark.parametrize("kwargs,match", [
    (dict(scale_factor=2, mode="bicubic"), "'bicubic'.*mode='bilinear'"),
    (dict(size=3, mode="area"), "'area'.*mode='bilinear'"),
    (dict(scale_factor=0.5, mode="bilinear", antialias=True), "antialias"),
])
def test_refused_modes_name_the_layer(kwargs, match):
    class Model(cnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = cnn.Conv2d(3, 3, 1)

        def forward(self, x):
            return cnn.functional.interpolate(self.conv(x), **kwargs)
    with pytest.raises(cnncompile.UnsupportedError, match=match) as info:
        cnncompile.compile(Model(), (1, 3, 8, 8))
    assert "interpolate" in str(info.value)
    model = cnn.Sequential(cnn.Upsample(**{k: v for k, v in kwargs.items() if k != "antialias"}))
    if "antialias" not in kwargs:
        with pytest.raises(cnncompile.UnsupportedError, match="layer 0"):
            cnncompile.compile(model, (1, 3, 8, 8))


@pytest.mark.parametrize("kwargs,error", [
    (dict(size=4, scale_factor=2), "only one of size or scale_factor"),
    (dict(), "either size or scale_factor"),
    (dict(size=4, mode="nearest", align_corners=True), "align_corners option can only be set"),
    (dict(size=(4, 4, 4)), "same number of spatial dimensions"),
    (dict(size=4, recompute_scale_factor=True), "recompute_scale_factor is not meaningful"),
], ids=str)
def test_argument_errors_match_torch(kwargs, error):
    x = np.zeros((1, 2, 3, 3), np.float32)
    for F in (torch.nn.functional, cnn.functional):
        with pytest.raises(ValueError, match=error):
            F.interpolate(torch.from_numpy(x) if F is torch.nn.functional else x, **kwargs)


def test_wrong_rank_for_the_mode_matches_torch():
    x = np.zeros((1, 2, 3), np.float32)
    for F, arg in ((torch.nn.functional, torch.from_numpy(x)), (cnn.functional, x)):
        with pytest.raises(NotImplementedError, match="Got 3D input, but bilinear mode needs 4D"):
            F.interpolate(arg, scale_factor=2, mode="bilinear")


def test_layer_reprs_match_torch():
    for args in (dict(scale_factor=2), dict(size=(3, 4), mode="bilinear")):
        assert repr(cnn.Upsample(**args)) == repr(torch.nn.Upsample(**args))
    assert repr(cnn.UpsamplingBilinear2d(scale_factor=2)) == \
        repr(torch.nn.UpsamplingBilinear2d(scale_factor=2))
    assert repr(cnn.UpsamplingNearest2d(size=5)) == repr(torch.nn.UpsamplingNearest2d(size=5))


# -- ATen's upsample ops, as torch.export records F.interpolate ------------------------------
class Interpolate(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, x):
        return torch.nn.functional.interpolate(x, **self.kwargs)


@pytest.mark.parametrize("shape,kwargs", [
    ((1, 2, 5, 6), dict(scale_factor=2)),
    ((1, 2, 5, 6), dict(scale_factor=1.7)),
    ((1, 2, 5, 6), dict(size=(7, 4))),
    ((1, 2, 5, 6), dict(scale_factor=(1.5, 0.6), mode="bilinear")),
    ((1, 2, 5, 6), dict(scale_factor=1.5, mode="bilinear", recompute_scale_factor=True)),
    ((1, 2, 5, 6), dict(size=(3, 11), mode="bilinear", align_corners=True)),
    ((1, 2, 5, 6), dict(scale_factor=2, mode="nearest-exact")),
    ((1, 2, 7), dict(scale_factor=2.5, mode="linear")),
    ((1, 2, 3, 4, 5), dict(scale_factor=(2, 1, 0.5), mode="trilinear", align_corners=True)),
], ids=str)
def test_aten_upsample_calls_map_onto_interpolate(shape, kwargs):
    """What torch.export records for F.interpolate, mapped back by interpolate_from_aten."""
    from cnncompile.nn.functional_resize import interpolate_from_aten
    x = random_input(shape, seed=0)
    program = torch.export.export(Interpolate(**kwargs), (torch.from_numpy(x),))
    [node] = [n for n in program.graph.nodes if n.op == "call_function"]
    name = f"{node.target._opname}.{node.target._overloadname}"
    got = interpolate_from_aten(name, x, *node.args[1:])
    assert_close(got, torch.nn.functional.interpolate(torch.from_numpy(x), **kwargs).numpy())


def test_aten_default_overloads_take_a_size_and_scales():
    from cnncompile.nn.functional_resize import interpolate_from_aten
    x = random_input((1, 2, 5, 6), seed=0)
    t = torch.from_numpy(x)
    aten = torch.ops.aten
    for op, args in ((aten.upsample_nearest2d.default, ([9, 8], 1.9, 1.4)),
                     (aten._upsample_nearest_exact2d.default, ([9, 8], 1.9, None)),
                     (aten.upsample_bilinear2d.default, ([9, 8], False, 1.9, 1.4)),
                     (aten.upsample_bilinear2d.default, ([9, 8], True, None, None))):
        name = f"{op._opname}.{op._overloadname}"
        assert_close(interpolate_from_aten(name, x, *args), op(t, *args).numpy(), name)
