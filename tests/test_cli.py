"""The cnncompile command: compile, inspect, model discovery and its errors."""
import ctypes
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers import ROOT, load_example, random_input


def run_cli(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "cnncompile", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_compile_writes_c_header_and_library(tmp_path):
    out = tmp_path / "simplecnn"
    res = run_cli("compile", "examples/seed_simplecnn.py", "--input-shape", "1,3,32,32",
                  "-o", str(out))
    assert res.returncode == 0, res.stderr
    for piece in ("Compiling examples/seed_simplecnn.py:model", "conv1", "Total params: 82,826",
                  f"Wrote {out}/", "libmodel.so", "simplecnn_forward()"):
        assert piece in res.stdout, piece
    err = float(res.stdout.split("max |compiled - numpy reference| = ")[1].split()[0].rstrip(";"))
    assert err < 1e-5
    meta = json.loads((out / "model.json").read_text())
    assert meta["input_shape"] == [3, 32, 32] and meta["output_shape"] == [10]
    # a plain C ABI: loadable without cffi, same numbers as the reference
    from cnncompile import reference
    from cnncompile.api import build_graph
    from cnncompile.compiled import default_threads
    lib = ctypes.CDLL(str(out / "libmodel.so"))
    lib.simplecnn_workspace_size.restype = ctypes.c_size_t
    ws = ctypes.create_string_buffer(lib.simplecnn_workspace_size())
    x = random_input((2, 3, 32, 32))
    y = np.empty((2, 10), np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    assert lib.simplecnn_forward(x.ctypes.data_as(fp), y.ctypes.data_as(fp), 2, ws) == 0
    model = load_example("seed_simplecnn")["model"]  # same file, same seed: same weights
    np.testing.assert_allclose(y, reference.run(build_graph(model, (1, 3, 32, 32)), x),
                               rtol=1e-4, atol=1e-5)
    # and the exported source builds on its own
    res = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-c",
                          "model.c"], cwd=out, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    # --batch-group 1: samples one at a time, a workspace of one sample per slot
    res = run_cli("compile", "examples/seed_simplecnn.py", "-o", str(tmp_path / "alone"),
                  "--batch-group", "1", "--no-check")
    assert res.returncode == 0, res.stderr
    alone = ctypes.CDLL(str(tmp_path / "alone" / "libmodel.so"))
    alone.simplecnn_workspace_size.restype = ctypes.c_size_t
    # groups of 16: a workspace per sample, and fc1's 8192 inputs of 16 samples transposed,
    # in each slot (one per thread)
    lanes = default_threads() * 4 * 8192 * 16
    assert alone.simplecnn_workspace_size() * 16 + lanes == lib.simplecnn_workspace_size()


MODEL_FILE = """
import cnncompile.nn as nn

class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return self.conv(x)
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("extra,spec", [
    ("", "m.py"),                                                # the one Module class
    ("model = Small()\nINPUT_SHAPE = (1, 1, 6, 6)\n", "m.py"),   # `model`, shape in the file
    ("def build_model():\n    return Small()\nclass Other(Small): pass\n", "m.py:build_model"),
    ("class Other(Small): pass\n", "m.py:Other"),                # choose among several
])
def test_model_discovery(tmp_path, extra, spec):
    write(tmp_path, "m.py", MODEL_FILE + extra)
    args = ["compile", str(tmp_path / spec), "-o", str(tmp_path / "out"), "--no-check"]
    if "INPUT_SHAPE" not in extra:
        args += ["--input-shape", "1,1,6,6"]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "model.c").exists()


def test_discovery_errors_are_clear(tmp_path):
    write(tmp_path, "two.py", MODEL_FILE + "class Other(Small): pass\n")
    res = run_cli("compile", str(tmp_path / "two.py"), "--input-shape", "1,1,6,6")
    assert res.returncode == 2
    assert "cannot tell which model to compile (candidates: Small, Other)" in res.stderr
    assert "two.py:NAME" in res.stderr
    res = run_cli("compile", str(tmp_path / "two.py:Missing"), "--input-shape", "1,1,6,6")
    assert res.returncode == 2 and "defines no 'Missing'; it has: Small, Other" in res.stderr
    res = run_cli("compile", str(tmp_path / "two.py:Small"))
    assert res.returncode == 2 and "pass --input-shape N,C,H,W" in res.stderr
    res = run_cli("compile", str(tmp_path / "nope.py"), "--input-shape", "1,1,6,6")
    assert res.returncode == 2 and "no such file" in res.stderr
    res = run_cli("compile", str(tmp_path / "two.py:Small"), "--input-shape", "1,1,a")
    assert res.returncode == 2 and "give integers separated by commas" in res.stderr


def test_compile_error_is_reported_without_a_traceback(tmp_path):
    write(tmp_path, "bad.py", MODEL_FILE.replace("nn.Conv2d(1, 2, 3)", "nn.Conv2d(3, 2, 3)"))
    res = run_cli("compile", str(tmp_path / "bad.py"), "--input-shape", "1,1,6,6")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "conv: Conv2d expects 3 input channels but receives 1" in res.stderr
    assert "bad.py:" in res.stderr  # points at the line


def test_inspect_after_a_pass():
    res = run_cli("inspect", "examples/lenet5.py", "--after", "fuse_activation")
    assert res.returncode == 0, res.stderr
    traced, fused = res.stdout.split("# after fuse_activation")
    assert "features.1 = relu(features.0)" in traced
    assert "features.1 = relu" not in fused and "Total params: 61,706" in fused
    res = run_cli("inspect", "examples/lenet5.py", "--dot")
    assert res.returncode == 0 and res.stdout.startswith("digraph model {")


def test_help_and_version():
    res = run_cli("--help")
    assert res.returncode == 0 and "compile" in res.stdout and "inspect" in res.stdout
    res = run_cli("compile", "--help")
    for option in ("--input-shape", "--portable", "--target", "--no-threads", "--weights"):
        assert option in res.stdout, option
    res = run_cli("inspect", "--help")
    assert res.returncode == 0 and "Trace a model and print its layer graph" in res.stdout
    assert run_cli("--version").stdout.startswith("cnncompile ")


def test_inspect_into_a_closed_pipe_ends_quietly():
    """`cnncompile inspect ... | head`: no traceback when head stops reading."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run(f"'{sys.executable}' -m cnncompile inspect examples/mobilenet_v2.py "
                         "--all | head -1", shell=True, cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.stdout.startswith("# traced from examples/mobilenet_v2.py")
    assert res.stderr == "", res.stderr


def test_a_bad_target_is_a_clear_error(tmp_path):
    res = run_cli("compile", "examples/lenet5.py", "-o", str(tmp_path), "--target", "a b")
    assert res.returncode == 2 and "give native, portable, aarch64 or a -march value" in res.stderr
    assert "Traceback" not in res.stderr
