"""Symbolic tracing: run forward() on a proxy Tensor and record one graph node per layer call.

Layers from cnncompile.nn become exactly one node each, named after their module path
(``features.3``); a functional call becomes a node named after its op (``relu``, ``relu_1``).
Shapes are inferred while tracing, so ``x.size()``, ``x.shape`` and ``x.view(-1, ...)`` work
and a wrong model fails at the line that is wrong, before any C is written.

The batch dimension is free at call time: dimension 0 of every value is the batch, and a
``view``/``reshape`` must keep it there.
"""
import os
import sys
import threading

from . import model_io as io, ops
from .errors import CompileError, ShapeError, TraceError, UnsupportedError, layer_error
from .ir import Graph, Node, Value
from .ops.reshape import resolve_view
from .support import SUPPORTED_HINT
from .tensor import BatchSize, Size, Tensor, _functional, register_tensor_methods  # noqa: F401

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_state = threading.local()

# cnncompile.nn depends on this module, never the reverse: what the tracer must know of nn,
# nn registers here when it loads.
_module_types = []  # the classes trace() accepts: cnncompile.nn.Module


def register_module_type(cls):
    """Let trace() accept instances of ``cls``; returns ``cls``, to be used as a decorator."""
    _module_types.append(cls)
    return cls


def _current():
    return getattr(_state, "tracer", None)


class Tracer:
    def __init__(self, module):
        self.graph = Graph(name=type(module).__name__)
        self.paths = {id(m): path for path, m in module.named_modules()}
        self.scopes = []  # Scope of each module being called, innermost last
        self.unsupported = []  # UnsupportedErrors met so far

    def __enter__(self):
        if _current() is not None:
            raise RuntimeError("cnncompile.trace() called while another trace is running")
        _state.tracer = self
        return self

    def __exit__(self, *exc):
        _state.tracer = None

    def input(self, shape, name="input"):
        node = Node(self.graph.unique_name(name), "input", {"shape": tuple(shape)})
        self._record_node(node, [])
        self.graph.inputs.append(node.name)
        return Tensor(self, node.name)

    def error(self, base, message):
        return ShapeError(message, layer=self.graph.unique_name(base), source=user_source())

    def _record_node(self, node, inputs, source=None):
        node.meta["source"] = source or user_source()
        self.graph.add(node, [t.name for t in inputs])
        ins = self.graph.input_values(node.name)
        node.meta["shape"] = None
        op = ops.get(node.op, node)
        try:
            op.check_attrs(node)
            if any(v.shape is None for v in ins):
                return node  # after an unsupported layer: no shapes to check against
            node.meta["shape"] = tuple(op.infer_shape(node, ins))
        except UnsupportedError as exc:
            self.unsupported.append(exc)  # reported with the others when tracing ends
        except CompileError as exc:
            self.graph.nx.remove_node(node.name)
            if self.unsupported:
                raise self.unsupported_error(exc) from None
            raise
        return node

    def unsupported_error(self, also=None):
        """One error listing every unsupported layer met (and a later error, if any)."""
        errors = self.unsupported + ([also] if also is not None else [])
        lines = [f"{self.graph.name} cannot be compiled: {len(self.unsupported)} "
                 f"unsupported layer{'s' if len(self.unsupported) > 1 else ''}"]
        for exc in errors:
            lines.append("  - " + str(exc).replace("\n", "\n    "))
        lines.append(SUPPORTED_HINT[0].upper() + SUPPORTED_HINT[1:] + ".")
        err = UnsupportedError("\n".join(lines))
        err.errors = errors
        return err

    def record(self, op, inputs, attrs, params, name=None):
        scope = self.scopes[-1] if self.scopes else None
        source = scope.source if scope is not None else None
        if scope is not None and scope.leaf and not scope.used:
            base, source = scope.path, scope.source  # a layer is one node, named by its path
            scope.used = True
        elif scope is not None and scope.path:
            base = f"{scope.path}.{name or op}"  # a functional call inside a submodule
        else:
            base = name or op
        node = Node(self.graph.unique_name(base), op, dict(attrs), dict(params or {}))
        for t in inputs:
            if not isinstance(t, Tensor) or t._tracer is not self:
                raise layer_error(node, f"{op} receives {type(t).__name__} as an input; "
                                  "inputs of a layer must be the model's input or the output "
                                  "of another layer", TraceError)
        self._record_node(node, inputs, source)
        return Tensor(self, node.name)

    def record_reshape(self, tensor, kind, requested, call):
        scope = self.scopes[-1] if self.scopes else None
        base, source = kind, (scope.source if scope is not None else None) or user_source()
        if scope is not None and scope.leaf and not scope.used:  # nn.Flatten: named by its path
            base, source = scope.path, scope.source or source
            scope.used = True
        node = Node(self.graph.unique_name(base), "reshape", {"call": call})
        node.meta["source"] = source
        x = self.graph.value(tensor.name)
        if x.shape is None:
            raise self.unsupported_error()
        node.attrs["shape"] = resolve_view(node, x, requested)
        self._record_node(node, [tensor])
        return Tensor(self, node.name)


def user_source():
    """file:line of the innermost frame outside cnncompile: the user code being traced."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def apply(op, inputs, attrs, params=None, name=None):
    """Record ``op`` when tracing (a functional call's node is called ``name`` or the op's
    name); run its numpy reference on numpy inputs otherwise."""
    if any(isinstance(t, Tensor) for t in inputs):
        tracer = _current()
        if tracer is None:
            raise TraceError(f"{op}: a traced tensor is used outside cnncompile.trace()")
        return tracer.record(op, inputs, attrs, params, name)
    import numpy as np
    node = Node(op, op, dict(attrs), dict(params or {}))
    arrays = [np.asarray(t, dtype=np.float32) for t in inputs]
    impl = ops.get(op, node)
    impl.infer_shape(node, [Value(f"input{i}", "input", a.shape) for i, a in enumerate(arrays)])
    return impl.reference(node, arrays)


def record_unsupported(what, inputs, hint=None, name=None):
    """A placeholder node for ``what``, which cnncompile does not compile: tracing goes on, so
    that the error lists every unsupported layer at once. Outside tracing, raise at once."""
    tensors = [t for t in inputs if isinstance(t, Tensor)]
    if not tensors:
        raise UnsupportedError(f"{what} is not supported by cnncompile"
                               + (f"; {hint}" if hint else ""))
    return apply("unsupported", tensors, {"what": what, "hint": hint}, name=name)


class Scope:
    """A module being called while tracing: its path, and for a layer, whether it has
    produced its node yet and which source line to report for it."""

    def __init__(self, path, leaf, source=None):
        self.path, self.leaf, self.source, self.used = path, leaf, source, False


def call_module(module, args, kwargs):
    tracer = _current()
    if tracer is None:
        return module.forward(*args, **kwargs)
    leaf = module.op_name is not None
    path = tracer.paths.get(id(module))
    source = None
    if leaf:
        path = path or module.op_name
        # Called by a container (Sequential): the useful line is where the layer was built.
        caller = os.path.abspath(sys._getframe(2).f_code.co_filename)
        source = module._defined_at if caller.startswith(_PACKAGE_DIR + os.sep) else None
    tracer.scopes.append(Scope(path, leaf, source))
    try:
        return module.forward(*args, **kwargs)
    finally:
        tracer.scopes.pop()


def trace(module, input_shape, input_names=None, output_names=None):
    """Trace ``module`` on inputs of ``input_shape`` into a Graph: (N, C, H, W) for a
    forward() of one tensor, a list of shapes (same N) for one per forward() argument.

    graph.inputs: the inputs in argument order; graph.outputs: the tensors returned, in the
    order the returned tuple/list/dict flattens. graph.meta["io"] names them (input_names,
    output_names, default: forward()'s arguments, the tuple positions and dict keys) and
    keeps the structure (model_io.py); it is absent for one input and one tensor returned."""
    if not isinstance(module, tuple(_module_types)):
        raise TypeError(f"cnncompile compiles a cnncompile.nn.Module, a torch.nn.Module or an "
                        f"ONNX model (a .onnx path or onnx.ModelProto), got "
                        f"{type(module).__name__}")
    shapes, several = io.input_shapes(input_shape)
    if several:
        names = io.input_names(input_names, module.forward, len(shapes))
    with Tracer(module) as tracer:
        if several:
            xs = [tracer.input(shape, name) for shape, name in zip(shapes, names)]
        else:
            xs = [tracer.input(shapes[0])]
        out = module(*xs)
    if tracer.unsupported:
        raise tracer.unsupported_error()
    if isinstance(out, Tensor) and not several:
        tracer.graph.outputs = [out.name]
        return tracer.graph
    tensors, tree, labels = io.flatten_outputs(out, type(module).__name__, Tensor)
    tracer.graph.outputs = [t.name for t in tensors]
    if output_names is not None:
        labels = list(output_names)
    if not several:
        names = list(input_names or ["input"])[:1]
    tracer.graph.meta["io"] = io.describe(names, labels, tree)
    return tracer.graph
