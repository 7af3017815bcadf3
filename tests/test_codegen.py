"""The generated C: warning-free, exact weights, safe names, reentrant, readable."""
import ctypes
import re
import shutil
import subprocess
from collections import OrderedDict

import numpy as np
import pytest

import cnncompile
import cnncompile.nn as nn
from cnncompile import codegen
from cnncompile.api import build_graph
from cnncompile.build import THREAD_FLAGS
from cnncompile.literals import c_floats
from cnncompile.codegen.names import Namer
from cnncompile.resources import runtime_dir
from helpers import EXAMPLES, assert_close, load_example, random_input, reference


def write_model(tmp_path, source):
    (tmp_path / "model.c").write_text(source.c_source)
    (tmp_path / "model.h").write_text(source.header)
    for header in runtime_dir().glob("*.h"):
        shutil.copy(header, tmp_path)


# threads: the build's own flags (C11 atomics and thread-local storage); plain: C99 alone
BUILDS = {"threads": ["-std=c11", *THREAD_FLAGS], "plain-c99": ["-std=c99"]}


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("build", BUILDS)
def test_generated_c_is_warning_free(tmp_path, name, build):
    ns = load_example(name)
    write_model(tmp_path, codegen.generate(build_graph(ns["model"].eval(), ns["INPUT_SHAPE"])))
    res = subprocess.run(["gcc", *BUILDS[build], "-pedantic", "-Wall", "-Wextra", "-Werror",
                          "-Wshadow", "-Wstrict-prototypes", "-O2", "-c", "model.c"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("flags", [["-std=c11", *THREAD_FLAGS],
                                   ["-std=c99", "-DCNN_NO_VECTOR_EXTENSIONS"]],
                         ids=["vectors-threads", "plain-c99"])
def test_each_runtime_header_stands_alone(tmp_path, flags):
    """A runtime header includes the headers it uses: alone, it compiles warning-free."""
    for header in sorted(runtime_dir().glob("*.h")):
        (tmp_path / "t.c").write_text(f'#include "{header.name}"\n')
        res = subprocess.run(["gcc", "-pedantic", "-Wall", "-Wextra", "-Werror",
                              "-march=native", *flags, f"-I{runtime_dir()}",
                              "-fsyntax-only", "t.c"], cwd=tmp_path, capture_output=True, text=True)
        assert res.returncode == 0, f"{header.name}: {res.stderr}"


def test_model_c_includes_every_runtime_header():
    ns = load_example("lenet5")
    src = codegen.generate(build_graph(ns["model"].eval(), ns["INPUT_SHAPE"])).c_source
    included = re.findall(r'^#include "(cnn_\w+\.h)"$', src, re.M)
    assert sorted(included) == sorted(h.name for h in runtime_dir().glob("*.h"))


def test_float_literals_round_trip_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.1, 1e-45, -1e-45, 1.17549435e-38, 1.1754942e-38,
                        3.4028235e38, -3.4028235e38, np.pi, 1 / 3, 16777217.0, np.inf, -np.inf],
                       np.float32)
    values = np.concatenate([special, rng.standard_normal(500).astype(np.float32),
                             (rng.standard_normal(200) * 1e-40).astype(np.float32),
                             rng.integers(0, 2**32, 300, dtype=np.uint64).astype(np.uint32)
                             .view(np.float32)])
    values = values[~np.isnan(values)]
    src = (f'#include <math.h>\nconst float table[{values.size}] = {{\n{c_floats(values)}\n}};\n')
    (tmp_path / "t.c").write_text(src)
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    "t.c", "-o", "t.so"], cwd=tmp_path, check=True)
    lib = ctypes.CDLL(str(tmp_path / "t.so"))
    back = np.ctypeslib.as_array((ctypes.c_float * values.size).in_dll(lib, "table"))
    np.testing.assert_array_equal(back.view(np.uint32), values.view(np.uint32))
    assert "NAN" in c_floats(np.array([np.nan], np.float32))


HOSTILE = ['x"); system("rm -rf ~"); //', '*/ system("id"); /*', "new\nline", "tab\there",
           "back\\slash", "??/", "quote'\"", "\u202eevil\u202c", "", "x" * 300, "int", "return",
           "a-b", "a_b", "layer_a_b", "ws", "x", "y", "n", "ünïcödé", "1starts_with_digit"]


def test_hostile_layer_names_never_reach_the_c_source():
    layers = OrderedDict()
    for i, name in enumerate(HOSTILE):
        layers[name.replace(".", "_") or "_"] = nn.Conv2d(2, 2, 1) if i % 3 else nn.ReLU()
    model = nn.Sequential(layers).eval()
    compiled = cnncompile.compile(model, (1, 2, 3, 3), werror=True)
    x = random_input((2, 2, 3, 3))
    assert_close(compiled(x), reference.run(compiled.graph, x))
    for name in HOSTILE:
        if len(name) > 3 and re.search(r"[^A-Za-z0-9_]", name):
            assert name not in compiled.c_source and name not in compiled.header, name
    assert "system(" not in compiled.c_source and "\u202e" not in compiled.c_source
    assert compiled.c_source.isascii() and compiled.header.isascii()


def test_mangled_names_are_unique_identifiers():
    namer = Namer()
    names = [namer.mangle(n, "layer_") for n in HOSTILE + HOSTILE]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,80}", n) for n in names)
    assert namer.mangle("a-b", "w_") != namer.mangle("a_b", "w_")


def test_generated_c_is_reentrant_and_readable():
    ns = load_example("lenet5")
    src = codegen.generate(build_graph(ns["model"].eval(), ns["INPUT_SHAPE"])).c_source
    code = src[:src.index("/* w_")]
    assert "malloc" not in src and not re.search(r"^static (?!const|void|inline)", src, re.M)
    assert not re.search(r"^(?:float|int|double)\s+\w+\s*[\[=;]", src, re.M)  # no globals
    for layer in ("features_0", "features_3", "classifier_1", "classifier_3", "classifier_5"):
        assert f"static void layer_{layer}(" in code
    assert "features_0: conv2d kernel_size=(5, 5)" in code and "(1, 28, 28) -> (6, 28, 28)" in code
    assert "fused: features_1 (relu)" in code
    assert "generated by cnncompile" in src.splitlines()[0]


def test_workspace_buffers_are_named_after_their_layers():
    """run_sample() and the profile pass each layer named buffers (features_0_out), declared
    once as pointers into the workspace, never ws + offset; a Sequential's '0' is layer_0."""
    ns = load_example("lenet5")
    src = codegen.generate(build_graph(ns["model"].eval(), ns["INPUT_SHAPE"]), profile=True).c_source
    for fn in ("static void run_sample(", "int lenet5_profile("):
        body = src[src.index(fn):]
        body = body[:body.index("\n}\n")]
        assert re.search(r"float \*const features_0_out = ws \+ \d+;", body)
        assert "layer_features_2(features_0_out, features_2_out);" in body
        assert not re.search(r"layer_\w+\([^)]*\bws\b", body)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 1)).eval()
    src = codegen.generate(build_graph(model, (1, 2, 5, 5))).c_source
    assert "layer_2(layer_0_out, y" in src


def test_blob_cache_entry_follows_the_weights(tmp_path):
    """In blob mode the cache key digests the unpacked weights (packing runs on a miss only):
    an unchanged model hits the same entry, a changed weight builds a new one."""
    model = load_example("lenet5")["model"].eval()
    shape, x = (1, 1, 28, 28), random_input((2, 1, 28, 28))
    first = cnncompile.compile(model, shape, weights="blob", cache_dir=tmp_path)
    again = cnncompile.compile(model, shape, weights="blob", cache_dir=tmp_path)
    assert again.path == first.path
    dict(model.named_parameters())["features.0.weight"][0, 0, 0, 0] += 1.0  # in place
    changed = cnncompile.compile(model, shape, weights="blob", cache_dir=tmp_path)
    assert changed.path != first.path
    assert not np.array_equal(changed(x), first(x))
    assert_close(changed(x), reference.run(changed.graph, x))


def test_weights_blob_mode_matches_c_mode_bit_for_bit(tmp_path):
    """Large models keep their weights in weights.bin (linked by weights.S), not in model.c."""
    model = load_example("lenet5")["model"].eval()
    in_c = cnncompile.compile(model, (1, 1, 28, 28), weights="c", werror=True)
    blob = cnncompile.compile(model, (1, 1, 28, 28), weights="blob", werror=True)
    x = random_input((5, 1, 28, 28))
    np.testing.assert_array_equal(in_c(x), blob(x))
    assert "static const float w_" in in_c.c_source and "weights.bin" not in in_c.c_source
    assert "extern const float lenet5_weights[];" in blob.c_source
    out = blob.save(tmp_path / "saved")
    data = np.fromfile(out / "weights.bin", "<f4")
    w = model.state_dict()["classifier.1.weight"]
    offset = int(re.search(r"w_classifier_1_weight \(lenet5_weights \+ (\d+)\)", blob.c_source)[1])
    np.testing.assert_array_equal(data[offset:offset + w.size], w.ravel())
    res = subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-c",
                          "model.c", "weights.S"], cwd=out, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert codegen.generate(build_graph(model, (1, 1, 28, 28))).weights_bin is None  # small: C
    with pytest.raises(ValueError, match="weights='x'"):
        codegen.generate(build_graph(model, (1, 1, 28, 28)), weights="x")


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_large_models_read_layer_by_layer(name):
    """One function per layer, named after it, with its shapes and FLOPs in a comment above."""
    from cnncompile import kernels
    ns = load_example(name)
    graph = build_graph(ns["model"].eval(), ns["INPUT_SHAPE"])
    src = codegen.generate(graph).c_source
    # a 1x1 layer pipelined into the depthwise layer after it has no function of its own
    layers = [n for n in graph.nodes() if kernels.implementation(n).template_for(n)
              and "pipelined_into" not in n.meta]
    functions = re.findall(r"\*/\nstatic void (layer_\w+)\(", src)
    assert len(functions) == len(layers)
    for node, fn in zip(layers, functions):
        assert fn == "layer_" + node.name.replace(".", "_")
        doc = src[src.rindex("/*", 0, src.index(f"static void {fn}(")):src.index(f"static void {fn}(")]
        assert f" -> {tuple(node.shape[1:])}".replace(",)", ")") in doc and "FLOPs" in doc
    body = src[src.index("static void run_sample("):src.index("_forward(const float")]
    calls = re.findall(r"^    (layer_\w+)\(", body, re.M)
    assert calls == functions  # run_sample() calls them in order
    assert "weights.bin" in src  # large: weights are linked from the blob
