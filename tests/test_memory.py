"""Memory limits: a model too large for the machine (or for max_memory) is refused at compile
time with its largest buffers named; near the limit, a warning; a batch whose outputs would not
fit is refused before anything is allocated."""
import warnings

import numpy as np
import pytest

import cnncompile
import cnncompile.nn as nn
from cnncompile import memory
from cnncompile.errors import CompileError
from helpers import load_example, random_input


def test_a_mistaken_huge_input_is_refused_at_compile_time_naming_the_layer():
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU())
    with pytest.raises(CompileError) as err:
        cnncompile.compile(model, input_shape=(1, 3, 60000, 60000))
    text = str(err.value)
    assert "does not fit in memory" in text and "TiB" in text
    assert "Largest buffers per sample: layer 0 scratch" in text
    assert "Give a smaller input_shape, batch_group=1, or fewer threads" in text


def test_max_memory_below_a_benchmark_model_is_refused_and_near_it_warned():
    ns = load_example("resnet18")
    model, shape = ns["model"].eval(), ns["INPUT_SHAPE"]
    with pytest.raises(CompileError, match=r"max_memory is 40\.0 MiB.*Largest buffers per "
                                           r"sample: conv1 output 3\.1 MiB.*larger max_memory"):
        cnncompile.compile(model, shape, max_memory="40M", num_threads=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cnncompile.compile(model, shape, max_memory=60 << 20, num_threads=2)
    assert any(issubclass(w.category, memory.MemoryLimitWarning)
               and "needs 93% of the memory it may use" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cnncompile.compile(model, shape, max_memory="1G", num_threads=2)


def test_a_batch_too_large_is_refused_before_allocation():
    ns = load_example("conv_autoencoder")
    compiled = cnncompile.compile(ns["model"].eval(), ns["INPUT_SHAPE"], max_memory="10M")
    per_sample = 4 * int(np.prod(compiled.output_shape))
    ok = random_input((8,) + compiled.input_shape)
    assert compiled(ok).shape == (8,) + compiled.output_shape
    big = np.zeros((2 * (10 << 20) // per_sample,) + compiled.input_shape, np.float32)
    with pytest.raises(MemoryError, match=r"a batch of [0-9,]+ needs 20\.0 MiB.*max_memory is "
                                          r"10\.0 MiB: call it on smaller batches"):
        compiled(big)
    # converted inputs count too: float64 becomes a float32 copy
    half = np.zeros((len(big) // 3,) + compiled.input_shape)
    with pytest.raises(MemoryError, match="outputs and converted inputs"):
        compiled(half)
    compiled(half[:8])  # and small batches still run


def test_sizes_and_the_machine():
    assert memory.parse_size("2G", "max_memory") == 2 << 30
    assert memory.parse_size("512 M", "max_memory") == 512 << 20
    assert memory.parse_size(1000, "max_memory") == 1000
    with pytest.raises(ValueError, match="max_memory='lots' is not a size"):
        memory.parse_size("lots", "max_memory")
    assert memory.human(1536) == "1.5 KiB" and memory.human(12) == "12 bytes"
    assert memory.machine_memory() > 1 << 28


def test_container_memory_limit(tmp_path):
    (tmp_path / "memory.max").write_text("536870912\n")
    assert memory.cgroup_memory_limit(tmp_path) == 512 << 20
    (tmp_path / "memory.max").write_text("max\n")
    assert memory.cgroup_memory_limit(tmp_path) is None


def test_the_command_line_takes_max_memory(tmp_path):
    from test_cli import run_cli
    res = run_cli("compile", "examples/resnet18.py", "-o", str(tmp_path), "--max-memory", "40M",
                  "--no-check")
    assert res.returncode == 2 and "does not fit in memory" in res.stderr
    assert "Traceback" not in res.stderr
