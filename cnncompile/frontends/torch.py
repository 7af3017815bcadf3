"""PyTorch frontend: a real ``torch.nn.Module`` -> an equivalent cnncompile.nn module.

torch.fx traces the module symbolically into a graph of calls: ``call_module`` (a torch.nn
layer such as ``layer1.0.conv1``), ``call_function`` (``F.relu``, ``torch.flatten``, ``+``),
``call_method`` (``x.view(...)``, ``x.size(0)``) and ``get_attr`` (a tensor held by the
module). Each torch.nn layer becomes the cnncompile.nn layer of the same name, built from the
torch layer's own attributes and loaded with its weights, and registered at the same module
path, so compiled layers keep their torch names. forward() then replays the fx graph on
cnncompile's tracer, and the result is compiled like any cnncompile.nn model.

Everything the model uses that cnncompile cannot compile is listed in one error, each entry
with the module path it was found in.
"""
import inspect
import operator

import numpy as np

from .. import nn
from ..errors import TraceError, UnsupportedError
from ..nn import functional as F
from ..support import SUPPORTED_HINT, TENSOR_METHODS, TORCH_FUNCTIONS, TORCH_NN_LAYERS
from ..trace import Scope, Tensor, _current

# Python operators as fx records them (x + y, x += y, -x, x.size(0) * 2, ...); they run on
# the tracer's Tensor, or on ints for shape arithmetic
OPERATORS = frozenset([operator.add, operator.iadd, operator.sub, operator.isub, operator.mul,
                       operator.imul, operator.truediv, operator.itruediv, operator.floordiv,
                       operator.neg, operator.getitem])

# torch.<name> functions that are torch.nn.functional's (or a Tensor method's) namesake
TORCH_NAMESPACE = ("relu", "relu_", "sigmoid", "tanh", "flatten", "cat", "concat", "add", "sub",
                   "mul", "div", "softmax", "log_softmax", "max_pool2d", "avg_pool2d",
                   "adaptive_avg_pool2d", "adaptive_max_pool2d", "conv1d", "conv2d", "conv3d",
                   "conv_transpose2d", "batch_norm", "dropout", "reshape", "hardtanh", "selu",
                   "prelu", "clamp", "clip")


def _require_torch():
    try:
        import torch
        import torch.fx  # noqa: F401
    except ImportError:  # pragma: no cover - torch is what called us
        raise ImportError("compiling a torch.nn.Module needs PyTorch: pip install torch") from None
    return torch


def _function_names(torch):
    """id(torch function) -> its name, for torch.nn.functional and the torch namespace."""
    names = {}
    for name in dir(torch.nn.functional):
        obj = getattr(torch.nn.functional, name)
        if callable(obj) and not name.startswith("_"):
            names.setdefault(id(obj), name)
    for name in TORCH_NAMESPACE:
        obj = getattr(torch, name, None)
        if obj is not None:
            names.setdefault(id(obj), name)
    return names


def _cnncompile_function(name):
    """The cnncompile.nn.functional (or Tensor-method) equivalent of torch's ``name``."""
    name = name.rstrip("_")  # relu_ works in place in torch; the traced value is the same
    if name == "concat":
        name = "cat"
    if name in ("add", "sub", "mul", "div"):
        return getattr(operator, "truediv" if name == "div" else name)
    if name == "reshape":
        return lambda x, *shape: x.reshape(*shape)
    if name in TORCH_FUNCTIONS:
        return None
    return vars(F).get(name)


def _layer_class(torch_module):
    """The cnncompile.nn class for a torch.nn layer, or None."""
    cls = type(torch_module)
    if not cls.__module__.startswith("torch.nn."):
        return None
    name = cls.__name__
    if name in TORCH_NN_LAYERS or name not in nn.__all__:
        return None
    return getattr(nn, name)


def _describe(node):
    """Where an fx node comes from: its module path, for error messages."""
    if node.op == "call_module":
        return node.target
    stack = node.meta.get("nn_module_stack") or {}
    paths = [path for path, _ in stack.values()]
    return paths[-1] if paths else ""


def _array(value):
    return value.detach().cpu().numpy().astype(np.float32, copy=False)


class _Container(nn.Module):
    """A module path level (``layer1``, ``layer1.0``) that only holds converted layers."""


class TorchModule(nn.Module):
    """A converted torch module: its layers as cnncompile.nn layers, its forward() the fx graph."""

    def __init__(self, graph, constants, layers):
        super().__init__()
        object.__setattr__(self, "_fx_graph", graph)
        object.__setattr__(self, "_constants", constants)
        for path, layer in layers.items():
            parent = self
            *parents, leaf = path.split(".")
            for part in parents:
                child = parent._modules.get(part)
                if child is None:
                    child = _Container()
                    parent.add_module(part, child)
                parent = child
            parent.add_module(leaf, layer)

    def forward(self, *inputs):
        env = {}
        remaining = list(inputs)
        for node in self._fx_graph.nodes:
            if node.op == "placeholder":
                if remaining:
                    env[node.name] = remaining.pop(0)
                elif node.args:
                    env[node.name] = node.args[0]  # a default argument value
                else:
                    raise TraceError(f"forward() of the torch module takes an argument "
                                     f"{node.target!r} besides the input; cnncompile compiles "
                                     "models of one input tensor", layer=node.target)
            elif node.op == "output":
                return self._value(node.args[0], env)
            else:
                env[node.name] = self._run(node, env)
        raise TraceError("the torch module's fx graph has no output")

    def _value(self, arg, env):
        import torch.fx
        if isinstance(arg, torch.fx.Node):
            return env[arg.name]
        if isinstance(arg, (list, tuple)):
            return type(arg)(self._value(a, env) for a in arg)
        if isinstance(arg, dict):
            return {k: self._value(v, env) for k, v in arg.items()}
        if hasattr(arg, "detach"):  # a torch tensor constant
            return _array(arg)
        return arg

    def _run(self, node, env):
        args = self._value(node.args, env)
        kwargs = self._value(node.kwargs, env)
        if node.op == "get_attr":
            return self._constants[node.target]
        if node.op == "call_module":
            return self.get_submodule(node.target)(*args, **kwargs)
        tracer, scope = _current(), _describe(node)
        if tracer is not None and scope:
            tracer.scopes.append(Scope(scope, False))
        try:
            if node.op == "call_method":
                obj, rest = args[0], args[1:]
                return getattr(obj, node.target)(*rest, **kwargs)
            if node.target is getattr:
                return getattr(*args)
            if node.target in OPERATORS:
                return node.target(*args, **kwargs)
            return node.meta["cnncompile_function"](*args, **kwargs)
        finally:
            if tracer is not None and scope:
                tracer.scopes.pop()

    def get_submodule(self, path):
        module = self
        for part in path.split("."):
            module = module._modules[part]
        return module


def _convert_layer(torch_module):
    """A cnncompile.nn layer built like ``torch_module`` and holding its weights, or a reason
    why it cannot be."""
    cls = _layer_class(torch_module)
    if cls is None:
        return None, None
    if cls is nn.BatchNorm2d and torch_module.running_mean is None:
        return None, ("BatchNorm2d without running statistics (track_running_stats=False) "
                      "normalises with each batch's statistics; cnncompile compiles inference "
                      "with fixed statistics")
    kwargs = {}
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if (param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
                or param.name in ("device", "dtype")):
            continue
        if param.name == "bias":  # a flag in the constructor, a tensor or None on the layer
            kwargs["bias"] = (getattr(torch_module, "bias", None) is not None
                              or cls is nn.BatchNorm2d)
        elif hasattr(torch_module, param.name):
            value = getattr(torch_module, param.name)
            kwargs[param.name] = list(value) if isinstance(value, list) else value
    try:
        layer = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        return None, f"cannot be rebuilt as cnncompile.nn.{cls.__name__}: {exc}"
    state = {k: _array(v) if v.is_floating_point() else v.detach().cpu().numpy()
             for k, v in torch_module.state_dict().items()}
    layer.load_state_dict(state, strict=False)
    layer.train(torch_module.training)
    return layer, None


def convert(module):
    """``module`` (a torch.nn.Module) as a cnncompile.nn module with the same layers, weights
    and forward(); raises one error listing everything that cannot be compiled."""
    torch = _require_torch()
    name = type(module).__name__
    try:
        graph_module = torch.fx.symbolic_trace(module)
    except Exception as exc:  # fx raises several kinds; all mean "cannot trace symbolically"
        raise TraceError(
            f"torch.fx cannot trace {name}: {type(exc).__name__}: {exc}\ncnncompile reads a torch "
            "module by symbolic tracing, so forward() may not branch on tensor values or call "
            "code fx cannot follow. Rewrite that part of forward() (shapes are known: branch on "
            "x.shape only), or export the model to ONNX (torch.onnx.export) and compile the "
            ".onnx file") from None
    functions = _function_names(torch)
    layers, constants, problems = {}, {}, []
    for node in graph_module.graph.nodes:
        where = _describe(node)
        if node.op == "call_module":
            sub = graph_module.get_submodule(node.target)
            if node.target in layers:
                continue
            layer, reason = _convert_layer(sub)
            if layer is None:
                kind = f"{type(sub).__module__}.{type(sub).__name__}"
                problems.append((where, f"{kind}" + (f": {reason}" if reason else
                                                     " has no cnncompile.nn counterpart")))
            else:
                layers[node.target] = layer
        elif node.op == "get_attr":
            value = graph_module
            for part in node.target.split("."):
                value = getattr(value, part)
            constants[node.target] = _array(value) if hasattr(value, "detach") else value
        elif node.op == "call_function":
            if node.target is getattr or node.target in OPERATORS:
                continue
            fname = functions.get(id(node.target),
                                  getattr(node.target, "__name__", str(node.target)))
            fn = _cnncompile_function(fname) if id(node.target) in functions else None
            if fn is None:
                owner = getattr(node.target, "__module__", None) or "torch"
                problems.append((where, f"{owner}.{fname}()"))
            node.meta["cnncompile_function"] = fn
        elif node.op == "call_method":
            if node.target in TENSOR_METHODS or not hasattr(Tensor, node.target):
                problems.append((where, f"Tensor.{node.target}()"))
    if problems:
        lines = [f"{name} cannot be compiled: {len(problems)} unsupported "
                 f"operation{'s' if len(problems) > 1 else ''}"]
        lines += [f"  - {where or '(top level forward)'}: {what}" for where, what in problems]
        lines.append(SUPPORTED_HINT[0].upper() + SUPPORTED_HINT[1:] + ".")
        raise UnsupportedError("\n".join(lines))
    converted_cls = type(name, (TorchModule,), {"__module__": type(module).__module__})
    converted = converted_cls(graph_module.graph, constants, layers)
    converted.train(module.training)
    return converted
