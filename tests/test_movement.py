"""Data movement (permute, slice and what is built on them) from ONNX, against torch and ONNX
Runtime; the errors that moving or slicing the batch raises; the functions on numpy arrays."""
import numpy as np
import pytest
import torch

import cnncompile
import cnncompile.nn as cnn
from cnncompile import reference
import cnncompile.nn.functional as CF
from cnncompile.errors import ModelFileError, ShapeError, UnsupportedError
from helpers import assert_close, random_input, run_torch

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402
from test_frontend_onnx import check_against_ort, export, make_model  # noqa: E402


class ShuffleUnit(torch.nn.Module):
    """ShuffleNetV2's stride-1 unit, then a pixel shuffle, slices and an unbind."""

    def __init__(self):
        super().__init__()
        self.branch = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.ReLU(),
                                          torch.nn.Conv2d(4, 4, 3, padding=1, groups=4))
        self.up = torch.nn.PixelShuffle(2)
        self.down = torch.nn.PixelUnshuffle(2)

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch(x2)), 1)
        n, c, h, w = out.size()
        out = out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)
        up = self.up(out)                              # (N, 2, 2H, 2W)
        a, b = up.unbind(1)
        y = (a - b).unsqueeze(1)[:, :, 1:, ::2]        # (N, 1, 2H-1, W)
        z = self.down(up)[:, 2:6].permute(0, 2, 3, 1)  # (N, H, W, 4)
        return torch.cat((y.flatten(1), z.flatten(1)), 1)


def test_torch_export_of_shuffles_and_slices_matches_torch():
    twin = ShuffleUnit().eval()
    shape = (1, 8, 5, 6)
    compiled = cnncompile.from_onnx(export(twin, shape), werror=True)
    for batch in (1, 3):
        x = random_input((batch,) + shape[1:], seed=batch)
        assert_close(compiled(x), run_torch(twin, x), f"batch {batch}")
    ops = {n.op for n in compiled.graph.nodes()}
    assert {"permute", "slice"} <= ops


def test_onnx_movement_ops_against_onnxruntime():
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),          # (N, 4, 6, 8)
        helper.make_node("Slice", ["t", "st", "en", "ax", "sp"], ["s"]),         # (N, 4, 3, 7)
        helper.make_node("Transpose", ["s"], ["t2"], perm=[0, 3, 1, 2]),         # (N, 7, 4, 3)
        helper.make_node("Split", ["t2"], ["a", "b", "c"], axis=1, num_outputs=3),  # 3, 3, 1
        helper.make_node("Concat", ["c", "a", "b"], ["cat"], axis=1),
        helper.make_node("Unsqueeze", ["cat", "ax2"], ["u"]),                    # (N, 7, 1, 4, 3)
        helper.make_node("Squeeze", ["u", "ax2"], ["q"]),
        helper.make_node("Slice", ["q", "st2", "en2", "ax3"], ["q2"]),            # (N, 4, 4, 1)
        helper.make_node("DepthToSpace", ["q2"], ["d"], blocksize=2, mode="DCR"),  # (N, 1, 8, 2)
        helper.make_node("SpaceToDepth", ["d"], ["sd"], blocksize=2),            # (N, 4, 4, 1)
        helper.make_node("DepthToSpace", ["sd"], ["y"], blocksize=2, mode="CRD"),  # (N, 1, 8, 2)
    ]
    inits = {"st": np.array([-5, 1], np.int64), "en": np.array([1 << 40, 1 << 62], np.int64),
             "ax": np.array([2, -1], np.int64), "sp": np.array([2, 1], np.int64),
             "ax2": np.array([2], np.int64),
             "st2": np.array([0, 1], np.int64), "en2": np.array([4, -1], np.int64),
             "ax3": np.array([1, 3], np.int64)}
    model = make_model(nodes, inits, ["N", 8, 4, 6], ["N", 1, 8, 2], opset=18)
    check_against_ort(model, (1, 8, 4, 6))


def test_onnx_split_squeeze_unsqueeze_as_opset_11_attributes():
    nodes = [
        helper.make_node("Split", ["x"], ["a", "b"], axis=-1, split=[1, 4]),
        helper.make_node("Unsqueeze", ["a"], ["u"], axes=[-1, 2]),                # (N, 3, 1, 4, 1, 1)
        helper.make_node("Squeeze", ["u"], ["s"], axes=[2, 4]),                   # (N, 3, 4, 1)
        helper.make_node("Split", ["b"], ["c", "d"], axis=3),                     # 2, 2
        helper.make_node("Concat", ["d", "s", "c"], ["y"], axis=3),
    ]
    model = make_model(nodes, {}, ["N", 3, 4, 5], ["N", 3, 4, 5], opset=11)
    check_against_ort(model, (1, 3, 4, 5))


@pytest.mark.parametrize("node,message", [
    (helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0, 2, 3]), r"perm\[0\] must be 0"),
    (helper.make_node("Split", ["x"], ["y", "z"], axis=0), "splits the batch"),
    (helper.make_node("Unsqueeze", ["x", "zero"], ["y"]), "in front of the batch"),
])
def test_onnx_refuses_moving_the_batch(node, message):
    model = make_model([node], {"zero": np.array([0], np.int64)}, ["N", 4, 2, 2], None)
    with pytest.raises(UnsupportedError, match=message):
        cnncompile.from_onnx(model, input_shape=(2, 4, 2, 2))


def test_onnx_refuses_reversing_slices_and_bad_splits():
    inits = {"st": np.array([-1], np.int64), "en": np.array([-100], np.int64),
             "ax": np.array([1], np.int64), "sp": np.array([-1], np.int64)}
    model = make_model([helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], inits,
                       ["N", 4, 2, 2], None)
    with pytest.raises(UnsupportedError, match="reverse"):
        cnncompile.from_onnx(model)
    model = make_model([helper.make_node("Split", ["x"], ["y", "z"], axis=1, split=[1, 2])], {},
                       ["N", 4, 2, 2], None, opset=11)
    with pytest.raises(ModelFileError, match="adding up to 4"):
        cnncompile.from_onnx(model)


class Forward(cnn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


@pytest.mark.parametrize("fn,error,message", [
    (lambda x: x.permute(1, 0, 2, 3), UnsupportedError, r"keep the batch first \(perm\[0\] == 0\)"),
    (lambda x: x.transpose(0, 1), UnsupportedError, "moves the batch out of dimension 0"),
    (lambda x: x[0], UnsupportedError, "the first index must be ':'"),
    (lambda x: x[1:], UnsupportedError, "indexes the batch dimension"),
    (lambda x: x[None], UnsupportedError, "indexes the batch dimension"),
    (lambda x: x.chunk(2), UnsupportedError, r"x.chunk\(2, dim=1\)"),
    (lambda x: x.split(1), UnsupportedError, "split along a dimension >= 1"),
    (lambda x: x.unbind(), UnsupportedError, r"x.unbind\(1\)"),
    (lambda x: x.narrow(0, 0, 1), UnsupportedError, "slice a dimension >= 1"),
    (lambda x: x.squeeze(0), UnsupportedError, "squeeze a dimension >= 1"),
    (lambda x: x.unsqueeze(0), UnsupportedError, "unsqueeze a dimension >= 1"),
    (lambda x: x[:, ::-1], UnsupportedError, "positive slice steps"),
    (lambda x: x[:, 4:], ShapeError, "selects nothing"),
    (lambda x: x.permute(0, 1, 2), ShapeError, "has 3 dims but the input has 4"),
    (lambda x: x.split([1, 2], 1), ShapeError, r"must add up to 4"),
    (lambda x: x.transpose(1, 4), ShapeError, "out of range"),
    (lambda x: cnn.functional.pixel_shuffle(x, 3), ShapeError, "divide by 9"),
])
def test_errors_name_the_layer_and_the_fix(fn, error, message):
    with pytest.raises(error, match=message) as info:
        cnncompile.compile(Forward(fn), (2, 4, 3, 3))
    assert info.value.layer or "cannot be compiled" in str(info.value)


def test_squeeze_keeps_the_batch_and_slices_clamp_like_aten():
    def fn(x):
        y = CF.slice(x, 1, -100, 1 << 62, 2)         # channels 0, 2
        y = CF.slice(y, 0, 0, None)                   # the whole batch: no layer
        return y[:, :, :1].squeeze() * 1.0            # (N, 2, 3)
    compiled = cnncompile.compile(Forward(fn), (1, 4, 3, 3), werror=True)
    x = random_input((1, 4, 3, 3))
    assert compiled(x).shape == (1, 2, 3)
    assert_close(compiled(x), x[:, ::2, 0] * 1.0)


def test_functions_run_on_numpy_arrays_like_torch():
    x = random_input((2, 8, 4, 6))
    t = torch.from_numpy(x)
    F = torch.nn.functional
    pairs = [
        (CF.permute(x, (0, 2, 3, 1)), t.permute(0, 2, 3, 1)),
        (CF.transpose(x, -1, 1), t.transpose(-1, 1)),
        (CF.movedim(x, 1, -1), t.movedim(1, -1)),
        (CF.pixel_shuffle(x, 2), F.pixel_shuffle(t, 2)),
        (CF.pixel_unshuffle(x, 2), F.pixel_unshuffle(t, 2)),
        (CF.channel_shuffle(x, 4), F.channel_shuffle(t, 4)),
        (CF.narrow(x, 2, -3, 2), t.narrow(2, -3, 2)),
        (CF.select(x, 1, -1), t.select(1, -1)),
        (CF.slice(x, 3, 1, None, 2), t[:, :, :, 1::2]),
        (CF.unsqueeze(x, -2), t.unsqueeze(-2)),
        (CF.squeeze(x[:, :1], 1), t[:, :1].squeeze(1)),
    ]
    for i, (a, b) in enumerate(pairs):
        assert_close(np.asarray(a), b.numpy(), f"case {i}")
    for a, b in zip(CF.chunk(x, 3, dim=1), t.chunk(3, dim=1)):
        assert_close(a, b.numpy())
    for a, b in zip(CF.split(x, [1, 7], 1), torch.split(t, [1, 7], 1)):
        assert_close(a, b.numpy())
    assert len(CF.unbind(x, -1)) == 6


def test_layers_repr_like_torch():
    for name, arg in (("ChannelShuffle", 2), ("PixelShuffle", 3), ("PixelUnshuffle", 2)):
        assert repr(getattr(cnn, name)(arg)) == repr(getattr(torch.nn, name)(arg))


# -- the official ONNX node cases of these ops ----------------------------------------------
# Refused, each with a CompileError: they move, cut or index the batch (dimension 0), select
# nothing, or reverse.
REFUSED = set("""
    test_slice test_slice_start_out_of_bounds test_slice_neg_steps test_squeeze
    test_transpose_default test_transpose_all_permutations_2 test_transpose_all_permutations_3
    test_transpose_all_permutations_4 test_transpose_all_permutations_5 test_unsqueeze_axis_0
""".split())
# Split along axis 0 (1-D inputs, the default axis) splits the batch; an input of size 0.
REFUSED |= set("""
    test_split_1d_uneven_split_opset18 test_split_equal_parts_1d_opset13 test_split_equal_parts_1d_opset18
    test_split_equal_parts_default_axis_opset13 test_split_equal_parts_default_axis_opset18 test_split_variable_parts_1d_opset13
    test_split_variable_parts_1d_opset18 test_split_variable_parts_default_axis_opset13 test_split_variable_parts_default_axis_opset18
    test_split_zero_size_splits_opset13 test_split_zero_size_splits_opset18
""".split())
MOVEMENT_OPS = {"Transpose", "Slice", "Split", "DepthToSpace", "SpaceToDepth", "Squeeze",
                "Unsqueeze"}


def _node_cases():
    import warnings
    from onnx.backend.test.loader import load_model_tests
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        every = load_model_tests(kind="node")
    return [c for c in every if len(c.model.graph.node) == 1
            and c.model.graph.node[0].op_type in MOVEMENT_OPS]


NODE_CASES = _node_cases()


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_onnx_node_case(case):
    from test_onnx_conformance import _bind_extra_inputs
    model, x = _bind_extra_inputs(case)
    if case.name in REFUSED:
        with pytest.raises((cnncompile.CompileError, ValueError)):
            cnncompile.from_onnx(model, input_shape=x.shape)
        return
    ys = cnncompile.from_onnx(model, input_shape=x.shape, werror=True)(x)
    ys = ys if len(model.graph.output) > 1 else [ys]
    for y, expected in zip(ys, case.data_sets[0][1]):
        assert_close(y, np.asarray(expected), case.name)


def test_node_cases_are_found():
    names = {c.name for c in NODE_CASES}
    assert REFUSED <= names and len(names - REFUSED) >= 25


class Everything(cnn.Module):
    """Tiled and untiled permutes, strided slices, selects and shuffles, one after another;
    the output ends on a slice, so the last copy writes the caller's buffer."""

    def __init__(self):
        super().__init__()
        self.conv = cnn.Conv2d(8, 20, 1)
        self.up = cnn.PixelShuffle(2)

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1)                   # (N, 17, 19, 20): tiles
        y = cnn.functional.channel_shuffle(y.permute(0, 3, 1, 2) * 1.0, 4)
        a, b = y[:, :16].chunk(2, dim=1)
        z = self.up(a + b)[:, :, 1::3, ::2]                      # (N, 2, 11, 19)
        w = y[:, 16:18, 2:13, ::2]                               # (N, 2, 11, 10)
        v = y[:, 18:20, 3:14, None, 4]                           # (N, 2, 11, 1)
        return cnncompile.cat((z, w, v), 3)


def test_runs_clean_under_asan_and_ubsan(tmp_path):
    from test_sanitizers import run_sanitized
    compiled = cnncompile.compile(Everything().eval(), (1, 8, 17, 19), num_threads=2)
    x = random_input((3, 8, 17, 19))
    assert_close(run_sanitized(compiled, tmp_path / "c", x), reference.run(compiled.graph, x))
