"""The generated C under AddressSanitizer and UndefinedBehaviorSanitizer: each example model,
saved as C, is linked with a small main() into a standalone program (no Python in the
process, so nothing needs preloading), run on a batch with two threads, and its output
compared with the numpy reference. Any sanitizer report fails the test."""
import os
import subprocess

import numpy as np
import pytest

import cnncompile
from cnncompile import reference
from cnncompile.build import THREAD_FLAGS
from helpers import assert_close, load_example, random_input, tolerance

MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    const int batch = atoi(argv[1]);
    const size_t n_in = (size_t)batch * {MACRO}_INPUT_SIZE, n_out = (size_t)batch * {MACRO}_OUTPUT_SIZE;
    float *x = malloc(sizeof(float) * n_in), *y = malloc(sizeof(float) * n_out);
    void *ws = malloc({prefix}_workspace_size() + 1);
    FILE *f = fopen(argv[2], "rb");
    if (!x || !y || !ws || !f || fread(x, sizeof(float), n_in, f) != n_in)
        return 3;
    fclose(f);
    {prefix}_set_num_threads(2);
    const int rc = {prefix}_forward(x, y, batch, ws);
    f = fopen(argv[3], "wb");
    if (!f || fwrite(y, sizeof(float), n_out, f) != n_out)
        return 4;
    fclose(f);
    free(x);
    free(y);
    free(ws);
    return rc;
}
"""

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer", "-g", "-O1"]


def run_sanitized(compiled, folder, x):
    """Build ``compiled``'s C with ASan and UBSan into a program, run it on ``x`` with two
    threads, and return its output; any sanitizer report fails the calling test."""
    out = compiled.save(folder)
    macro = compiled.prefix.upper()
    (out / "main.c").write_text(MAIN.replace("{MACRO}", macro).replace("{prefix}", compiled.prefix))
    sources = ["model.c", "main.c"] + (["weights.S"] if (out / "weights.S").exists() else [])
    res = subprocess.run(["gcc", "-std=c11", *THREAD_FLAGS, *SANITIZE, *sources, "-o", "model",
                          "-lm"],
                         cwd=out, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    batch = x.shape[0]
    x.tofile(out / "x.bin")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1")
    res = subprocess.run(["./model", str(batch), "x.bin", "y.bin"], cwd=out, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "runtime error" not in res.stderr, res.stderr[-4000:]
    return np.fromfile(out / "y.bin", np.float32).reshape((batch,) + compiled.output_shape)


@pytest.mark.parametrize("name", ["seed_simplecnn", "seed_sequential", "seed_separable", "lenet5",
                                  "conv_autoencoder", "vgg11_cifar", "mobilenet_v2", "resnet18"])
def test_example_runs_clean_under_asan_and_ubsan(tmp_path, name):
    ns = load_example(name)
    shape = ns["INPUT_SHAPE"]
    compiled = cnncompile.compile(ns["model"].eval(), shape, num_threads=2)
    # several samples: the batch runs on two threads, each in its own workspace slot
    x = random_input((3,) + tuple(shape[1:]))
    y = run_sanitized(compiled, tmp_path / "c", x)
    expected = reference.run(compiled.graph, x)
    assert_close(y, expected, f"{name} under sanitizers", *tolerance(compiled, expected))
