"""Benchmark models of six further architecture families, as plain torch modules.

Each follows the published architecture as torchvision defines it (layer sizes, strides,
activations, where the residuals and squeeze-and-excitation sit), written here so that the
harness needs no torchvision. Weights are random (seeded, the same in every process) and
BatchNorm statistics are drawn away from the defaults, as for torchvision:<name> models.
Nothing here trains: dropout and stochastic depth are left out (they are identities in eval).

They are not in models.MODELS: the test suites run every model of MODELS against torch in
every CI run. tests/test_families.py checks these at reduced input sizes, and the harness
takes their names like any other:

    python benchmarks/run.py --models efficientnet_b0,convnext_tiny --threads 1

FAMILIES maps each name to its benchmark input shape; ``build(name)`` returns the module. One
file per family; common.py holds the units they share.
"""
import torch
from torch import nn

from .convnext import ConvNeXt, ConvNeXtBlock
from .deeplab import DeepLabV3
from .efficientnet import EfficientNetB0
from .mobilenet_v3 import MobileNetV3Large
from .regnet import RegNetX
from .shufflenet import ShuffleNetV2

# name -> batch-1 input shape
FAMILIES = {
    "efficientnet_b0": (1, 3, 224, 224),
    "mobilenet_v3_large": (1, 3, 224, 224),
    "shufflenet_v2": (1, 3, 224, 224),
    "convnext_tiny": (1, 3, 224, 224),
    "regnet_x_400mf": (1, 3, 224, 224),
    "deeplabv3": (1, 3, 224, 224),
}


CONSTRUCTORS = {
    "efficientnet_b0": EfficientNetB0,
    "mobilenet_v3_large": MobileNetV3Large,
    "shufflenet_v2": ShuffleNetV2,
    "convnext_tiny": ConvNeXt,
    "regnet_x_400mf": RegNetX,
    "deeplabv3": DeepLabV3,
}


def build(name, seed=0):
    """The model ``name`` in eval mode, with weights drawn from ``seed`` (the same module in
    every process), BatchNorm statistics and affine parameters away from their defaults, and
    ConvNeXt's layer scales drawn from [0.1, 1] instead of 1e-6, so that every block counts
    in the output that is compared."""
    from models import randomise_torch_batch_norm
    torch.manual_seed(seed)
    model = CONSTRUCTORS[name]()
    randomise_torch_batch_norm(model, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ConvNeXtBlock):
                m.layer_scale.uniform_(0.1, 1.0, generator=g)
            elif isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.1, 0.1, generator=g)
    return model.eval()
