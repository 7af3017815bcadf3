"""Every example model: compiled output matches the numpy reference and PyTorch (same weights)."""
import re

import numpy as np
import pytest
import torch

import cnncompile
from cnncompile import reference
from helpers import (EXAMPLES, ROOT, assert_close, check_against_reference, load_example,
                     random_input, run_torch, torch_twin)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_matches_reference_and_torch(name):
    ns = load_example(name)
    model = ns["model"].eval()
    twin = torch_twin(model, load_example(name, "torch")["model"])
    check_against_reference(model, ns["INPUT_SHAPE"], batches=(1, 7), torch_model=twin)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_structure_matches_torch(name):
    """Same parameter names, shapes and count, and the same repr, as the torch.nn original."""
    model = load_example(name)["model"]
    twin = load_example(name, "torch")["model"]
    assert [(k, tuple(v.shape)) for k, v in model.named_parameters()] == \
           [(k, tuple(v.shape)) for k, v in twin.named_parameters()]
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in twin.parameters())
    assert repr(model) == repr(twin)


def test_reference_matches_torch_on_examples():
    for name in EXAMPLES:
        ns = load_example(name)
        model = ns["model"].eval()
        twin = torch_twin(model, load_example(name, "torch")["model"])
        graph = cnncompile.api.build_graph(model, ns["INPUT_SHAPE"])
        x = random_input((3,) + ns["INPUT_SHAPE"][1:])
        assert_close(reference.run(graph, x), run_torch(twin, x), name)


def test_seed_quiz_answer():
    """The seed's quiz: 130x130x3 through the four layers gives 20 x 16 x 16 values."""
    ns = load_example("seed_quiz")
    graph = cnncompile.api.build_graph(ns["model"], ns["INPUT_SHAPE"])
    assert graph.node(graph.outputs[0]).shape == (1, 20, 16, 16)


def test_example_scripts_run(tmp_path):
    import os
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "examples/seed_simplecnn.py"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    err = float(re.search(r"max \|compiled - numpy reference\| = (\S+)", res.stdout).group(1))
    assert err < 1e-5
    assert "static void layer_conv1(" in res.stdout and "Total params: 82,826" in res.stdout
