"""A drop-in for ``torch.nn`` when defining inference CNNs: ``import cnncompile.nn as nn``."""
from . import functional, init
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from .module import Module, ModuleList, Parameter, Sequential

__all__ = ["Module", "Sequential", "ModuleList", "Parameter", "Conv2d", "MaxPool2d", "ReLU",
           "Linear", "Flatten", "functional", "init"]
