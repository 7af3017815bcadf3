"""Shared by the tests: the torch twin of an example, and numeric comparisons."""

import numpy as np

import cnncompile
from cnncompile import reference

from models import MODELS, ROOT, load_example, randomise_batch_norm, torch_twin  # noqa: F401

EXAMPLES = list(MODELS)
RTOL, ATOL = 1e-4, 1e-5
# Winograd F(4x4, 3x3) rounds relative to the magnitude of the products it sums, not of each
# output: its outputs are held to the project's accuracy target, 1e-4 x max|y|, instead.
WINOGRAD_ATOL_OF_MAX = 1e-4


def tolerance(compiled, expected):
    """(rtol, atol) for the outputs of ``compiled``: wider where a Winograd layer ran."""
    if any(n.meta.get("kernel", "").startswith("winograd") for n in compiled.graph.nodes()):
        return RTOL, max(ATOL, WINOGRAD_ATOL_OF_MAX * float(np.abs(expected).max()))
    return RTOL, ATOL


def run_torch(torch_model, x):
    import torch
    with torch.inference_mode():
        return torch_model(torch.from_numpy(x)).numpy()


def random_input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_close(actual, expected, what="", rtol=RTOL, atol=ATOL):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.abs(actual.astype(np.float64) - expected)
    bound = atol + rtol * np.abs(expected.astype(np.float64))
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (f"{what}: max abs error {err.max():.3g}; worst at {worst}: "
                                  f"{actual[worst]} vs {expected[worst]}")


def check_against_reference(model, input_shape, batches=(1, 7), torch_model=None, **kwargs):
    """Compile ``model``; compare with the numpy reference (and torch) for each batch size."""
    compiled = cnncompile.compile(model, input_shape, werror=True, **kwargs)
    for batch in batches:
        x = random_input((batch,) + tuple(input_shape[1:]), seed=batch)
        y = compiled(x)
        expected = reference.run(compiled.graph, x)
        rtol, atol = tolerance(compiled, expected)
        assert_close(y, expected, f"batch {batch} vs reference", rtol, atol)
        if torch_model is not None:
            assert_close(y, run_torch(torch_model, x), f"batch {batch} vs torch", rtol, atol)
    return compiled
