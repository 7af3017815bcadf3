"""Shared by the tests: the torch twin of an example, and numeric comparisons."""

import numpy as np

import cnncompile
from cnncompile import reference
from cnncompile import kernels
from cnncompile.layout import floats as blocked_floats

from models import MODELS, ROOT, load_example, randomise_batch_norm, torch_twin  # noqa: F401

EXAMPLES = list(MODELS)
RTOL, ATOL = 1e-4, 1e-5
# Winograd F(4x4, 3x3) rounds relative to the magnitude of the products it sums, not of each
# output: its outputs are held to the project's accuracy target, 1e-4 x max|y|, instead.
WINOGRAD_ATOL_OF_MAX = 1e-4


def tolerance(compiled, expected):
    """(rtol, atol) for the outputs of ``compiled``: wider where a Winograd layer ran."""
    if any("winograd" in n.meta.get("kernel", "") for n in compiled.graph.nodes()):
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


def assert_memory_plan_safe(g, reused=True):
    """No value is written over one still to be read, no scratch over a layer's operands, and
    (reused) buffers are reused."""
    order = g.nodes()
    index = {n.name: i for i, n in enumerate(order)}
    # a layer pipelined into a later one (passes/pipeline_pointwise.py) reads its inputs while
    # that one runs, and its own output is never stored
    reads_at = {n.name: index[n.meta.get("pipelined_into", n.name)] for n in order}
    last_use = {n.name: max([reads_at[u] for u in g.users(n.name)] + [index[n.name]])
                for n in order}
    order = [n for n in order if n.meta["buffer"] is not None]

    def extent(node):
        kind, off = node.meta["buffer"]
        if node.meta.get("layout") == "blocks":  # whole blocks of 16 channels
            return kind, off, off + blocked_floats(node.shape)
        return kind, off, off + int(np.prod(node.shape[1:]))

    for node in order:
        kind, lo, hi = extent(node)
        if kind == "arena":
            assert hi <= g.meta["workspace_floats"]
        for other in order:
            # a value written while `other` is still to be read must not overlap it
            if index[other.name] < index[node.name] <= last_use[other.name] and other.op != "input":
                if other.name in g.input_names(node.name) and node.meta.get("inplace"):
                    continue
                if node.op == "reshape":
                    continue
                k2, lo2, hi2 = extent(other)
                assert not (kind == k2 and lo < hi2 and lo2 < hi), (node.name, other.name)
    for node in order:  # a layer's scratch overlaps neither its inputs nor its output
        if "scratch" in node.meta:
            lo = node.meta["scratch"][1]
            hi = lo + kernels.implementation(node).scratch(node, g.input_values(node.name), node.shape)
            assert hi <= g.meta["workspace_floats"]
            operands = g.input_names(node.name)
            if "pipelined_from" in node.meta:
                operands = operands + g.input_names(node.meta["pipelined_from"])
            for other in [g.node(i) for i in operands if g.node(i).meta["buffer"]] + [node]:
                kind, lo2, hi2 = extent(other)
                assert not (kind == "arena" and lo < hi2 and lo2 < hi), (node.name, other.name)
    total = sum(extent(n)[2] - extent(n)[1] for n in order if n.op not in ("input", "reshape"))
    scratch = max([kernels.implementation(n).scratch(n, g.input_values(n.name), n.shape)
                   for n in order if "scratch" in n.meta] or [0])
    if reused:
        assert g.meta["workspace_floats"] < total + scratch  # buffers are reused


def export_onnx(torch_model, shape, opset=None):
    """``torch_model`` exported to ONNX by torch's TorchScript exporter, with a symbolic batch;
    ``shape`` is an input shape, or a list of them for several inputs (x0, x1, ...)."""
    import io
    import warnings

    import onnx
    import torch
    shapes = list(shape) if isinstance(shape[0], (tuple, list)) else [shape]
    names = ["x"] if len(shapes) == 1 else [f"x{i}" for i in range(len(shapes))]
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = {} if opset is None else {"opset_version": opset}
        torch.onnx.export(torch_model, tuple(torch.zeros(s) for s in shapes), f, dynamo=False,
                          input_names=names, dynamic_axes={n: {0: "N"} for n in names},
                          **({"output_names": ["y"]} if len(shapes) == 1 else {}), **kwargs)
    return onnx.load_from_string(f.getvalue())
