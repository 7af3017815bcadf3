"""LayerNorm, GroupNorm and InstanceNorm beyond the op cases: ONNX exports against torch,
hand-built ONNX graphs against ONNX Runtime, the ONNX node test cases, accuracy on inputs far
from 0, error messages, and BatchNorm checkpoints without num_batches_tracked."""
import copy
import warnings

import numpy as np
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx.backend.test.loader import load_model_tests

import cnncompile
import cnncompile.nn as cnn
from cnncompile import reference
from helpers import export_onnx, assert_close, random_input, run_torch


def export(torch_model, shape, opset):
    return export_onnx(torch_model, shape, opset)


def randomised(model, seed=0):
    """``model`` (torch) with affine parameters and running statistics off their defaults."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.dtype == torch.float32:
                low, high = (0.5, 1.5) if key.endswith(("weight", "running_var")) else (-.5, .5)
                value.copy_(torch.from_numpy(rng.uniform(low, high, value.shape).astype(np.float32)))
    return model.eval()


class ChannelsLast(torch.nn.Module):
    """LayerNorm over the last dimension of an (N, H, W, C)-shaped reshape."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm = torch.nn.Conv2d(3, 8, 1), torch.nn.LayerNorm(8, eps=1e-6)

    def forward(self, x):
        y = self.conv(x)
        return self.norm(y.reshape(y.shape[0], 4, 5, 8))


TORCH_MODELS = {
    "layer_norm_last": (lambda: torch.nn.LayerNorm(6), (1, 5, 6), 17),
    "layer_norm_two": (lambda: torch.nn.LayerNorm((4, 6), bias=False), (1, 3, 4, 6), 17),
    "layer_norm_plain": (lambda: torch.nn.LayerNorm((3, 4, 6), elementwise_affine=False),
                         (1, 3, 4, 6), 17),
    "layer_norm_channels_last": (ChannelsLast, (1, 3, 4, 5), 17),
    "group_norm": (lambda: torch.nn.GroupNorm(2, 6), (1, 6, 5, 4), 17),
    "group_norm_opset18": (lambda: torch.nn.GroupNorm(3, 6, eps=1e-3), (1, 6, 7), 18),
    "instance_norm_2d": (lambda: torch.nn.InstanceNorm2d(4, affine=True), (1, 4, 5, 5), 17),
    "instance_norm_1d": (lambda: torch.nn.InstanceNorm1d(4), (1, 4, 9), 17),
}


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_onnx_export_matches_torch(name):
    build, shape, opset = TORCH_MODELS[name]
    torch.manual_seed(0)
    twin = randomised(build())
    compiled = cnncompile.from_onnx(export(twin, shape, opset), werror=True)
    for batch in (1, 3):
        x = random_input((batch,) + shape[1:], seed=batch) + 3.0
        assert_close(compiled(x), run_torch(twin, x), f"{name} batch {batch}")


# -- hand-built graphs, against ONNX Runtime ------------------------------------------------
def make_model(node, inits, in_shape, opset):
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, in_shape)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    return model


def run_ort(model, x):
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("opset,count", [(18, 2), (21, 6)], ids=["per-group", "per-channel"])
def test_group_normalization_scale_per_group_and_per_channel(opset, count):
    """Opset 18 gives GroupNormalization a scale and bias per group, opset 21 per channel."""
    rng = np.random.default_rng(1)
    inits = {"s": rng.uniform(0.5, 1.5, count), "b": rng.uniform(-0.5, 0.5, count)}
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2,
                            epsilon=1e-3)
    model = make_model(node, inits, ["N", 6, 3, 4], opset)
    x = random_input((2, 6, 3, 4)) + 5.0
    if opset == 18:  # this ONNX Runtime runs only opset 21's form: per group, spelled out
        expected = run_ort(make_model(node, {k: np.repeat(v, 3) for k, v in inits.items()},
                                      ["N", 6, 3, 4], 21), x)
    else:
        expected = run_ort(model, x)
    compiled = cnncompile.from_onnx(model, werror=True)
    assert_close(compiled(x), expected)
    bad = make_model(node, {k: np.repeat(v, 3) for k, v in inits.items()}, ["N", 6, 3, 4], 18)
    with pytest.raises(cnncompile.CompileError, match="2 values .one per group in opset 18"):
        cnncompile.from_onnx(bad)


def test_layer_and_instance_normalization_against_onnxruntime():
    rng = np.random.default_rng(2)
    ln = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-2, epsilon=1e-4)
    model = make_model(ln, {"s": rng.uniform(0.5, 1.5, (1, 5)), "b": rng.uniform(-1, 1, 5)},
                       ["N", 3, 4, 5], 17)  # scale and bias broadcast over the normalised dims
    x = random_input((2, 3, 4, 5)) - 7.0
    assert_close(cnncompile.from_onnx(model, werror=True)(x), run_ort(model, x))
    inorm = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)
    model = make_model(inorm, {"s": rng.uniform(0.5, 1.5, 3), "b": rng.uniform(-1, 1, 3)},
                       ["N", 3, 4, 5], 17)
    assert_close(cnncompile.from_onnx(model, werror=True)(x), run_ort(model, x))


def test_layer_normalization_statistics_outputs_are_refused():
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y", "mean"], axis=-1)
    model = make_model(node, {"s": np.ones(5)}, ["N", 3, 5], 17)
    with pytest.raises(cnncompile.UnsupportedError, match="not Mean and InvStdDev"):
        cnncompile.from_onnx(model)


def _node_cases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        every = load_model_tests(kind="node")
    ops = {"LayerNormalization", "GroupNormalization", "InstanceNormalization"}
    return [c for c in every
            if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in ops]


NODE_CASES = _node_cases()


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_onnx_node_case(case):
    """The ONNX node test cases, their weights bound as initializers (as in
    test_onnx_conformance.py) and LayerNormalization's statistics outputs dropped; the cases
    that normalise over dimension 0, the batch, must be refused."""
    model = copy.deepcopy(case.model)
    inputs, outputs = case.data_sets[0]
    for value_info, array in zip(list(model.graph.input)[1:], inputs[1:]):
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(array), value_info.name))
    del model.graph.input[1:]
    del model.graph.output[1:]
    del model.graph.node[0].output[1:]
    x = np.asarray(inputs[0])
    node = model.graph.node[0]
    axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
    if node.op_type == "LayerNormalization" and axis % x.ndim == 0:
        with pytest.raises(cnncompile.UnsupportedError, match="the batch included"):
            cnncompile.from_onnx(model, input_shape=x.shape)
        return
    compiled = cnncompile.from_onnx(model, input_shape=x.shape, werror=True)
    np.testing.assert_allclose(compiled(x), outputs[0], rtol=max(1e-4, case.rtol),
                               atol=max(1e-5, case.atol))


# -- accuracy and errors --------------------------------------------------------------------
@pytest.mark.parametrize("layer", [cnn.LayerNorm(64), cnn.GroupNorm(4, 8)], ids=repr)
def test_inputs_far_from_zero_keep_float_accuracy(layer):
    """A mean of 1000 and a spread of 1: the C centres each row before it sums, so it stays
    within 1e-5 of the float64 reference (a float mean alone would be off by 3e-5)."""
    shape = (1, 8, 64) if isinstance(layer, cnn.LayerNorm) else (1, 8, 5, 5)
    compiled = cnncompile.compile(cnn.Sequential(layer).eval(), shape, werror=True)
    x = random_input((3,) + shape[1:]) + 1000.0
    assert_close(compiled(x), reference.run(compiled.graph, x), atol=1e-5, rtol=1e-5)


def test_errors_name_the_layer_and_say_what_to_write():
    with pytest.raises(cnncompile.ShapeError, match=r"0: LayerNorm expects trailing dimensions "
                                                    r"\[6\].*use nn.LayerNorm\(\[5\]\)"):
        cnncompile.compile(cnn.Sequential(cnn.LayerNorm(6)), (1, 3, 5))
    with pytest.raises(cnncompile.UnsupportedError, match=r"the batch included.*"
                                                          r"nn.LayerNorm\(\[3, 5\]\)"):
        cnncompile.compile(cnn.Sequential(cnn.LayerNorm((2, 3, 5))), (2, 3, 5))
    with pytest.raises(cnncompile.ShapeError, match="cannot split the 6 channels .* such as 3"):
        cnncompile.compile(cnn.Sequential(cnn.GroupNorm(4, 8)), (1, 6, 3, 3))
    with pytest.raises(ValueError, match="num_channels must be divisible by num_groups"):
        cnn.GroupNorm(3, 8)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        cnncompile.compile(cnn.Sequential(cnn.InstanceNorm2d(3)), (1, 3, 1, 1))
    with pytest.raises(ValueError, match="batched 3-D input"):
        cnncompile.compile(cnn.Sequential(cnn.InstanceNorm1d(3)), (1, 3, 4, 4))


def test_eager_functional_forms_run_the_reference():
    x = random_input((2, 4, 3, 5)) + 10.0
    t = torch.from_numpy(x)
    pairs = [(cnn.functional.layer_norm(x, (3, 5)), torch.nn.functional.layer_norm(t, (3, 5))),
             (cnn.functional.group_norm(x, 2), torch.nn.functional.group_norm(t, 2)),
             (cnn.functional.instance_norm(x), torch.nn.functional.instance_norm(t))]
    for ours, theirs in pairs:
        assert_close(ours, theirs.numpy(), atol=2e-5)


def test_reprs_match_torch():
    for args, kwargs in [(("LayerNorm", (4, 5)), dict(eps=1e-6, bias=False)),
                         (("GroupNorm", 2, 6), dict(affine=False)),
                         (("GroupNorm", 2, 6), dict(bias=False)),
                         (("InstanceNorm1d", 3), {}),
                         (("InstanceNorm2d", 3), dict(affine=True, track_running_stats=True)),
                         (("InstanceNorm3d", 3), dict(affine=True, bias=False))]:
        name, *rest = args
        ours, theirs = getattr(cnn, name)(*rest, **kwargs), getattr(torch.nn, name)(*rest, **kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())


# -- checkpoints without num_batches_tracked ------------------------------------------------
def _net(nn):
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
                         nn.InstanceNorm2d(4, affine=True, track_running_stats=True))


def test_state_dict_without_num_batches_tracked_loads_as_in_torch():
    """torch's BatchNorm fills in a missing num_batches_tracked (checkpoints older than the
    buffer, hand-built dicts); strict loading still reports every other missing key."""
    state = {k: v for k, v in randomised(_net(torch.nn)).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    ours, theirs = _net(cnn), _net(torch.nn)
    result = ours.load_state_dict(state)
    assert result.missing_keys == [] == theirs.load_state_dict(state).missing_keys
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())
    partial = {k: v for k, v in state.items() if k != "1.running_var"}
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "1.running_var"\.'):
        _net(cnn).load_state_dict(partial)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "1.running_var"\.'):
        _net(torch.nn).load_state_dict(partial)
    assert _net(cnn).load_state_dict(partial, strict=False).missing_keys == ["1.running_var"]
