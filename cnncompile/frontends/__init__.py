"""Frontends: models that are not written with cnncompile.nn.

``torch`` converts a real ``torch.nn.Module`` (through torch.export), ``onnx`` an ONNX file. Each
builds a cnncompile.nn module whose forward() replays the foreign graph with cnncompile's own
layers and functional calls, so the result is traced, checked and optimised exactly like a
model written with ``import cnncompile.nn as nn``. torch and onnx are optional extras and are
imported only here, only when a foreign model is given.
"""
import inspect
import sys
from pathlib import Path


def is_torch_module(model):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def is_onnx_model(model):
    if isinstance(model, (str, Path)):
        return str(model).lower().endswith(".onnx")
    onnx = sys.modules.get("onnx")
    return onnx is not None and isinstance(model, onnx.ModelProto)


def refuse_class(model, call="cnncompile.compile"):
    """A TypeError if ``model`` is a model class rather than a model: its weights live in an
    instance, so the class cannot be compiled."""
    from ..nn import Module
    torch = sys.modules.get("torch")
    bases = (Module,) + ((torch.nn.Module,) if torch is not None else ())
    if inspect.isclass(model) and issubclass(model, bases):
        name = model.__name__
        raise TypeError(f"{name} is a class; instantiate it: {call}({name}(), ...)")


def to_cnncompile(model, input_shape=None):
    """``model`` as a cnncompile.nn module, and the input shape to compile it for.

    A cnncompile.nn module is returned as is; a torch module is converted through torch.export;
    an ONNX model (a path or an ``onnx.ModelProto``) through the ONNX importer, which can take
    the input shape from the file. A model class is refused with what to write instead."""
    refuse_class(model)
    if is_torch_module(model):
        from .torch import convert
        return convert(model, input_shape), input_shape
    if is_onnx_model(model):
        from .onnx import convert
        converted = convert(model, input_shape)
        return converted, converted.input_shape
    return model, input_shape


def io_names(model, original=None):
    """(input names, output names) of a converted ``model``: an ONNX graph's; for a torch
    module (``original``), its forward()'s argument names; else (None, None), and trace()
    names them after forward()'s arguments and what it returns."""
    onnx = sys.modules.get(__name__ + ".onnx")
    if onnx is not None and isinstance(model, onnx.OnnxModule):
        return model.input_names, model.output_names
    if original is not None and is_torch_module(original):
        import inspect
        params = inspect.signature(original.forward).parameters.values()
        if all(p.kind != p.VAR_POSITIONAL for p in params):
            return [p.name for p in params
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)], None
    return None, None
