"""Fuzzing the ONNX importer: valid files, mutated, must never crash it or compile wrongly.

An ONNX file is untrusted input. hypothesis takes small valid models and mutates them the
way a corrupt or hostile file would: attributes set to lists of any length with zero,
negative or huge values; initializers given other dimensions, another data type, or raw
bytes cut short or padded; the input given other dimensions; nodes dropped or given another
op type; node inputs rewired or renamed to nothing; the serialized bytes themselves
flipped or cut. For each mutant the importer must either refuse it with one of the errors a
user is promised (ModelFileError and the other CompileErrors, ValueError, NotImplementedError)
or compile it; a model it compiles must run, and wherever ONNX Runtime also accepts the
mutant, the two must agree.

CNNCOMPILE_FUZZ_EXAMPLES sets the budget (default 25 mutants here; 60 more from the bytes).
"""
import os
import tempfile

import numpy as np
import onnxruntime
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import cnncompile
from helpers import assert_close

onnxruntime.set_default_logger_severity(3)  # its warnings about mutants are expected
EXAMPLES = int(os.environ.get("CNNCOMPILE_FUZZ_EXAMPLES", "25"))
PROMISED = (cnncompile.CompileError, ValueError, NotImplementedError)
OP_TYPES = ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "Relu",
            "LeakyRelu", "Sigmoid", "HardSigmoid", "Clip", "Gemm", "MatMul", "Flatten",
            "Reshape", "Add", "Mul", "Concat", "Softmax", "Pad", "Identity", "BatchNormalization"]
ATTRIBUTES = ["kernel_shape", "strides", "pads", "dilations", "group", "axis", "alpha",
              "transB", "ceil_mode", "count_include_pad", "auto_pad", "output_padding"]


def _rand(*shape, seed=0):
    rng = np.random.default_rng(seed + 7 * len(shape))
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


def _model(nodes, inits, in_shape):
    graph = helper.make_graph(
        nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what this ONNX Runtime reads
    return model


def conv_net():
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1),
        helper.make_node("BatchNormalization", ["c1", "sc", "bi", "mu", "var"], ["bn"],
                         name="bn", epsilon=1e-5),
        helper.make_node("Relu", ["bn"], ["r1"], name="relu"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2], pads=[0, 0, 0, 0], ceil_mode=0),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="dw", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], group=4),
        helper.make_node("Add", ["c2", "p1"], ["a"], name="residual"),
        helper.make_node("AveragePool", ["a"], ["ap"], name="avg", kernel_shape=[2, 2],
                         strides=[1, 1], count_include_pad=1),
        helper.make_node("Flatten", ["ap"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["g"], name="fc", transB=1, alpha=1.0),
        helper.make_node("Softmax", ["g"], ["y"], name="softmax", axis=1),
    ]
    inits = {"w1": _rand(4, 3, 3, 3), "b1": _rand(4), "sc": _rand(4) + 1, "bi": _rand(4),
             "mu": _rand(4), "var": np.abs(_rand(4)) + 0.5, "w2": _rand(4, 1, 3, 3),
             "wg": _rand(5, 36), "bg": _rand(5)}
    return _model(nodes, inits, [1, 3, 8, 8])


def transpose_net():
    nodes = [
        helper.make_node("ConvTranspose", ["x", "wt"], ["t"], name="up", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
        helper.make_node("Pad", ["t", "pads"], ["pd"], name="pad", mode="reflect"),
        helper.make_node("LeakyRelu", ["pd"], ["l"], name="leaky", alpha=0.1),
        helper.make_node("Concat", ["l", "l"], ["cc"], name="concat", axis=1),
        helper.make_node("GlobalAveragePool", ["cc"], ["g"], name="gap"),
        helper.make_node("Reshape", ["g", "shape"], ["r"], name="reshape"),
        helper.make_node("MatMul", ["r", "wm"], ["m"], name="matmul"),
        helper.make_node("Clip", ["m", "lo", "hi"], ["y"], name="clip"),
    ]
    inits = {"wt": _rand(2, 3, 3, 3), "pads": np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64),
             "shape": np.array([1, -1], np.int64), "wm": _rand(6, 4),
             "lo": np.array(-0.3, np.float32), "hi": np.array(0.4, np.float32)}
    return _model(nodes, inits, [1, 2, 5, 4])


BASES = {"conv_net": conv_net, "transpose_net": transpose_net}
NUMBERS = st.one_of(st.integers(-2, 5), st.sampled_from([0, -1, 1 << 31, 1 << 40, -(1 << 62)]))


@st.composite
def mutation(draw, model):
    graph = model.graph
    kind = draw(st.sampled_from(["attribute", "dims", "dtype", "raw", "input", "drop",
                                 "op_type", "rewire"]))
    if kind == "attribute":
        node = draw(st.sampled_from(graph.node))
        name = draw(st.sampled_from(ATTRIBUTES))
        value = draw(st.one_of(st.lists(NUMBERS, max_size=5), NUMBERS,
                               st.floats(-10, 10), st.just(float("nan")),
                               st.sampled_from(["SAME_UPPER", "VALID", "bogus", ""])))
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(kept)
        if not (isinstance(value, list) and not value):  # an empty list has no attribute type
            node.attribute.append(helper.make_attribute(name, value))
    elif kind in ("dims", "dtype", "raw"):
        tensor = draw(st.sampled_from(graph.initializer))
        if kind == "dims":
            tensor.dims[:] = draw(st.lists(NUMBERS, max_size=5))
        elif kind == "dtype":
            tensor.data_type = draw(st.sampled_from([0, 2, 6, 7, 10, 11, 16, 99]))
        else:
            cut = draw(st.integers(-8, 8))
            raw = tensor.raw_data
            tensor.raw_data = raw[:len(raw) + cut] if cut < 0 else raw + bytes(cut)
    elif kind == "input":
        dims = graph.input[0].type.tensor_type.shape.dim
        for dim, value in zip(dims, draw(st.lists(NUMBERS, min_size=len(dims),
                                                  max_size=len(dims)))):
            dim.dim_value = value
    elif kind == "drop":
        del graph.node[draw(st.integers(0, len(graph.node) - 1))]
    elif kind == "op_type":
        draw(st.sampled_from(graph.node)).op_type = draw(st.sampled_from(OP_TYPES))
    else:
        node = draw(st.sampled_from(graph.node))
        names = [n for other in graph.node for n in other.output] + ["x", "", "nowhere"]
        names += [t.name for t in graph.initializer]
        slot = draw(st.integers(0, len(node.input)))
        name = draw(st.sampled_from(names))
        if slot < len(node.input):
            node.input[slot] = name
        else:
            node.input.append(name)
    return kind


@st.composite
def mutants(draw):
    base = draw(st.sampled_from(sorted(BASES)))
    model = BASES[base]()
    kinds = [draw(mutation(model)) for _ in range(draw(st.integers(1, 3)))]
    return base, kinds, model


def _ort(model, x):
    """ONNX Runtime's answer, or None where it refuses the file."""
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception:  # noqa: BLE001 - any refusal by ORT just means there is nothing to compare
        return None


def import_or_refuse(model):
    """The compiled model, or None when the importer refused the file as it promises to."""
    try:
        return cnncompile.from_onnx(model)
    except PROMISED as error:
        assert str(error).strip(), "an error without a message"
        event(f"refused: {type(error).__name__}")
        return None


def test_the_unmutated_bases_compile_and_match_onnxruntime():
    for name, build in BASES.items():
        model = build()
        compiled = cnncompile.from_onnx(model)
        x = np.random.default_rng(0).standard_normal(compiled.input_shape, np.float32)
        assert_close(compiled(x[None])[0], _ort(model, x[None])[0], name)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutants())
def test_mutated_files_are_refused_or_compiled_correctly(case):
    base, kinds, model = case
    compiled = import_or_refuse(model)
    if compiled is None:
        return
    x = np.random.default_rng(1).standard_normal((1,) + compiled.input_shape).astype(np.float32)
    y = compiled(x)
    expected = _ort(model, x)
    if expected is not None and expected.shape == y.shape:
        assert_close(y, expected, f"{base} after {kinds}")
        event("compiled, agrees with ONNX Runtime")
    else:
        event("compiled, ONNX Runtime refuses it")


@settings(max_examples=EXAMPLES * 12 // 5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(BASES)), st.data())
def test_corrupted_bytes_are_refused_or_compiled(base, data):
    blob = bytearray(BASES[base]().SerializeToString())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    blob = bytes(blob[:data.draw(st.integers(len(blob) // 2, len(blob)))])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.onnx")
        with open(path, "wb") as f:
            f.write(blob)
        compiled = import_or_refuse(path)
    if compiled is not None:
        x = np.zeros((1,) + compiled.input_shape, np.float32)
        assert compiled(x).shape[0] == 1
        event("compiled")
