"""Errors a user can trigger. Every message names the layer and says what to change."""


def layer_ref(name):
    """How messages refer to a layer: 'fc1', 'features.3', or 'layer 0' for a bare index."""
    return f"layer {name}" if name[:1].isdigit() else name


class CompileError(Exception):
    """A model cannot be compiled as written.

    ``layer`` is the graph node name (the module path, e.g. ``features.3``), ``source``
    the line of user code that created it, when known.
    """

    def __init__(self, message, layer=None, source=None):
        self.layer = layer
        self.source = source
        self.detail = message
        text = message if layer is None else f"{layer_ref(layer)}: {message}"
        if source:
            text += f"\n  (at {source})"
        super().__init__(text)


class ShapeError(CompileError, ValueError):
    """A layer's input does not have the shape the layer expects."""


class UnsupportedError(CompileError, NotImplementedError):
    """The model uses an op or an option that cnncompile does not support."""


class BuildError(RuntimeError):
    """The C compiler could not build the generated code."""


class TraceError(CompileError, TypeError):
    """forward() did something the tracer cannot record."""


class ModelFileError(CompileError, ValueError):
    """A model file (ONNX) is malformed or unsafe to read: nothing is compiled from it."""


def layer_error(node, message, cls=CompileError):
    """An error about ``node``: names the layer and the line of user code that created it."""
    return cls(message, layer=node.name, source=node.meta.get("source"))
