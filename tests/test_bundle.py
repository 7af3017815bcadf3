"""The C bundle: the README's and the CLI's build instructions, followed literally, build a
program that gives the Python call's numbers; cross builds for aarch64 run under qemu and
clang builds with -Werror run, for every example model."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnncompile
from cnncompile import bundle
from helpers import EXAMPLES, ROOT, assert_close, load_example, random_input

# .ci/run installs the cross compiler, qemu and clang and sets this: there a missing tool fails
REQUIRE_TOOLS = os.environ.get("CNNCOMPILE_REQUIRE_TOOLCHAINS") == "1"


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing and REQUIRE_TOOLS:
        pytest.fail(f"{', '.join(missing)} not installed (CNNCOMPILE_REQUIRE_TOOLCHAINS=1)")
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def shims(tmp_path):
    """`cnncompile` and `python` on PATH as this checkout and this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in (("cnncompile", f'"{sys.executable}" -m cnncompile'),
                         ("python", f'"{sys.executable}"')):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        shim.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))


def sh(command, cwd, env=None, timeout=600):
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{command}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def readme_block(marker, lang, after=0):
    """The ``after``-th ```lang block following the README's <!-- marker --> line."""
    text = (ROOT / "README.md").read_text()
    rest = text[text.index(f"<!-- {marker}"):]
    blocks = re.findall(rf"```{lang}\n(.*?)```", rest, re.S)
    return blocks[after]


def printed_commands(stdout):
    """The build commands `cnncompile compile` printed, the folder they run in, and the rest."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Build: make -C "))
    folder = lines[start].split("make -C ", 1)[1].split()[0]
    commands = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        commands.append(line.strip())
    run = next(line for line in lines if line.startswith("Run:")).split(None, 1)[1]
    link = next(line for line in lines if line.startswith("Link your own C:")).split(": ", 1)[1]
    return folder, commands, run.split("  ")[0], link


def make_dry_run(folder, *args):
    out = subprocess.run(["make", "-n", *args], cwd=folder, capture_output=True, text=True,
                         check=True).stdout
    return [" ".join(line.split()) for line in out.splitlines() if line.strip()]


def test_readme_c_section_builds_and_matches_python(tmp_path):
    need("make")
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "seed_simplecnn.py", tmp_path / "examples")
    env = shims(tmp_path)
    out = sh(readme_block("c-bundle", "sh"), tmp_path, env)
    assert re.search(r"median [0-9.]+ ms per call of batch 8", out), out
    x, y = np.load(tmp_path / "x.npy"), np.load(tmp_path / "y.npy")
    assert y.shape == (8, 10) and y.dtype == np.float32
    folder = tmp_path / "build" / "simplecnn"
    for built in ("libmodel.a", "libmodel.so", "model_main"):
        assert (folder / built).is_file(), built
    compiled = cnncompile.load(folder)
    assert_close(y, compiled(x), "model_main vs the Python call")
    # the C program and its link line, as printed
    (tmp_path / "main.c").write_text(readme_block("c-program", "c"))
    sh(readme_block("c-program", "sh"), tmp_path, env)
    got = np.array(sh("./main", tmp_path).split(), np.float32).reshape(2, 10)
    pattern = (np.arange(2 * 3 * 32 * 32) % 7).astype(np.float32) / np.float32(7)
    assert_close(got, compiled(pattern.reshape(2, 3, 32, 32)), "README's main.c vs Python")


@pytest.mark.parametrize("weights", ["blob", "c"])
def test_cli_prints_the_commands_make_runs_and_they_work(tmp_path, weights):
    need("make")
    env = shims(tmp_path)
    res = subprocess.run(["cnncompile", "compile", str(ROOT / "examples" / "lenet5.py"),
                          "-o", "out", "--weights", weights], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    folder, commands, run, link = printed_commands(res.stdout)
    assert folder == "out"
    listing = res.stdout.split("Wrote out/")[1].split("Build:")[0]
    on_disk = {p.name for p in (tmp_path / "out").iterdir()}
    named = set(re.findall(r"[\w*]+\.\w+|Makefile", listing))
    assert on_disk <= named, on_disk - named  # every file written is named
    entries = {line.split()[0] for line in listing.splitlines() if line[2:3].strip()}
    assert all(list((tmp_path / "out").glob(entry)) for entry in entries), entries
    assert ("weights.S" in on_disk) == (weights == "blob")
    assert make_dry_run(tmp_path / "out") == commands
    for command in commands:  # literally, one by one
        sh(command, tmp_path / "out")
    x = random_input((3, 1, 28, 28))
    np.save(tmp_path / "input.npy", x)
    sh(run.replace("out/model_main", "./out/model_main").replace(" [--bench 100]", ""),
       tmp_path)
    want = cnncompile.load(tmp_path / "out")(x)
    np.testing.assert_array_equal(np.load(tmp_path / "output.npy"), want)
    (tmp_path / "main.c").write_text(
        "#include <stdlib.h>\n#include \"model.h\"\n"
        "int main(void) { static float x[LENET5_INPUT_SIZE], y[LENET5_OUTPUT_SIZE];\n"
        "  void *ws = malloc(lenet5_workspace_size());\n"
        "  return lenet5_forward(x, y, 1, ws); }\n")
    sh(link + " -o main && ./main", tmp_path)


def test_model_main_says_what_is_wrong_with_its_input(tmp_path):
    need("make")
    compiled = cnncompile.compile(load_example("seed_simplecnn")["model"], (1, 3, 32, 32))
    compiled.save(tmp_path)
    sh("make model_main", tmp_path)

    def run(*args):
        return subprocess.run(["./model_main", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
    np.save(tmp_path / "wrong_shape.npy", np.zeros((2, 3, 31, 32), np.float32))
    np.save(tmp_path / "doubles.npy", np.zeros((2, 3, 32, 32)))
    np.save(tmp_path / "fortran.npy", np.asfortranarray(np.zeros((2, 3, 32, 32), np.float32)))
    (tmp_path / "text.npy").write_text("not an array")
    cases = {("wrong_shape.npy", "y.npy"): "has shape (2, 3, 31, 32); the model's input "
                                           "'input' takes (N, 3, 32, 32)",
             ("doubles.npy", "y.npy"): "holds '<f8' values, not little-endian float32",
             ("fortran.npy", "y.npy"): "Fortran order",
             ("text.npy", "y.npy"): "is not a .npy file",
             ("missing.npy", "y.npy"): "cannot open missing.npy",
             ("x.npy",): "give 1 input and 1 output .npy path(s)",
             ("x.npy", "y.npy", "--bench", "0"): "take a positive count"}
    for args, message in cases.items():
        res = run(*args)
        assert res.returncode != 0 and message in res.stderr, (args, res.stderr)
    x = random_input((5, 3, 32, 32))
    np.save(tmp_path / "x.npy", x)
    res = run("x.npy", "y.npy", "--bench", "5", "--threads", "1")
    assert res.returncode == 0 and "over 5 calls" in res.stdout, res.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), compiled(x))


def test_bundle_of_several_inputs_and_outputs(tmp_path):
    need("make")
    from cnncompile import nn

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 8 * 8 + 5, 6)

        def forward(self, image, extra):
            feats = self.conv(image).relu()
            flat = feats.flatten(1)
            return {"logits": self.fc(cnncompile.nn.functional.cat([flat, extra], 1)),
                    "feats": feats}

    compiled = cnncompile.compile(Two().eval(), [(1, 3, 8, 8), (1, 5)])
    compiled.save(tmp_path)
    sh("make model_main", tmp_path)
    image, extra = random_input((3, 3, 8, 8)), random_input((3, 5), seed=1)
    np.save(tmp_path / "a.npy", image)
    np.save(tmp_path / "b.npy", extra)
    sh("./model_main a.npy b.npy logits.npy feats.npy", tmp_path)
    want = compiled(image, extra)
    np.testing.assert_array_equal(np.load(tmp_path / "logits.npy"), want["logits"])
    np.testing.assert_array_equal(np.load(tmp_path / "feats.npy"), want["feats"])
    assert "model_main INPUT1.npy INPUT2.npy OUTPUT1.npy OUTPUT2.npy" in \
        (tmp_path / "Makefile").read_text()


def test_one_thread_bundle_needs_no_pthreads(tmp_path):
    need("make", "nm")
    compiled = cnncompile.compile(load_example("lenet5")["model"], (1, 1, 28, 28))
    compiled.save(tmp_path, threads=False)
    assert not (tmp_path / "libmodel.so").exists()  # the Python build has the pool: not this
    assert "THREADS = \n" in (tmp_path / "Makefile").read_text()
    sh("make", tmp_path)
    symbols = sh("nm libmodel.a", tmp_path)
    assert "lenet5_forward" in symbols and "pthread_create" not in symbols
    x = random_input((2, 1, 28, 28))
    np.save(tmp_path / "x.npy", x)
    sh("./model_main x.npy y.npy", tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), compiled(x))


def test_targets_and_their_errors():
    assert bundle.target("native").arch == "-march=native"
    assert bundle.target("portable").arch == ""
    assert bundle.target("x86-64-v3").arch == "-march=x86-64-v3"
    arm = bundle.target("aarch64")
    assert arm.cc == "aarch64-linux-gnu-gcc" and not arm.runs_here
    commands = bundle.build_commands(arm, blob=True)
    assert commands[0].startswith("aarch64-linux-gnu-gcc ") and "-march=armv8-a" in commands[0]
    assert commands[1] == "aarch64-linux-gnu-gcc -c weights.S -o weights.o"
    with pytest.raises(ValueError, match="give native, portable, aarch64 or a -march value"):
        bundle.target("skylake; rm -rf /")


def _example_batch(name):
    shape = load_example(name)["INPUT_SHAPE"]
    batch = 1 if name in ("resnet18", "mobilenet_v2") else 2  # under emulation: the slow ones once
    return random_input((batch,) + tuple(shape[1:]))


@pytest.mark.parametrize("name", EXAMPLES)
def test_aarch64_bundle_runs_under_qemu_like_x86(tmp_path, name):
    need("aarch64-linux-gnu-gcc", "qemu-aarch64", "make")
    ns = load_example(name)
    compiled = cnncompile.compile(ns["model"].eval(), ns["INPUT_SHAPE"])
    compiled.save(tmp_path, target="aarch64")
    assert not (tmp_path / "libmodel.so").exists()  # the x86 library is not the target's
    sh("make -j2 model_main", tmp_path)
    assert "ARM aarch64" in sh("file model_main", tmp_path) if shutil.which("file") else True
    x = _example_batch(name)
    np.save(tmp_path / "x.npy", x)
    sh("qemu-aarch64 -L /usr/aarch64-linux-gnu ./model_main x.npy y.npy", tmp_path)
    want = compiled(x)
    got = np.load(tmp_path / "y.npy")
    assert_close(got, want, f"{name} on aarch64 vs x86", atol=1e-4 * float(np.abs(want).max()))


@pytest.mark.parametrize("name", EXAMPLES)
def test_clang_builds_without_warnings_and_runs(tmp_path, name):
    need("clang", "make")
    ns = load_example(name)
    compiled = cnncompile.compile(ns["model"].eval(), ns["INPUT_SHAPE"])
    compiled.save(tmp_path)
    sh('make -j2 CC=clang EXTRA_CFLAGS="-Wall -Wextra -Werror" model_main', tmp_path)
    x = _example_batch(name)
    np.save(tmp_path / "x.npy", x)
    sh("./model_main x.npy y.npy", tmp_path)
    want = compiled(x)
    assert_close(np.load(tmp_path / "y.npy"), want, f"{name} built by clang vs gcc",
                 atol=1e-4 * float(np.abs(want).max()))


def test_saved_folder_keeps_no_stale_library(tmp_path):
    compiled = cnncompile.compile(load_example("lenet5")["model"], (1, 1, 28, 28))
    compiled.save(tmp_path)
    assert (tmp_path / "libmodel.so").exists()
    compiled.save(tmp_path, target="aarch64")
    assert not (tmp_path / "libmodel.so").exists()
    assert "aarch64-linux-gnu-gcc" in (tmp_path / "Makefile").read_text()
    assert Path(tmp_path / "model_main.c").read_text().count("lenet5_forward(") == 2


@pytest.mark.parametrize("act", ["hardswish", "silu"])
def test_clang_builds_a_squeeze_excitation_block_without_warnings(tmp_path, act):
    """A 1x1 layer whose bias and activation the GEMM applies leaves no unused row pass
    behind (clang warns of unused static functions where gcc does not)."""
    need("clang", "make")
    from test_layout_elementwise import twins
    model, twin = twins(act=act)
    compiled = cnncompile.compile(model, (1, 3, 20, 20))
    compiled.save(tmp_path)
    sh('make CC=clang EXTRA_CFLAGS="-Wall -Wextra -Werror" model_main', tmp_path)
    x = random_input((2, 3, 20, 20))
    np.save(tmp_path / "x.npy", x)
    sh("./model_main x.npy y.npy", tmp_path)
    want = compiled(x)
    assert_close(np.load(tmp_path / "y.npy"), want, f"{act} block built by clang vs gcc",
                 atol=1e-4 * float(np.abs(want).max()))
