"""The benchmark models (../shared/BENCHMARKS.md), each written once in examples/ with
cnncompile.nn. Its plain PyTorch form is the same file with the import lines switched to
torch.nn, which is the promise cnncompile makes its users; both get the same weights.

Models beyond the set are named `torchvision:<name>` (e.g. torchvision:resnet50): torchvision's
definition with seeded random weights, compiled from the torch module itself (it needs an
environment where torchvision imports).

Six more families (EfficientNet-B0, MobileNetV3-Large, ShuffleNetV2, ConvNeXt-Tiny,
RegNetX-400MF, DeepLabV3) are plain torch modules in families/, taken by name like the models
here but kept out of MODELS, whose every model the test suites run (tests/test_families.py
checks them); they are imported only when asked for, since they need torch.
"""
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# name -> input shape, in the order of BENCHMARKS.md
MODELS = {
    "seed_simplecnn": (1, 3, 32, 32),
    "seed_network": (1, 1, 28, 28),
    "seed_sequential": (1, 1, 200, 200),
    "seed_quiz": (1, 3, 130, 130),
    "seed_separable": (1, 3, 64, 64),
    "lenet5": (1, 1, 28, 28),
    "conv_autoencoder": (1, 1, 28, 28),
    "vgg11_cifar": (1, 3, 32, 32),
    "mobilenet_v2": (1, 3, 224, 224),
    "resnet18": (1, 3, 224, 224),
}

TORCHVISION = "torchvision:"


def families():
    """families.FAMILIES: name -> input shape of the torch-only models (imports torch)."""
    from families import FAMILIES
    return FAMILIES


def is_family(spec):
    """A families/ model (asks torch only of names that no example file has)."""
    return (spec not in MODELS and not spec.startswith(TORCHVISION)
            and not (EXAMPLES / f"{spec}.py").exists() and spec in families())


def input_shape(spec):
    """The batch-1 input shape of a benchmark model or a torchvision:<name> spec."""
    if spec.startswith(TORCHVISION):
        side = 299 if spec == TORCHVISION + "inception_v3" else 224
        return (1, 3, side, side)
    if is_family(spec):
        return families()[spec]
    return MODELS[spec]


def is_model(spec):
    return (spec in MODELS or (spec.startswith(TORCHVISION) and len(spec) > len(TORCHVISION))
            or is_family(spec))


def torchvision_model(spec, seed=0):
    """torchvision's model of that name in eval mode, with weights drawn from ``seed`` and
    BatchNorm statistics that are not the defaults: the same module in every process."""
    import torch
    import torchvision
    name = spec[len(TORCHVISION):]
    kw = dict(aux_logits=False, init_weights=True) if name in ("googlenet", "inception_v3") else {}
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None, **kw)
    randomise_torch_batch_norm(model, seed)
    return model.eval()


def randomise_torch_batch_norm(model, seed=0):
    """A torch model's BatchNorm statistics and affine parameters drawn away from the
    defaults (mean in [-0.1, 0.1], var in [0.5, 1.5]), so that folding really counts."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.uniform_(-0.1, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                if m.weight is not None:
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.bias.uniform_(-0.1, 0.1, generator=g)


def load_example(name, framework="cnncompile"):
    """Execute examples/<name>.py; with framework='torch', with its imports switched to torch.nn.

    Returns the file's namespace (its ``model``, ``INPUT_SHAPE``...). Weights are reproducible:
    the generator is reseeded first, and BatchNorm statistics are set to non-default values.
    A families/ model is its torch module whatever ``framework`` (cnncompile compiles it
    through torch.export).
    """
    if is_family(name):
        from families import build
        return {"model": build(name), "INPUT_SHAPE": families()[name]}
    import cnncompile
    from cnncompile.nn.init import DEFAULT_SEED
    path = EXAMPLES / f"{name}.py"
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


def pair(name):
    """(cnncompile model, torch model with the same weights, input shape); for a
    families/ model, the same torch module twice."""
    if is_family(name):
        model = load_example(name)["model"]
        return model, model, families()[name]
    model = load_example(name)["model"].eval()
    return model, torch_twin(model, load_example(name, "torch")["model"]), MODELS[name]
