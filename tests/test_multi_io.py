"""Models of several inputs and outputs: forward(x, y) returning a tuple, list or dict (nested
too), compiled against torch, the numpy reference and ONNX Runtime; the C interface that
names every pointer; the checks on the batch sizes of one call."""
import io
import json
import os
import subprocess
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import cnncompile
import cnncompile.nn as cnn
import cnncompile.nn.functional as cF
from cnncompile import reference
from cnncompile.build import THREAD_FLAGS
from cnncompile.cli import main as cli_main
from helpers import assert_close, random_input


def two_input_model(nn, F):
    """forward(x, y) -> {"out": ..., "aux": ...}; aux is also what "out" is computed from."""
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, padding=1)
            self.bn = nn.BatchNorm2d(16)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(10, 16)
            self.head = nn.Linear(16, 5)

        def forward(self, x, y):
            a = self.pool(F.relu(self.bn(self.conv(x)))).flatten(1)
            s = a + self.fc(y)
            return {"out": self.head(s), "aux": s}
    return TwoInputs().eval()


def twins(build):
    """The same model from cnncompile.nn and torch.nn, with torch's (random) weights."""
    torch.manual_seed(0)
    theirs = build(torch.nn, torch.nn.functional)
    for m in theirs.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    ours = build(cnn, cF)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def leaves(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in leaves(v)]
    return [value]


def same_structure(a, b):
    """Equal nesting (types, keys, order) of two returned structures."""
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(
            same_structure(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same_structure, a, b))
    return True


def check_against_torch(compiled, theirs, shapes, batches=(1, 3)):
    for batch in batches:
        xs = [random_input((batch,) + tuple(s[1:]), seed=batch + i) for i, s in enumerate(shapes)]
        got = compiled(*xs)
        with torch.inference_mode():
            expected = theirs(*[torch.from_numpy(x) for x in xs])
        expected = torch.utils._pytree.tree_map(lambda t: t.numpy(), expected)
        assert same_structure(got, expected), (got, expected)
        for a, b in zip(leaves(got), leaves(expected)):
            assert_close(a, b, f"batch {batch} vs torch")
        for a, b in zip(leaves(got), leaves(reference.run(compiled.graph, *xs))):
            assert_close(a, b, f"batch {batch} vs reference")


SHAPES = [(1, 3, 8, 8), (1, 10)]


@pytest.fixture(scope="module")
def two_inputs():
    ours, theirs = twins(two_input_model)
    return cnncompile.compile(ours, input_shape=SHAPES, werror=True), theirs


def test_two_inputs_dict_output_against_torch(two_inputs):
    compiled, theirs = two_inputs
    check_against_torch(compiled, theirs, SHAPES)
    assert compiled.input_names == ["x", "y"] and compiled.output_names == ["out", "aux"]
    assert compiled.input_shapes == [(3, 8, 8), (10,)]
    assert compiled.output_shapes == [(5,), (16,)]


def test_from_torch_two_inputs(two_inputs):
    _, theirs = two_inputs
    compiled = cnncompile.from_torch(theirs, SHAPES, werror=True)
    check_against_torch(compiled, theirs, SHAPES, batches=(2,))
    assert compiled.input_names == ["x", "y"] and compiled.output_names == ["out", "aux"]


def test_call_by_name_unbatched_and_empty(two_inputs):
    compiled, _ = two_inputs
    x, y = random_input((2, 3, 8, 8)), random_input((2, 10), seed=1)
    got = compiled(x, y)
    by_name = compiled(y=y, x=x)
    assert all(np.array_equal(got[k], by_name[k]) for k in got)
    one = compiled(x[0], y[0])
    assert one["out"].shape == (5,) and np.allclose(one["out"], got["out"][0])
    assert compiled(x[:0], y[:0])["aux"].shape == (0, 16)
    with pytest.raises(TypeError, match="missing input"):
        compiled(x)
    with pytest.raises(TypeError, match="no input named 'z'"):
        compiled(x, z=y)


def test_mismatched_batch_sizes_refused(two_inputs):
    compiled, _ = two_inputs
    with pytest.raises(ValueError, match=r"batch sizes x: 3, y: 1; every input .* same batch"):
        compiled(random_input((3, 3, 8, 8)), random_input((1, 10)))
    with pytest.raises(ValueError, match="some inputs have a batch axis"):
        compiled(random_input((1, 3, 8, 8)), random_input((10,)))
    with pytest.raises(ValueError, match=r"expected input y of shape \(N, 10\)"):
        compiled(random_input((1, 3, 8, 8)), random_input((1, 11)))
    with pytest.raises(ValueError, match="same batch size"):
        cnncompile.compile(two_input_model(cnn, cF), [(1, 3, 8, 8), (2, 10)])
    with pytest.raises(Exception, match="forward.. takes 2 tensor arguments"):
        cnncompile.compile(two_input_model(cnn, cF), [(1, 3, 8, 8), (1, 10), (1, 4)])


def test_header_names_every_pointer(two_inputs):
    compiled, _ = two_inputs
    h, p = compiled.header, compiled.prefix
    assert "const float *input_x,  /* input x: (batch, 3, 8, 8) */" in h
    assert "const float *input_y,  /* input y: (batch, 10) */" in h
    assert "float *output_out,  /* output out: (batch, 5) */" in h
    assert "float *output_aux,  /* output aux: (batch, 16) */" in h
    assert f"#define {p.upper()}_INPUT_X_SIZE 192" in h
    assert f"#define {p.upper()}_OUTPUT_AUX_SIZE 16" in h
    assert (f"int {p}_forward(const float *input_x, const float *input_y, float *output_out, "
            "float *output_aux, int batch, void *workspace)") in compiled.c_source


def test_summary_and_repr_show_every_input_and_output(two_inputs):
    compiled, _ = two_inputs
    assert repr(compiled) == (f"CompiledModel({compiled.prefix}: x: (N, 3, 8, 8), y: (N, 10) "
                              "-> out: (N, 5), aux: (N, 16))")
    assert ("Inputs x (N, 3, 8, 8), y (N, 10) -> outputs out (N, 5), aux (N, 16); "
            in compiled.summary())


def test_save_and_load(two_inputs, tmp_path):
    compiled, _ = two_inputs
    compiled.save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert [p["name"] for p in meta["inputs"]] == ["x", "y"]
    loaded = cnncompile.load(tmp_path)
    x, y = random_input((3, 3, 8, 8)), random_input((3, 10), seed=1)
    got, want = loaded(x, y), compiled(x, y)
    assert list(got) == ["out", "aux"] and all(np.array_equal(got[k], want[k]) for k in got)
    assert repr(loaded) == repr(compiled)


def test_profile_several_inputs(two_inputs):
    compiled, _ = two_inputs
    xs = (random_input((1, 3, 8, 8)), random_input((1, 10)))
    stats = compiled.profile(xs, repeat=2, warmup=1, layers=True)
    assert stats["batch"] == 1 and stats["layers"]


def pyramid(nn, F):
    """A tuple of features, the first also read by the layer that makes the second (channel
    counts that run on 16-channel blocks)."""
    class Pyramid(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(16, 32, 3, padding=1)
            self.c2 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
            self.c3 = nn.Conv2d(32, 16, 1)

        def forward(self, x):
            f1 = F.relu(self.c1(x))
            f2 = F.relu(self.c2(f1))
            return f1, f2, self.c3(f2) + 1.0
    return Pyramid().eval()


def test_tuple_output_that_feeds_another_layer():
    ours, theirs = twins(pyramid)
    compiled = cnncompile.compile(ours, (1, 16, 16, 16), werror=True)
    check_against_torch(compiled, theirs, [(1, 16, 16, 16)])
    assert compiled.output_names == ["0", "1", "2"]
    assert "float *output_0,  /* output 0: (batch, 32, 16, 16) */" in compiled.header


def passthrough(nn, F):
    """The input returned as is and as a view, and one tensor returned twice."""
    class Passthrough(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)

        def forward(self, x):
            y = F.relu(self.conv(x))
            return x, y, y, x.flatten(1), y.flatten(1)
    return Passthrough().eval()


def test_input_and_repeated_tensor_as_outputs():
    ours, theirs = twins(passthrough)
    compiled = cnncompile.compile(ours, (1, 2, 5, 5), werror=True)
    check_against_torch(compiled, theirs, [(1, 2, 5, 5)])
    # stored once each (y, its view, x and its view are the same floats): 4 copies
    assert compiled.c_source.count("memcpy(") == 4
    x = random_input((2, 2, 5, 5))
    out = compiled(x)
    assert np.array_equal(out[0], x) and out[1] is not out[2]


def nested(nn, F):
    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 4)
            self.b = nn.Linear(3, 4)

        def forward(self, u, v):
            a, b = self.a(u), self.b(v)
            return a, [b, {"sum": a + b, "u": u}]
    return Nested().eval()


def test_nested_structure():
    ours, theirs = twins(nested)
    shapes = [(1, 6), (1, 3)]
    compiled = cnncompile.compile(ours, shapes, werror=True)
    check_against_torch(compiled, theirs, shapes)
    assert compiled.output_names == ["0", "1.0", "1.1.sum", "1.1.u"]
    assert "float *output_1_1_sum," in compiled.header


def wide(nn, F):
    """Large weights on small inputs: layers that compute a group of samples at once."""
    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(64, 512)
            self.fc2 = nn.Linear(512, 256)
            self.other = nn.Linear(32, 256)

        def forward(self, x, y):
            h = self.fc2(F.relu(self.fc1(x)))
            return h, h + self.other(y), y
    return Wide().eval()


@pytest.mark.parametrize("group", [1, 4])
def test_several_inputs_in_sample_groups(group):
    ours, theirs = twins(wide)
    shapes = [(1, 64), (1, 32)]
    compiled = cnncompile.compile(ours, shapes, werror=True, batch_group=group)
    check_against_torch(compiled, theirs, shapes, batches=(1, 5, 9))
    if group > 1:
        assert "static void run_group(" in compiled.c_source


def test_one_input_one_output_unchanged():
    """A model of one input and one output keeps its interface: x/y, input/output."""
    model = cnn.Sequential(cnn.Conv2d(1, 2, 3), cnn.ReLU())
    compiled = cnncompile.compile(model, (1, 1, 6, 6), werror=True)
    assert "int sequential_forward(const float *input, float *output, int batch, " \
           "void *workspace);" in compiled.header
    assert "#define SEQUENTIAL_INPUT_SIZE 36" in compiled.header
    assert repr(compiled) == "CompiledModel(sequential: (N, 1, 6, 6) -> (N, 2, 4, 4))"
    assert isinstance(compiled(random_input((2, 1, 6, 6))), np.ndarray)


def test_reference_interpreter_several_inputs():
    ours, theirs = twins(two_input_model)
    graph = cnncompile.api.build_graph(ours, SHAPES)
    x, y = random_input((3, 3, 8, 8)), random_input((3, 10), seed=1)
    got = reference.run(graph, x, y)
    with torch.inference_mode():
        want = theirs(torch.from_numpy(x), torch.from_numpy(y))
    assert list(got) == ["out", "aux"]
    for k in got:
        assert_close(got[k], want[k].numpy(), k)
    with pytest.raises(ValueError, match="takes 2 input"):
        reference.run(graph, x)
    with pytest.raises(ValueError, match="batch sizes"):
        reference.run(graph, x, y[:1])


# -- ONNX ------------------------------------------------------------------------------------
def onnx_two_by_two():
    """Inputs a (N, 3, 6, 6) and b (N, 4); outputs feat = conv(relu(a)) + 0.5 and
    logits = gemm(b) + mean of feat, in that order; feat is also read by logits."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in [("w", (5, 3, 3, 3)), ("wb", (5,)), ("g", (5, 4)), ("gb", (5,)),
                          ("half", ())]]
    inits.append(numpy_helper.from_array(np.array([0, 5], np.int64), "flat"))
    nodes = [helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w", "wb"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "half"], ["feat"], name="shift"),
             helper.make_node("GlobalAveragePool", ["feat"], ["p"], name="pool"),
             helper.make_node("Reshape", ["p", "flat"], ["pf"], name="flatten"),
             helper.make_node("Gemm", ["b", "g", "gb"], ["lin"], name="fc", transB=1),
             helper.make_node("Add", ["lin", "pf"], ["logits"], name="sum")]
    graph = helper.make_graph(
        nodes, "two_by_two",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3, 6, 6]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["N", 5, 6, 6]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_onnx_two_inputs_two_outputs_against_onnxruntime():
    model = onnx_two_by_two()
    compiled = cnncompile.from_onnx(model, werror=True)
    assert compiled.input_names == ["a", "b"] and compiled.output_names == ["feat", "logits"]
    assert "float *output_logits,  /* output logits: (batch, 5) */" in compiled.header
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        a, b = random_input((batch, 3, 6, 6), seed=batch), random_input((batch, 4), seed=9)
        got = compiled(a, b)
        assert isinstance(got, tuple) and len(got) == 2
        for g, w, name in zip(got, session.run(None, {"a": a, "b": b}), ["feat", "logits"]):
            assert_close(g, w, f"{name} batch {batch}")


def test_onnx_export_of_torch_two_inputs():
    _, theirs = twins(nested)
    f = io.BytesIO()
    u, v = torch.zeros(1, 6), torch.zeros(1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(theirs, (u, v), f, dynamo=False, input_names=["u", "v"],
                          output_names=["a", "b", "sum", "u_out"],
                          dynamic_axes={k: {0: "N"} for k in ["u", "v", "a", "b", "sum"]})
    compiled = cnncompile.from_onnx(onnx.load_from_string(f.getvalue()), werror=True)
    u, v = random_input((3, 6)), random_input((3, 3), seed=1)
    got = compiled(u, v)
    with torch.inference_mode():
        want = leaves(theirs(torch.from_numpy(u), torch.from_numpy(v)))
    assert len(got) == 4
    for g, w in zip(got, want):
        assert_close(g, w.numpy())


def test_onnx_input_shape_list():
    model = onnx_two_by_two()
    compiled = cnncompile.from_onnx(model, [(2, 3, 6, 6), None], werror=True)
    assert compiled.input_shapes == [(3, 6, 6), (4,)]
    with pytest.raises(ValueError, match="list of as many shapes"):
        cnncompile.from_onnx(model, (1, 3, 6, 6))


def test_cli_several_input_shapes(tmp_path, capsys):
    path = tmp_path / "two.py"
    path.write_text("import cnncompile.nn as nn\n"
                    "class Two(nn.Module):\n"
                    "    def __init__(self):\n"
                    "        super().__init__()\n"
                    "        self.a = nn.Linear(4, 3)\n"
                    "        self.b = nn.Linear(2, 3)\n"
                    "    def forward(self, x, y):\n"
                    "        return self.a(x) + self.b(y), x\n")
    out = tmp_path / "out"
    assert cli_main(["compile", str(path), "--input-shape", "1,4", "--input-shape", "1,2",
                     "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Inputs x (N, 4), y (N, 2) -> outputs 0 (N, 3), 1 (N, 4)" in text
    assert "Check: max |compiled - numpy reference| = " in text
    assert "const float *input_y," in (out / "model.h").read_text()


MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

/* Reads x.bin and y.bin (batch samples each), writes out.bin and aux.bin. */
static float *read_floats(const char *path, size_t n)
{
    float *p = malloc(sizeof(float) * n);
    FILE *f = fopen(path, "rb");
    if (!p || !f || fread(p, sizeof(float), n, f) != n)
        exit(3);
    fclose(f);
    return p;
}

static void write_floats(const char *path, const float *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, sizeof(float), n, f) != n)
        exit(4);
    fclose(f);
}

int main(int argc, char **argv)
{
    const size_t batch = argc > 1 ? (size_t)atoi(argv[1]) : 1;
    float *x = read_floats("x.bin", batch * {MACRO}_INPUT_X_SIZE);
    float *y = read_floats("y.bin", batch * {MACRO}_INPUT_Y_SIZE);
    float *out = malloc(sizeof(float) * batch * {MACRO}_OUTPUT_OUT_SIZE);
    float *aux = malloc(sizeof(float) * batch * {MACRO}_OUTPUT_AUX_SIZE);
    void *ws = malloc({prefix}_workspace_size());
    const int rc = {prefix}_forward(x, y, out, aux, (int)batch, ws);
    write_floats("out.bin", out, batch * {MACRO}_OUTPUT_OUT_SIZE);
    write_floats("aux.bin", aux, batch * {MACRO}_OUTPUT_AUX_SIZE);
    free(x), free(y), free(out), free(aux), free(ws);
    return rc;
}
"""


def test_c_program_calls_the_named_pointers_under_sanitizers(two_inputs, tmp_path):
    """model.h alone is enough to call the model from C; ASan and UBSan find nothing."""
    compiled, _ = two_inputs
    out = compiled.save(tmp_path)
    main = MAIN.replace("{MACRO}", compiled.prefix.upper()).replace("{prefix}", compiled.prefix)
    (out / "main.c").write_text(main)
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]
    res = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", *THREAD_FLAGS, *flags, "model.c",
                          "main.c", "-o", "model", "-lm"], cwd=out, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    x, y = random_input((3, 3, 8, 8)), random_input((3, 10), seed=1)
    x.tofile(out / "x.bin")
    y.tofile(out / "y.bin")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    res = subprocess.run(["./model", "3"], cwd=out, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    want = compiled(x, y)
    assert_close(np.fromfile(out / "out.bin", np.float32).reshape(3, 5), want["out"])
    assert_close(np.fromfile(out / "aux.bin", np.float32).reshape(3, 16), want["aux"])
