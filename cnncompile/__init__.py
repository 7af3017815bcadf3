"""cnncompile: compile a PyTorch-style CNN into specialised, dependency-free C.

    import cnncompile
    import cnncompile.nn as nn
    compiled = cnncompile.compile(model, input_shape=(1, 3, 32, 32))
    y = compiled(x)                      # numpy in, numpy out, any batch size
"""
__version__ = "0.1.0"

from . import nn  # noqa: E402
from .api import compile, from_onnx, from_torch, load  # noqa: E402
from .errors import (BuildError, CompileError, ModelFileError, ShapeError, TraceError,  # noqa: E402
                     UnsupportedError)
from .nn import functional  # noqa: E402
from .nn.functional import cat, flatten  # noqa: E402
from .nn.init import manual_seed  # noqa: E402


__all__ = ["compile", "from_torch", "from_onnx", "load", "cat", "flatten", "nn", "functional",
           "manual_seed", "CompileError", "ShapeError", "TraceError", "UnsupportedError", "BuildError", "ModelFileError",
           "__version__"]
