"""The six benchmark families of benchmarks/families/ (EfficientNet-B0, MobileNetV3-Large,
ShuffleNetV2, ConvNeXt-Tiny, RegNetX-400MF, DeepLabV3), each compiled from its torch module by
cnncompile.compile and compared with torch at a reduced input size.

They are kept out of models.MODELS (which every example suite runs); this file is where they
are checked, with CNNCOMPILE_FAMILIES=1 (about a minute and a half on two cores: a slow suite,
like the big models'). Most of the time goes to the C compiler (8-15 s a model), so the six compile in
two spawned worker processes into this session's build cache and come back pickled (their
unpickling finds the build in the cache); each case then runs its model here, against torch.
"""
import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cnncompile  # noqa: E402
from families import FAMILIES, build  # noqa: E402
from helpers import assert_close, random_input, run_torch  # noqa: E402
from models import MODELS, input_shape, is_model  # noqa: E402

# Reduced input sizes: 96 keeps every stride-32 network's maps whole (3x3 at the end) and
# above the 64-pixel images whose kernels differ; DeepLabV3 at output stride 16 gets an 8x8
# map at 128, so that the rate-6 ASPP branch reads real neighbours (rates 12 and 18 fall
# wholly in the padding there, as rate 18 does on the benchmark's 14x14 map).
SIDES = {"efficientnet_b0": 96, "mobilenet_v3_large": 96, "shufflenet_v2": 96,
         "convnext_tiny": 96, "regnet_x_400mf": 96, "deeplabv3": 128}
SHAPES = {name: (1, 3, side, side) for name, side in SIDES.items()}

# torchvision's parameter counts for the same architectures (its model documentation)
TORCHVISION_PARAMS = {"efficientnet_b0": 5_288_548, "mobilenet_v3_large": 5_483_032,
                      "shufflenet_v2": 2_278_604, "convnext_tiny": 28_589_128,
                      "regnet_x_400mf": 5_495_976}

# a case that fails is marked here, with the error, as pytest.mark.xfail(strict=True, ...)
XFAIL = {}
CASES = [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=XFAIL[name]))
         if name in XFAIL else name for name in FAMILIES]


def _compile_pickled(name, shape):
    """In a worker process: ("ok", pickled CompiledModel) or ("error", the error's text)."""
    try:
        return "ok", pickle.dumps(cnncompile.compile(build(name), shape))
    except Exception as exc:  # reported by the case itself, in the main process
        return "error", f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="module")
def compiling(request):
    """name -> future of _compile_pickled, for the cases of this file that were selected."""
    names = {item.callspec.params["name"] for item in request.session.items
             if item.module is request.module and hasattr(item, "callspec")}
    if not names:
        yield {}
        return
    workers = max(1, min(2, len(names), len(os.sched_getaffinity(0))))
    # spawn: a forked copy of a process that has run torch's thread pools can hang
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:  # the slowest builds first, so that the two workers finish together
        order = sorted(names, key=["convnext_tiny", "shufflenet_v2", "efficientnet_b0",
                                   "mobilenet_v3_large", "deeplabv3", "regnet_x_400mf"].index)
        yield {name: pool.submit(_compile_pickled, name, SHAPES[name]) for name in order}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.skipif(os.environ.get("CNNCOMPILE_FAMILIES") != "1",
                    reason="slow suite: set CNNCOMPILE_FAMILIES=1")
@pytest.mark.parametrize("name", CASES)
def test_family_matches_torch(name, compiling):
    status, payload = compiling[name].result(timeout=900)
    if status == "error":
        pytest.fail(f"{name} does not compile: {payload}", pytrace=False)
    compiled = pickle.loads(payload)
    x = random_input(SHAPES[name], seed=1)
    expected = run_torch(build(name), x)  # the same seed: the worker's weights
    assert compiled.output_shape == expected.shape[1:]
    assert_close(compiled(x), expected, f"{name} {SHAPES[name]} vs torch", rtol=1e-4,
                 atol=1e-4 * float(np.abs(expected).max()))
    if name == "convnext_tiny":  # its channels-last MLPs and LayerNorms run without permutes
        ops = [n.op for n in cnncompile.api.build_graph(build(name), SHAPES[name]).nodes()]
        assert "permute" not in ops and ops.count("channel_norm") == 23, ops


def test_families_are_benchmark_names_outside_the_example_suites():
    assert not set(FAMILIES) & set(MODELS)
    for name, shape in FAMILIES.items():
        assert is_model(name) and input_shape(name) == shape


def test_parameter_counts_are_torchvisions():
    for name, count in TORCHVISION_PARAMS.items():
        assert sum(p.numel() for p in build(name).parameters()) == count, name
