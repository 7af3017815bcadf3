"""Deep and large models compile within stated bounds of time, C size and memory.

Every run compiles a deep model (800 layers) and a large one (25 M parameters) cold, each in
a process of its own, and checks its time, model.c's size and the process's peak RSS against
bounds that scale with the model; CNNCOMPILE_BIG_MODELS=1 compiles 3,000 layers and 100 M
parameters instead (benchmarks/RESULTS.md has the figures of both).
"""
import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT

BIG = os.environ.get("CNNCOMPILE_BIG_MODELS") == "1"

SCRIPT = r"""
import json, resource, sys, time
import numpy as np
import cnncompile, cnncompile.nn as nn
from cnncompile import reference
kind, size = sys.argv[1], int(sys.argv[2])
if kind == "deep":  # size layers: conv + ReLU pairs on 8 channels
    layers = [m for _ in range(size // 2) for m in (nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())]
    model, shape = nn.Sequential(*layers), (1, 8, 8, 8)
else:  # ten size x size linear layers
    model, shape = nn.Sequential(*[nn.Linear(size, size) for _ in range(10)]), (1, size)
t0 = time.perf_counter()
compiled = cnncompile.compile(model.eval(), shape)
seconds = time.perf_counter() - t0
x = np.random.default_rng(0).standard_normal((2,) + shape[1:]).astype(np.float32)
want = reference.run(compiled.graph, x)
err = float(np.abs(compiled(x) - want).max() / max(np.abs(want).max(), 1e-30))
print(json.dumps(dict(seconds=seconds, c_bytes=len(compiled.c_source),
                      params=sum(int(p.size) for p in model.parameters()),
                      blob=compiled.weights_asm is not None, err=err,
                      rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      # the compiler's and assembler's peak (at most; a child counts from fork)
                      build_rss_mib=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)))
"""


def compile_cold(tmp_path, kind, size):
    env = dict(os.environ, PYTHONPATH=str(ROOT), CNNCOMPILE_CACHE_DIR=str(tmp_path / "cache"))
    res = subprocess.run([sys.executable, "-c", SCRIPT, kind, str(size)], env=env,
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"{kind} {size}: {stats}")  # shown with -s, and in a failure's output
    return stats


def test_a_deep_model_compiles_in_bounded_time_and_memory(tmp_path):
    layers = 3000 if BIG else 800
    stats = compile_cold(tmp_path, "deep", layers)
    assert stats["err"] < 1e-4
    assert stats["blob"]  # 0.9 M weights (at 3,000 layers): in weights.bin, not in model.c
    assert stats["c_bytes"] < 3000 * layers   # about 2.7 KB of C per layer
    assert stats["seconds"] < 30 + 0.06 * layers
    assert stats["rss_mib"] < 400 and stats["build_rss_mib"] < 1024


def test_a_large_model_compiles_in_bounded_time_and_memory(tmp_path):
    width = 3162 if BIG else 1581   # 100 M or 25 M parameters
    stats = compile_cold(tmp_path, "large", width)
    weights_mib = 4 * stats["params"] / 2**20
    assert stats["err"] < 1e-4 and stats["blob"]
    assert stats["c_bytes"] < 100_000
    # the model's own weights, weights.bin as it is packed, and one layer's packed copy
    assert stats["rss_mib"] < 2.3 * weights_mib + 300
    assert stats["build_rss_mib"] < 2.3 * weights_mib + 300
    assert stats["seconds"] < 10 + weights_mib / 20


def test_weights_in_c_above_the_limit_go_to_the_blob():
    import cnncompile.nn as nn
    from cnncompile import codegen
    from cnncompile.api import build_graph
    model = nn.Sequential(nn.Linear(2100, 2000))  # 4.2 M weights
    graph = build_graph(model, (1, 2100))
    with pytest.warns(UserWarning, match="weights='c': 4,202,000 weights would make model.c "
                                         "about 64 MiB; they go to weights.bin instead"):
        source = codegen.generate(graph, weights="c")
    assert source.weights_asm is not None and "static const float w_" not in source.c_source
