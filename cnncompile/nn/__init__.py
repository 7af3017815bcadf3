"""A drop-in for ``torch.nn`` when defining inference CNNs: ``import cnncompile.nn as nn``."""
from . import functional, init
from .activation import (ELU, GELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSoftmax, ReLU,
                         ReLU6, Sigmoid, SiLU, Softmax, Tanh)
from .layers import Conv1d, Conv2d, Conv3d, ConvTranspose2d, Flatten, Fold, Linear, Unfold
from .unary import Mish, Softplus
from .padding import *  # noqa: F401,F403  (ZeroPad2d, ReflectionPad2d, ...)
from .padding import __all__ as _padding_layers
from .movement import ChannelShuffle, PixelShuffle, PixelUnshuffle
from .resize import *  # noqa: F401,F403  (Upsample, UpsamplingBilinear2d, ...)
from .resize import __all__ as _resize_layers
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from .pool3d import *  # noqa: F401,F403  (MaxPool3d, AvgPool1d, ...)
from .pool3d import __all__ as _pool3d_layers
from .module import Module, ModuleList, Parameter, Sequential
from .norm import *  # noqa: F401,F403  (LayerNorm, GroupNorm, InstanceNorm1d/2d/3d)
from .norm import __all__ as _norm_layers
from .normalization import (AlphaDropout, BatchNorm2d, Dropout, Dropout1d, Dropout2d, Dropout3d,
                            Identity)

__all__ = ["Module", "Sequential", "ModuleList", "Parameter", "Conv1d", "Conv2d", "Conv3d",
           "ConvTranspose2d", "Unfold", "Fold", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Linear",
           "Flatten", "ReLU", "ReLU6", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Hardtanh",
           "Hardswish", "Hardsigmoid", "SiLU", "GELU", "Mish", "Softplus", "Softmax",
           "LogSoftmax", "BatchNorm2d", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
           "AlphaDropout", "Identity", "ChannelShuffle", "PixelShuffle", "PixelUnshuffle",
           "functional", "init"] + _padding_layers + _norm_layers + _resize_layers + _pool3d_layers


def __getattr__(name):
    from ..support import TORCH_NN_LAYERS
    from .unsupported import layer_class
    if name in TORCH_NN_LAYERS:
        return layer_class(name)
    raise AttributeError(f"module 'cnncompile.nn' has no attribute '{name}'")
