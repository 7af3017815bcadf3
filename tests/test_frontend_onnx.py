"""The ONNX frontend: exported models against torch, hand-built graphs against ONNX Runtime,
and malformed or hostile files, each refused before anything is written."""
import math
import os

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnncompile
from cnncompile.cli import main as cli_main
from helpers import export_onnx, EXAMPLES, assert_close, random_input, run_torch
from models import pair


def export(torch_model, shape):
    return export_onnx(torch_model, shape)


@pytest.mark.parametrize("name", EXAMPLES)
def test_benchmark_model_from_onnx(name):
    """The torch benchmark model, exported to ONNX with a symbolic batch, compiles and agrees
    with torch at batch 1 and 3."""
    _, twin, shape = pair(name)
    compiled = cnncompile.from_onnx(export(twin, shape), werror=True)
    assert compiled.input_shape == tuple(shape[1:])
    for batch in (1, 3):
        x = random_input((batch,) + tuple(shape[1:]), seed=batch)
        expected = run_torch(twin, x)
        rtol, atol = 1e-4, 1e-5  # the acceptance tolerance, Winograd layers included
        assert_close(compiled(x), expected, f"{name} batch {batch}", rtol, atol)


# -- hand-built graphs, against ONNX Runtime ------------------------------------------------
def make_model(nodes, inits, in_shape, out_shape, opset=17, name="g", input_name="x"):
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # what this ONNX Runtime reads
    return model


def run_ort(model, x):
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def check_against_ort(model, shape, batches=(1, 2)):
    compiled = cnncompile.from_onnx(model, werror=True)
    for batch in batches:
        x = random_input((batch,) + tuple(shape[1:]), seed=batch)
        assert_close(compiled(x), run_ort(model, x), f"batch {batch} vs ONNX Runtime")
    return compiled


def rand(*shape, seed=0):
    return np.random.default_rng(seed + len(shape)).standard_normal(shape).astype(np.float32) * 0.5


def test_convolutions_pools_and_activations_against_onnxruntime():
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv/asym", pads=[0, 1, 2, 1],
                         strides=[2, 1]),
        helper.make_node("PRelu", ["c1", "slope"], ["p1"], name="prelu"),
        helper.make_node("AveragePool", ["p1"], ["a1"], kernel_shape=[3, 3], auto_pad="SAME_UPPER",
                         strides=[2, 2]),
        helper.make_node("Conv", ["a1", "w2"], ["c2"], group=2, auto_pad="SAME_LOWER",
                         kernel_shape=[3, 3]),
        helper.make_node("HardSigmoid", ["c2"], ["h"], alpha=0.3, beta=0.4),
        helper.make_node("Pad", ["h", "pads"], ["pd"], mode="reflect"),
        helper.make_node("MaxPool", ["pd"], ["m"], kernel_shape=[2, 2], pads=[1, 0, 0, 1]),
        helper.make_node("ConvTranspose", ["m", "wt"], ["t"], strides=[2, 2],
                         output_shape=[12, 16]),  # one more than the full 11 x 15
        helper.make_node("Clip", ["t", "lo", "hi"], ["cl"]),
        helper.make_node("Mul", ["cl", "scale"], ["ms"]),
        helper.make_node("Softmax", ["ms"], ["y"], axis=1),
    ]
    inits = {"w1": rand(4, 3, 3, 2), "b1": rand(4), "slope": rand(4, 1, 1), "w2": rand(6, 2, 3, 3),
             "pads": np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64), "wt": rand(6, 3, 3, 3),
             "lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32),
             "scale": rand(3, 1, 16, seed=3)}
    model = make_model(nodes, inits, ["N", 3, 11, 9], ["N", 3, 12, 16], opset=11)
    compiled = check_against_ort(model, (1, 3, 11, 9))
    assert "conv/asym" in compiled.graph.nx.nodes  # ONNX names are the layer names


def test_gemm_matmul_flatten_and_constant_folding_against_onnxruntime():
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Shape", ["g"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["newshape"], axis=0),
        helper.make_node("Reshape", ["g", "newshape"], ["r"]),
        helper.make_node("Gemm", ["r", "wg", "bg"], ["gm"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("LeakyRelu", ["gm"], ["lr"], alpha=0.2),
        helper.make_node("MatMul", ["lr", "wm"], ["mm"]),
        helper.make_node("Add", ["bias", "mm"], ["ad"]),
        helper.make_node("Flatten", ["ad"], ["y"]),
    ]
    inits = {"zero": np.array(0, np.int64), "zero1": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64), "wg": rand(7, 5), "bg": rand(7),
             "wm": rand(7, 4), "bias": rand(1, 4)}
    check_against_ort(make_model(nodes, inits, ["N", 5, 6, 6], ["N", 4], opset=13),
                      (1, 5, 6, 6))


def test_batch_norm_concat_and_hardswish_on_a_3d_input():
    nodes = [
        helper.make_node("BatchNormalization", ["x", "sc", "bi", "mu", "var"], ["bn"],
                         epsilon=1e-3),
        helper.make_node("HardSwish", ["bn"], ["hs"]),
        helper.make_node("Conv", ["hs", "w"], ["c"], pads=[1, 1]),
        helper.make_node("Concat", ["c", "hs"], ["cc"], axis=1),
        helper.make_node("MaxPool", ["cc"], ["y"], kernel_shape=[2], strides=[2]),
    ]
    inits = {"sc": rand(4) + 1, "bi": rand(4), "mu": rand(4), "var": np.abs(rand(4)) + 0.5,
             "w": rand(5, 4, 3)}
    check_against_ort(make_model(nodes, inits, ["N", 4, 10], ["N", 9, 5]), (1, 4, 10))


def test_old_opset_is_converted():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Clip", ["c"], ["y"], min=-0.2, max=0.3)]
    model = make_model(nodes, {"w": rand(2, 3, 3, 3)}, [1, 3, 5, 5], [1, 2, 3, 3], opset=9)
    check_against_ort(model, (1, 3, 5, 5), batches=(1,))


# -- what the importer refuses --------------------------------------------------------------
def conv_model(**attrs):
    w = attrs.pop("weight", rand(4, 3, 3, 3))
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    return make_model([node], {"w": w}, [1, 3, 8, 8], None)


@pytest.fixture
def cache_is_untouched(_build_cache):
    before = sorted(p.name for p in _build_cache.iterdir())
    yield
    assert sorted(p.name for p in _build_cache.iterdir()) == before, "a build was written"


def refused(model, match, error=cnncompile.ModelFileError):
    with pytest.raises(error, match=match):
        cnncompile.from_onnx(model)


def with_initializer(tensor):
    node = helper.make_node("Add", ["x", tensor.name], ["y"])
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [tensor])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def external(tensor_name, location, offset=0, length=16):
    t = TensorProto(name=tensor_name, data_type=TensorProto.FLOAT, dims=[4])
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


@pytest.mark.usefixtures("cache_is_untouched")
class TestRefusedFiles:
    def test_external_data_outside_the_folder(self, tmp_path):
        secret = tmp_path / "secret.bin"
        secret.write_bytes(np.ones(4, np.float32).tobytes())
        folder = tmp_path / "model"
        folder.mkdir()
        (folder / "link.bin").symlink_to(secret)
        for location, match in (("../secret.bin", "outside the model's folder"),
                                (str(secret), "relative to the model's folder"),
                                ("link.bin", "outside the model's folder"),
                                ("missing.bin", "does not exist")):
            path = folder / "m.onnx"
            onnx.save(with_initializer(external("b", location)), str(path))
            refused(path, match)
        refused(with_initializer(external("b", "w.bin")), "load the model from its path")

    def test_external_data_range_beyond_the_file(self, tmp_path):
        (tmp_path / "w.bin").write_bytes(np.zeros(4, np.float32).tobytes())
        onnx.save(with_initializer(external("b", "w.bin", offset=8)), str(tmp_path / "m.onnx"))
        refused(tmp_path / "m.onnx", "lies outside")

    def test_initializer_size_does_not_match_its_shape(self):
        raw = TensorProto(name="b", data_type=TensorProto.FLOAT, dims=[4],
                          raw_data=np.zeros(3, np.float32).tobytes())
        refused(with_initializer(raw), "holds 12 bytes but its shape \\[4\\]")
        typed = helper.make_tensor("b", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
        del typed.float_data[3]
        refused(with_initializer(typed), "holds 3 values but its shape \\[4\\] needs 4")

    def test_negative_and_absurd_dimensions(self):
        refused(with_initializer(TensorProto(name="b", data_type=TensorProto.FLOAT, dims=[-4])),
                "negative dimension")
        refused(with_initializer(TensorProto(name="b", data_type=TensorProto.FLOAT,
                                             dims=[1 << 20, 1 << 20])), "more than cnncompile accepts")
        node = helper.make_node("Relu", ["x"], ["y"])
        graph = helper.make_graph([node], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, -3])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
        refused(helper.make_model(graph), "negative dimension")

    def test_attribute_lengths_must_match_the_spatial_rank(self):
        refused(conv_model(strides=[1, 1, 1]), "conv: Conv: attribute strides has 3 values")
        refused(conv_model(pads=[1, 1, 1]), "attribute pads has 3 values")
        refused(conv_model(dilations=[1]), "attribute dilations has 1 values")

    def test_kernel_shape_must_match_the_weight(self):
        refused(conv_model(kernel_shape=[5, 5]), "kernel_shape \\[5, 5\\] disagrees")

    def test_group_must_divide_the_channels(self):
        refused(conv_model(group=2), "group 2 must be positive and divide")
        refused(conv_model(group=0), "group 0")
        refused(conv_model(group=3, weight=rand(4, 1, 3, 3)), "group 3 must be positive")

    def test_strides_and_dilations_must_be_positive(self):
        refused(conv_model(strides=[0, 1]), "strides = \\[0, 1\\] must be positive")
        refused(conv_model(dilations=[1, -2]), "dilations = \\[1, -2\\] must be positive")
        refused(conv_model(pads=[0, 0, -1, 0]), "pads = .* must not be negative")

    def test_attributes_of_the_wrong_type_or_unknown_to_the_op(self):
        # found by tests/test_fuzz_onnx.py: an INT kernel_shape raised a bare TypeError, and
        # attributes the op does not have were ignored where ONNX Runtime refuses them
        refused(conv_model(kernel_shape=3), "attribute kernel_shape has type INT; Conv takes INTS")
        refused(conv_model(group=[1]), "attribute group has type INTS; Conv takes INT")
        refused(conv_model(alpha=0.5), "'alpha' is not an attribute of Conv \\(opset 17\\)")
        leaky = make_model([helper.make_node("LeakyRelu", ["x"], ["y"], alpha=math.nan)], {},
                           [1, 3], None)
        refused(leaky, "attribute alpha = nan must be a finite number")

    def test_weights_must_be_float_tensors(self):
        # found by tests/test_fuzz_onnx.py: int32 weights were converted to float32
        refused(conv_model(weight=np.ones((4, 3, 3, 3), np.int32)),
                "the weight W is a tensor of int32; Conv takes float tensors")
        add = make_model([helper.make_node("Add", ["x", "c"], ["y"])],
                         {"c": np.ones(3, np.int64)}, [1, 3], None)
        refused(add, "the constant operand is a tensor of int64")

    def test_wrong_input_counts_and_huge_computed_shapes(self):
        relu = make_model([helper.make_node("Relu", ["x", "x"], ["y"], name="r")], {},
                          [1, 3, 4, 4], None)
        refused(relu, "r: Relu: 2 inputs is not a valid number")
        conv = make_model([helper.make_node("Conv", ["x", ""], ["y"], name="c")], {},
                          [1, 3, 4, 4], None)
        refused(conv, "c: Conv: the weight W is missing")
        pad = make_model([helper.make_node("Pad", ["x", "p"], ["y"], name="p")],
                         {"p": np.array([0, 0, 0, 0, 0, 0, 1 << 19, 1 << 19], np.int64)},
                         [1, 3, 4, 4], None)
        refused(pad, "would have shape")

    def test_every_unsupported_node_is_listed(self):
        nodes = [helper.make_node("Relu", ["x"], ["a"]),
                 helper.make_node("Sin", ["a"], ["b"], name="sin1"),
                 helper.make_node("Det", ["b"], ["c"], name="det"),
                 helper.make_node("MyOp", ["c"], ["y"], domain="com.example", name="custom")]
        model = make_model(nodes, {}, [1, 3, 4, 4], None)
        model.opset_import.append(helper.make_opsetid("com.example", 1))
        with pytest.raises(cnncompile.UnsupportedError) as info:
            cnncompile.from_onnx(model)
        message = str(info.value)
        assert "3 unsupported nodes" in message
        for fragment in ("sin1: Sin", "det: Det", "custom: com.example.MyOp"):
            assert fragment in message

    def test_not_an_onnx_file(self, tmp_path):
        (tmp_path / "junk.onnx").write_bytes(b"\x00\x01 not a protobuf")
        refused(tmp_path / "junk.onnx", "not a readable ONNX model")


def test_external_data_inside_the_folder_is_read(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"pad!" + np.arange(4, dtype=np.float32).tobytes())
    onnx.save(with_initializer(external("b", "w.bin", offset=4)), str(tmp_path / "m.onnx"))
    compiled = cnncompile.from_onnx(tmp_path / "m.onnx")
    assert_close(compiled(np.zeros((2, 4), np.float32)), np.tile(np.arange(4.0), (2, 1)))


HOSTILE = ['*/ system("id"); /*', "line\nbreak", 'quote"s', "back\\slash", "??/", "\u202eevil",
           "", "x" * 300, "int", "layer_0", "a-b", "a_b"]


def test_hostile_names_never_reach_the_c_source():
    nodes, prev = [], 'in"put'
    for i, name in enumerate(HOSTILE):
        out = "y" if i == len(HOSTILE) - 1 else f"{name}#{i}"
        nodes.append(helper.make_node("Conv" if i % 2 else "Relu",
                                      [prev, "w"] if i % 2 else [prev], [out], name=name))
        prev = out
    model = make_model(nodes, {"w": rand(3, 3, 1, 1)}, ["N", 3, 4, 4], ["N", 3, 4, 4],
                       name='graph */ #include "x"', input_name='in"put')
    compiled = check_against_ort(model, (1, 3, 4, 4))
    source = compiled.c_source + compiled.header
    for name in HOSTILE[:6] + ["x" * 300, 'graph */ #include "x"', 'in"put']:
        assert name not in source, name
    assert "system(" not in source and "\u202e" not in source and "??/" not in source


def test_cli_compiles_an_onnx_file(tmp_path, capsys):
    _, twin, shape = pair("lenet5")
    onnx.save(export(twin, shape), str(tmp_path / "lenet.onnx"))
    assert cli_main(["compile", str(tmp_path / "lenet.onnx"), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "/features/features.0/Conv" in out and "Check: max |compiled - numpy reference|" in out
    loaded = cnncompile.load(tmp_path / "out")
    x = random_input((2,) + tuple(shape[1:]))
    assert_close(loaded(x), run_torch(twin, x), "CLI build vs torch")
    assert cli_main(["compile", str(tmp_path / "missing.onnx")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_input_shape_must_agree_with_the_file():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {}, ["N", 3, 4, 4], None)
    with pytest.raises(ValueError, match="disagrees with the model's input"):
        cnncompile.from_onnx(model, input_shape=(1, 3, 5, 4))
    symbolic = make_model([helper.make_node("Relu", ["x"], ["y"])], {}, ["N", 3, "H", 4], None)
    with pytest.raises(ValueError, match="symbolic dimensions"):
        cnncompile.from_onnx(symbolic)
    assert cnncompile.from_onnx(symbolic, input_shape=(2, 3, 5, 4)).input_shape == (3, 5, 4)


def test_onnx_is_not_needed_to_import_cnncompile():
    import subprocess
    import sys
    code = ("import sys, cnncompile, cnncompile.nn as nn; "
            "assert 'onnx' not in sys.modules and 'torch' not in sys.modules")
    env = dict(os.environ)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
