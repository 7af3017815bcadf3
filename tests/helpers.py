"""Shared by the tests: the torch twin of an example, and numeric comparisons."""
from pathlib import Path

import numpy as np

import cnncompile
from cnncompile import reference
from cnncompile.nn.init import DEFAULT_SEED

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["seed_simplecnn", "seed_network", "seed_sequential", "seed_quiz", "lenet5",
            "seed_separable", "conv_autoencoder", "vgg11_cifar", "mobilenet_v2", "resnet18"]
RTOL, ATOL = 1e-4, 1e-5


def load_example(name, framework="cnncompile"):
    """Execute examples/<name>.py; with framework='torch', with its imports switched to torch.nn.

    The switch is the two import lines only: the seeds' promise is that model code written
    for torch.nn runs with nothing else changed. Returns the file's namespace.
    """
    path = ROOT / "examples" / f"{name}.py"
    src = path.read_text()
    if framework == "torch":
        src = (src.replace("import cnncompile.nn.functional as F", "import torch.nn.functional as F")
                  .replace("import cnncompile.nn as nn", "import torch.nn as nn"))
    cnncompile.manual_seed(DEFAULT_SEED)  # as in a fresh process: same weights every time
    namespace = {"__name__": f"example_{name}_{framework}", "__file__": str(path)}
    exec(compile(src, str(path), "exec"), namespace)
    if framework == "cnncompile":
        randomise_batch_norm(namespace["model"])
    return namespace


def randomise_batch_norm(model, seed=0):
    """BatchNorm statistics and affine parameters that are not the defaults (mean in
    [-0.5, 0.5], var in [0.5, 1.5]), so that folding and normalisation really count."""
    import cnncompile.nn as nn
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean[...] = rng.uniform(-0.5, 0.5, c)
            m.running_var[...] = rng.uniform(0.5, 1.5, c)
            if m.weight is not None:
                m.weight[...] = rng.uniform(0.5, 1.5, c)
            if m.bias is not None:
                m.bias[...] = rng.uniform(-0.5, 0.5, c)


def torch_twin(model, torch_model):
    """Copy ``model``'s weights into ``torch_model`` and return it in eval mode."""
    import torch
    torch_model.load_state_dict({k: torch.from_numpy(np.array(v))
                                 for k, v in model.state_dict().items()})
    return torch_model.eval()


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
        assert_close(y, reference.run(compiled.graph, x), f"batch {batch} vs reference")
        if torch_model is not None:
            assert_close(y, run_torch(torch_model, x), f"batch {batch} vs torch")
    return compiled
