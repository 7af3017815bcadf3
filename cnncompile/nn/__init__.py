"""A drop-in for ``torch.nn`` when defining inference CNNs: ``import cnncompile.nn as nn``."""
from . import functional, init
from .activation import (ELU, GELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSoftmax, ReLU,
                         ReLU6, Sigmoid, SiLU, Softmax, Tanh)
from .layers import Conv2d, Flatten, Linear
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from .module import Module, ModuleList, Parameter, Sequential

__all__ = ["Module", "Sequential", "ModuleList", "Parameter", "Conv2d", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Linear",
           "Flatten", "ReLU", "ReLU6", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Hardtanh",
           "Hardswish", "Hardsigmoid", "SiLU", "GELU", "Softmax", "LogSoftmax", "functional",
           "init"]
