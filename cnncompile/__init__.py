"""cnncompile: compile a PyTorch-style CNN into specialised, dependency-free C.

    import cnncompile
    import cnncompile.nn as nn
    compiled = cnncompile.compile(model, input_shape=(1, 3, 32, 32))
    y = compiled(x)                      # numpy in, numpy out, any batch size
"""
from . import nn
from .api import compile, from_onnx, from_torch, load
from .errors import (BuildError, CompileError, ModelFileError, ShapeError, TraceError,
                     UnsupportedError)
from .nn import functional
from .nn.functional import cat, flatten
from .nn.init import manual_seed
from .version import __version__


__all__ = ["compile", "from_torch", "from_onnx", "load", "cat", "flatten", "nn", "functional",
           "manual_seed", "CompileError", "ShapeError", "TraceError", "UnsupportedError", "BuildError", "ModelFileError",
           "__version__"]
