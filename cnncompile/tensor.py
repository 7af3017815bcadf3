"""The value forward() sees while tracing: a Tensor that records each call on it as a node
of the tracer's graph, and answers shape queries from the shapes inferred so far."""
import math
import numbers

from .errors import TraceError
from .support import TENSOR_METHODS

_functional = {}  # the functions behind Tensor methods that are layers (x.relu() is F.relu(x))


def register_tensor_methods(**functions):
    """Let ``x.<name>(...)`` on a traced tensor run ``functions[name](x, ...)``."""
    _functional.update(functions)


class BatchSize(int):
    """``x.size(0)`` while tracing: an int that remembers it is the (free) batch size."""


class Size(tuple):
    def numel(self):
        return math.prod(self)


class Tensor:
    """A value inside forward() while tracing. Supports what CNN forward() code does with one."""

    def __init__(self, tracer, name):
        self._tracer = tracer
        self.name = name

    @property
    def node(self):
        return self._tracer.graph.node(self.name)

    # -- shape queries ---------------------------------------------------------------------
    @property
    def shape(self):
        shape = self._known_shape()
        return Size((BatchSize(shape[0]),) + tuple(shape[1:]))

    def _known_shape(self):
        shape = self.node.meta["shape"]
        if shape is None:  # comes out of an unsupported layer
            raise self._tracer.unsupported_error()
        return shape

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return len(self._known_shape())

    ndim = property(dim)

    def numel(self):
        return math.prod(self._known_shape())

    def __len__(self):
        return self.shape[0]

    # -- reshaping -------------------------------------------------------------------------
    def view(self, *shape):
        return self._reshape("view", shape)

    def reshape(self, *shape):
        return self._reshape("reshape", shape)

    def flatten(self, start_dim=0, end_dim=-1):
        shape = self._known_shape()
        s, e = start_dim % len(shape), end_dim % len(shape)
        if s > e:
            raise self._tracer.error("flatten", f"flatten(start_dim={start_dim}, "
                                     f"end_dim={end_dim}): start_dim comes after end_dim")
        if s == 0:
            raise self._tracer.error("flatten", "flatten(start_dim=0) merges the batch "
                                     "dimension into the features; cnncompile keeps the "
                                     "batch free, so flatten from dimension 1: x.flatten(1) "
                                     "or nn.Flatten()")
        new = list(self.shape[:s]) + [math.prod(shape[s:e + 1])] + list(shape[e + 1:])
        return self._reshape("flatten", new, call=f"flatten({start_dim}, {end_dim})")

    def _reshape(self, kind, shape, call=None):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        call = call or f"{kind}({', '.join('x.size(0)' if isinstance(d, BatchSize) else str(d) for d in shape)})"
        return self._tracer.record_reshape(self, kind, tuple(shape), call)

    def contiguous(self, *args, **kwargs):
        return self

    def float(self):
        return self

    def to(self, *args, **kwargs):
        return self

    def detach(self):
        return self

    cpu = detach

    def relu(self):
        return _functional["relu"](self)

    def sigmoid(self):
        return _functional["sigmoid"](self)

    def tanh(self):
        return _functional["tanh"](self)

    def softmax(self, dim):
        return _functional["softmax"](self, dim)

    # -- arithmetic ------------------------------------------------------------------------
    def _arith(self, op, other, reverse=False):
        if isinstance(other, Tensor):
            return self._tracer.record(op, [other, self] if reverse else [self, other], {}, None)
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            attrs = {"scalar": float(other)}
            if reverse and op in ("sub", "div"):
                attrs["reverse"] = True
            return self._tracer.record(op, [self], attrs, None)
        if hasattr(other, "__array__") and hasattr(other, "shape"):
            return self._arith_constant(op, other, reverse)
        raise TraceError(f"{op} of a tensor and a {type(other).__name__} is not supported; "
                         "the other operand must be a tensor from forward(), a number or a "
                         "weight array", layer=self.name)

    __array_ufunc__ = None  # weight * x: numpy hands the product to __rmul__ below

    def _arith_constant(self, op, other, reverse):
        """``self op c`` for a constant array ``c`` (a Parameter, a buffer), broadcast as
        torch does over the per-sample dimensions."""
        import numpy as np
        c = np.asarray(other.detach().cpu().numpy() if hasattr(other, "detach") else other,
                       np.float32)
        if c.size == 1 and c.ndim <= self.dim():
            return self._arith(op, float(c.reshape(())), reverse)
        c = c.reshape((1,) * (self.dim() - c.ndim) + c.shape)
        if c.ndim > self.dim() or c.shape[0] != 1:
            raise TraceError(f"{op} of a {self.dim()}-D tensor and a constant of shape "
                             f"{list(np.shape(other))} would mix samples of the batch; the "
                             "constant must broadcast over the per-sample dimensions",
                             layer=self.name)
        attrs = {"reverse": True} if reverse else {}
        return self._tracer.record(op, [self], attrs, {"other": np.ascontiguousarray(c[0])})

    def __add__(self, other):
        return self._arith("add", other)

    def __radd__(self, other):
        return self._arith("add", other, reverse=True)

    def __sub__(self, other):
        return self._arith("sub", other)

    def __rsub__(self, other):
        return self._arith("sub", other, reverse=True)

    def __mul__(self, other):
        return self._arith("mul", other)

    def __rmul__(self, other):
        return self._arith("mul", other, reverse=True)

    def __truediv__(self, other):
        return self._arith("div", other)

    def __rtruediv__(self, other):
        return self._arith("div", other, reverse=True)

    def __neg__(self):
        return self._arith("mul", -1.0)

    def add(self, other):
        return self + other

    def mul(self, other):
        return self * other

    # -- what cannot be traced -------------------------------------------------------------
    def _untraceable(self, what):
        raise TraceError(f"forward() uses {what} of a tensor, which depends on its values; "
                         f"cnncompile compiles a fixed sequence of layers, so forward() may "
                         f"only branch on shapes (x.shape, x.size())", layer=self.name)

    def __bool__(self):
        self._untraceable("the truth value")

    def __iter__(self):
        # unpacking what an unsupported layer returned (x, idx = pool(x)): report that layer
        self._known_shape()
        self._untraceable("iteration over the rows")

    def __array__(self, *args, **kwargs):
        self._untraceable("a numpy conversion")

    def __float__(self):
        self._untraceable("the float value")

    def item(self):
        self._untraceable("item()")

    def numpy(self):
        self._untraceable("numpy()")

    def __getitem__(self, key):
        if "__getitem__" in _functional:
            return _functional["__getitem__"](self, key)
        raise TraceError("indexing or slicing a tensor inside forward() is not supported; "
                         "use layers and view/reshape/flatten", layer=self.name)

    def __pow__(self, exponent):
        return self._method("__pow__", exponent)

    def __matmul__(self, other):
        return self._method("matmul", other)

    def __abs__(self):
        return self._method("__abs__")

    def _method(self, name, *args):
        if name not in _functional:
            raise TraceError(f"{name} of a traced tensor is not supported", layer=self.name)
        return _functional[name](self, *args)

    def __getattr__(self, name):
        # methods that cnncompile.nn registers (register_tensor_methods) come before the
        # unsupported placeholders: cnncompile.nn defines them, the tracer only dispatches
        if name in _functional:
            return lambda *args, **kwargs: _functional[name](self, *args, **kwargs)
        if name in TENSOR_METHODS:
            return lambda *args, **kwargs: self._tracer.record(
                "unsupported", [self] + [a for a in args if isinstance(a, Tensor)],
                {"what": f"x.{name}()", "hint": None}, None, name)
        raise AttributeError(f"'Tensor' object has no attribute '{name}'")

    def __repr__(self):
        return f"Tensor({self.name}, shape={self.node.meta['shape']})"
