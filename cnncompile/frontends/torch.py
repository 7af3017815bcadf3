"""PyTorch frontend: a real ``torch.nn.Module`` -> a cnncompile.nn module that replays it.

torch.export runs the model's forward() with real shapes and records the ATen ops it calls,
so shape asserts, ``x.ndim`` checks, shape-dependent branches and custom module classes
(subclasses of torch layers, timm's wrappers) are gone before cnncompile sees the graph. The
batch dimension is exported as dynamic, so every size computed from it stays symbolic and a
view that mixes samples is caught. Each ATen op then replays as the cnncompile.nn call that
computes it (aten.py, aten_tensor.py), inside the scope of the module that called it
(``nn_module_stack``), so the layers keep their torch names: ``features.3.conv.1``.

Everything the model uses that cnncompile cannot compile is listed in one error, each entry
with the module path it was found in and the ATen op in torch's own words.
"""
import os
import warnings

import numpy as np

from .. import nn, trace
from ..errors import TraceError
from ..trace import Scope, Tensor, _current
from . import aten_tensor  # noqa: F401  (registers the handlers of ops on values)
from .aten import SKIPPED, WITH_INDICES, handler

# ops that never name their layer: a torch layer is named after the op that computes it
# (nn.Conv2d with padding_mode="reflect" is the conv, not the pad before it)
_SECONDARY = frozenset(["constant_pad_nd", "pad", "sym_size", "contiguous", "clone", "expand",
                        "detach", "alias", "_to_copy", "to", "lift_fresh_copy", "view"])
_CONTAINERS = ("Module", "Sequential", "ModuleList", "ModuleDict")
# higher-order ops that wrap a subgraph in a context (autocast, grad mode), which inference
# does not need: op name -> index of the subgraph among its arguments; the operands follow
_WRAPPERS = {"wrap_with_autocast": 4, "wrap_with_set_grad_enabled": 1}


def _require_torch():
    try:
        import torch
        import torch.export  # noqa: F401
    except ImportError:  # pragma: no cover - torch is what called us
        raise ImportError("compiling a torch.nn.Module needs PyTorch: pip install torch") from None
    return torch


def _array(value):
    value = value.detach().cpu()
    return value.numpy().astype(np.float32) if value.is_floating_point() else value.numpy()


def _is_torch_layer(cls):
    """A torch.nn layer, or a subclass of one (timm's BatchNormAct2d is a BatchNorm2d)."""
    return any(c.__module__.startswith("torch.nn.modules.") and c.__name__ not in _CONTAINERS
               for c in cls.__mro__)


def _shapes(input_shape):
    """One shape per forward() argument: input_shape is a shape or a list of them."""
    if input_shape and isinstance(input_shape[0], (tuple, list)):
        return [tuple(int(d) for d in s) for s in input_shape]
    return [tuple(int(d) for d in input_shape)]


def _export(torch, module, shapes):
    """torch.export of ``module`` in eval mode, with a dynamic batch where the model allows."""
    from torch.export import Dim
    name = type(module).__name__
    batch = max(2, shapes[0][0])  # torch specialises sizes 0 and 1
    example = tuple(torch.zeros((batch,) + s[1:]) for s in shapes)
    dynamic = tuple({0: Dim.AUTO} for _ in shapes)
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(module, example, dynamic_shapes=dynamic)
            if _batch_is_static(program):  # forward() depends on the batch size: take the user's
                example = tuple(torch.zeros(s) for s in shapes)
                program = torch.export.export(module, example)
    except Exception as exc:  # export raises many kinds; all mean "cannot capture forward()"
        reason = _reason(exc)
        raise TraceError(
            f"torch.export cannot capture {name}.forward(): {type(exc).__name__}: {reason}\n"
            "cnncompile reads a torch module through torch.export, which runs forward() on "
            "example inputs and records the tensor operations. Make forward() depend on tensor "
            "shapes only, not on tensor values (no `if x.sum() > 0`, .item() or .tolist()), "
            "and call only torch operations there; or export the model to ONNX with "
            "torch.onnx.export(..., dynamo=False), which records one path through forward(), "
            "and compile the .onnx file") from None
    finally:
        module.train(was_training)
    return program


def _reason(exc):
    """torch's message, without its pointers to debugging options: what failed and where."""
    lines = [ln.rstrip() for ln in str(exc).strip().splitlines() if ln.strip()]
    noise = ("For ", "If you suspect", "consider using", "Caused by", "The error above")
    kept = [ln for ln in lines if not ln.strip().startswith(noise)]
    return "\n    ".join(kept[:8] + (["..."] if len(kept) > 8 else []))


def _batch_is_static(program):
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in _user_inputs(program):
            if isinstance(node.meta["val"].shape[0], int):
                return True
    return False


def _user_inputs(program):
    from torch.export.graph_signature import InputKind
    return [s.arg.name for s in program.graph_signature.input_specs
            if s.kind == InputKind.USER_INPUT]


def _constants(program):
    """Node name -> numpy array of every parameter, buffer and constant the graph reads."""
    from torch.export.graph_signature import InputKind
    values = {}
    for spec in program.graph_signature.input_specs:
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            source = program.state_dict if spec.target in program.state_dict else program.constants
            value = source[spec.target]
            values[spec.arg.name] = _array(value) if hasattr(value, "detach") else value
    return values


class _Layers:
    """Which module call each node belongs to, and which node names a torch layer."""

    def __init__(self, module, graphs):
        self.scopes, self.named = {}, {}
        for node in (n for graph in graphs for n in graph.nodes):
            if node.op != "call_function":
                continue
            stack = node.meta.get("nn_module_stack") or {}
            if not stack:
                continue
            key, (path, _) = list(stack.items())[-1]
            self.scopes[node] = (key, path)
            if key in self.named and self.named[key][1]:
                continue
            try:
                cls = type(module.get_submodule(path))
            except AttributeError:
                continue
            if not _is_torch_layer(cls):
                continue
            main = _packet(node) not in _SECONDARY
            if key not in self.named or main:
                self.named[key] = (node, main)

    def scope(self, node):
        """The tracer Scope to record ``node`` in: a torch layer's node takes its path."""
        if node not in self.scopes:
            return None
        key, path = self.scopes[node]
        return Scope(path, self.named.get(key, (None,))[0] is node, _source(node))


def _packet(node):
    target = node.target
    return getattr(getattr(target, "_overloadpacket", None), "__name__", None) or \
        getattr(target, "__name__", str(target))


def _source(node):
    """file:line of the model code that called the op (the innermost frame outside torch),
    from the stack torch recorded."""
    import torch
    torch_dir = os.path.dirname(torch.__file__)
    lines = [ln.strip() for ln in (node.meta.get("stack_trace") or "").splitlines()]
    for i in reversed(range(len(lines))):
        path, _, rest = lines[i][6:].partition('", line ')
        if lines[i].startswith('File "') and \
                not os.path.abspath(path).startswith(torch_dir + os.sep):
            code = lines[i + 1] if i + 1 < len(lines) else ""
            return f"{path}:{rest.split(',')[0]}" + (f": {code}" if code else "")
    return None


def _flat(value):
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flat(v)]
    return [value]


class ExportedModule(nn.Module):
    """A torch module as torch.export captured it; forward() replays its ATen graph."""

    def __init__(self, program, module):
        super().__init__()
        object.__setattr__(self, "_program", program)
        object.__setattr__(self, "_constants", _constants(program))
        graphs = [m.graph for m in program.graph_module.modules() if hasattr(m, "graph")]
        object.__setattr__(self, "_layers", _Layers(module, graphs))

    def forward(self, *inputs):
        import torch.fx
        from torch.utils._pytree import tree_unflatten
        program = self._program
        names = _user_inputs(program)
        if len(inputs) != len(names):
            raise TraceError(f"{self._graph_name()}.forward() takes {len(names)} input tensors "
                             f"({', '.join(names)}); got {len(inputs)} input shapes")
        env = dict(self._constants)
        env.update(zip(names, inputs))
        for node in program.graph.nodes:
            if node.op == "call_function":
                env[node.name] = self._run(node, env)
            elif node.op == "get_attr":  # the body of a wrapper such as torch.autocast
                env[node.name] = program.graph_module.get_submodule(node.target)
            elif node.op == "output":
                specs = program.graph_signature.output_specs  # buffer mutations, then outputs
                values = [env[a.name] if isinstance(a, torch.fx.Node) else a
                          for a, spec in zip(node.args[0], specs)
                          if spec.kind.name == "USER_OUTPUT"]
                return tree_unflatten(values, program.call_spec.out_spec)
        raise TraceError("the exported torch module has no output")

    def _graph_name(self):
        return type(self).__name__

    def _body(self, body, operands):
        """The values a wrapped subgraph returns, run on ``operands``."""
        import torch.fx
        env, remaining = {}, list(operands)
        for node in body.graph.nodes:
            if node.op == "placeholder":
                env[node.name] = remaining.pop(0)
            elif node.op == "call_function":
                env[node.name] = self._run(node, env)
            elif node.op == "get_attr":
                env[node.name] = body.get_submodule(node.target)
            elif node.op == "output":
                return torch.fx.node.map_arg(node.args[0], lambda n: env[n.name])
        raise TraceError("a wrapped subgraph of the exported module has no output")

    def _run(self, node, env):
        import torch.fx
        args = torch.fx.node.map_arg(node.args, lambda n: env[n.name])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n.name])
        packet = _packet(node)
        if packet in SKIPPED:
            return None
        if not any(isinstance(v, Tensor) for v in _flat([args, kwargs])):
            return _evaluate(node, args, kwargs)
        if packet == "getitem":
            return args[0][args[1]]
        if packet in _WRAPPERS:  # `with torch.autocast(...)` / `torch.no_grad()`: run the body
            body = args[_WRAPPERS[packet]]
            return self._body(body, args[_WRAPPERS[packet] + 1:])
        overload = getattr(node.target, "_overloadname", "default")
        fn = handler(packet, overload)
        tracer, scope = _current(), self._layers.scope(node)
        if tracer is not None and scope is not None:
            tracer.scopes.append(scope)
        try:
            if fn is None:
                return _unsupported(node, packet, overload, args, kwargs)
            if packet in WITH_INDICES and _reads_output(node, 1):
                kwargs = dict(kwargs, return_indices=True)
            return fn(*args, **kwargs)
        finally:
            if tracer is not None and scope is not None:
                tracer.scopes.pop()


def _reads_output(node, index):
    """Whether the exported graph reads output ``index`` of ``node`` (asserts aside)."""
    return any(user.args[1:2] == (index,) and any(_packet(u) not in SKIPPED for u in user.users)
               for user in node.users if _packet(user) == "getitem")


def _unsupported(node, packet, overload, args, kwargs):
    tensors = [v for v in _flat([args, kwargs]) if isinstance(v, Tensor)]
    out = trace.record_unsupported(f"aten.{packet}.{overload}", tensors, name=packet)
    value = node.meta.get("val")
    return [out] * len(value) if isinstance(value, (list, tuple)) else out


def _evaluate(node, args, kwargs):
    """A node of constants only (a weight transposed, a shape computed): torch computes it."""
    import torch
    to_torch = (lambda v: torch.from_numpy(np.ascontiguousarray(v))
                if isinstance(v, np.ndarray) else v)
    args = torch.utils._pytree.tree_map(to_torch, args)
    kwargs = torch.utils._pytree.tree_map(to_torch, kwargs)
    out = node.target(*args, **kwargs)
    return torch.utils._pytree.tree_map(
        lambda v: _array(v) if isinstance(v, torch.Tensor) else v, out)


def _warn_if_training(torch, module):
    kinds = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd)
    if module.training and any(isinstance(m, kinds) for m in module.modules()):
        warnings.warn(f"{type(module).__name__} is in training mode; cnncompile compiles it for "
                      "inference, as model.eval() would (BatchNorm uses its running statistics, "
                      "Dropout does nothing). Call model.eval() first to silence this warning.",
                      stacklevel=5)


def convert(module, input_shape):
    """``module`` (a torch.nn.Module) as a cnncompile.nn module whose forward() replays it;
    tracing it raises one error listing everything that cannot be compiled."""
    torch = _require_torch()
    if input_shape is None:
        raise ValueError("input_shape is missing: give the shape of one call's input, "
                         "e.g. input_shape=(1, 3, 224, 224)")
    shapes = _shapes(input_shape)
    if any(not s or any(d <= 0 for d in s) for s in shapes):
        raise ValueError(f"input_shape must be positive integers such as (1, 3, 32, 32), "
                         f"got {input_shape}")
    _warn_if_training(torch, module)
    program = _export(torch, module, shapes)
    cls = type(type(module).__name__, (ExportedModule,), {"__module__": type(module).__module__})
    return cls(program, module).eval()


__all__ = ["convert", "ExportedModule"]
