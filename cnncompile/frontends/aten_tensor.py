"""ATen ops on values, as torch.export records them: activations, arithmetic, reductions and
data movement (see aten.py for the layers and the conventions)."""
import math
import numbers

import numpy as np

from .. import trace
from ..nn import functional as F
from ..trace import Tensor
from .aten import aten, constant

# -- activations -----------------------------------------------------------------------------
for _name in ("relu", "relu6", "sigmoid", "tanh", "hardswish", "hardsigmoid", "silu", "mish"):
    aten(_name)(lambda self, _fn=_name: getattr(F, _fn)(self))


@aten("hardtanh")
def hardtanh(self, min_val=-1.0, max_val=1.0):
    if (min_val, max_val) == (0, 6):  # nn.ReLU6 records hardtanh
        return F.relu6(self)
    return F.hardtanh(self, min_val, max_val)


@aten("leaky_relu")
def leaky_relu(self, negative_slope=0.01):
    return F.leaky_relu(self, negative_slope)


@aten("elu")
def elu(self, alpha=1.0, scale=1.0, input_scale=1.0):
    if scale != 1 or input_scale != 1:
        return trace.record_unsupported("aten.elu with scale (selu/celu)", [self])
    return F.elu(self, alpha)


@aten("gelu")
def gelu(self, approximate="none"):
    return F.gelu(self, approximate=approximate)


@aten("softplus")
def softplus(self, beta=1, threshold=20):
    return F.softplus(self, beta, threshold)


@aten("prelu", "_prelu_kernel")
def prelu(self, weight):
    w = constant(weight, "prelu weight")
    if w.size == 1:
        return F.leaky_relu(self, float(w.reshape(())))
    # max(0, x) + w * min(0, x), with min(0, x) = -relu(-x); w per channel (dim 1)
    shape = (w.size,) + (1,) * (self.dim() - 2)
    return F.relu(self) - _with_constant("mul", F.relu(-self), w.reshape(shape))


@aten("clamp")
def clamp(self, min=None, max=None):
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return trace.record_unsupported("aten.clamp with tensor bounds", [self])
    return self.clamp(min=_number(min), max=_number(max))


@aten("clamp_min")
def clamp_min(self, min):
    return clamp(self, min=min)


@aten("clamp_max")
def clamp_max(self, max):
    return clamp(self, max=max)


def _number(value):
    if value is None or isinstance(value, numbers.Number):
        return value
    return float(np.asarray(value).reshape(()))


for _name in ("abs", "exp", "log", "erf", "sqrt", "rsqrt", "reciprocal", "square"):
    aten(_name)(lambda self, _fn=_name: getattr(self, _fn)())


@aten("pow.Tensor_Scalar")
def pow_scalar(self, exponent):
    return self.pow(exponent)


@aten("neg")
def neg(self):
    return -self


# -- arithmetic ------------------------------------------------------------------------------
def _with_constant(op, x, c, reverse=False):
    """``x op c`` (``c op x`` if reverse) for a constant array ``c``, by torch broadcasting."""
    c = np.asarray(c, np.float32)
    if c.ndim > x.dim() or (c.ndim == x.dim() and c.shape[0] != 1 and c.size > 1):
        return trace.record_unsupported(f"aten.{op} with a constant of shape {list(c.shape)}",
                                        [x], hint="it would mix samples of the batch")
    return x._arith(op, c, reverse)


_ARITH = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b}


def _binary(op, self, other):
    if isinstance(self, Tensor) and isinstance(other, Tensor):
        return _ARITH[op](self, other)
    if isinstance(self, Tensor):
        if isinstance(other, numbers.Number):
            return _ARITH[op](self, float(other))
        return _with_constant(op, self, other)
    if isinstance(self, numbers.Number):
        return _ARITH[op](float(self), other)
    return _with_constant(op, other, self, reverse=True)


@aten("add")
def add(self, other, alpha=1):
    return _binary("add", self, other if alpha == 1 else _binary("mul", other, alpha))


@aten("sub")
def sub(self, other, alpha=1):
    return _binary("sub", self, other if alpha == 1 else _binary("mul", other, alpha))


@aten("rsub")
def rsub(self, other, alpha=1):
    return sub(other, self, alpha)


@aten("mul")
def mul(self, other):
    return _binary("mul", self, other)


@aten("div")
def div(self, other, rounding_mode=None):
    if rounding_mode is not None:
        return trace.record_unsupported(f"aten.div with rounding_mode={rounding_mode!r}",
                                        [t for t in (self, other) if isinstance(t, Tensor)])
    return _binary("div", self, other)


# -- reductions ------------------------------------------------------------------------------
def _dims(dim):
    return None if dim is None else (dim if isinstance(dim, int) else tuple(dim))


@aten("mean")
def mean(self, dim=None, keepdim=False, dtype=None):
    return F.mean(self, _dims(dim), keepdim)


@aten("sum")
def sum_(self, dim=None, keepdim=False, dtype=None):
    return F.sum(self, _dims(dim), keepdim)


@aten("amax")
def amax(self, dim=(), keepdim=False):
    return F.amax(self, _dims(dim), keepdim)


@aten("amin")
def amin(self, dim=(), keepdim=False):
    return F.amin(self, _dims(dim), keepdim)


@aten("max.dim")
def max_dim(self, dim, keepdim=False):
    return amax(self, dim, keepdim), None


@aten("min.dim")
def min_dim(self, dim, keepdim=False):
    return amin(self, dim, keepdim), None


# -- data movement ---------------------------------------------------------------------------
@aten("view", "_unsafe_view", "_reshape_alias")
def view(self, size, *rest):
    return self.view(*size)


@aten("reshape")
def reshape(self, shape):
    return self.reshape(*shape)


@aten("flatten")
def flatten(self, start_dim=0, end_dim=-1):
    return self.flatten(start_dim, end_dim)


@aten("unflatten")
def unflatten(self, dim, sizes):
    shape = list(self.shape)
    dim %= len(shape)
    return self.reshape(*(shape[:dim] + list(sizes) + shape[dim + 1:]))


@aten("squeeze")
def squeeze(self, dim=None):
    shape = list(self.shape)
    dims = range(len(shape)) if dim is None else [dim] if isinstance(dim, int) else dim
    dims = {d % len(shape) for d in dims if shape[d] == 1}
    return self.reshape(*[s for i, s in enumerate(shape) if i not in dims])


@aten("unsqueeze")
def unsqueeze(self, dim):
    shape = list(self.shape)
    dim = dim % (len(shape) + 1)
    return self.reshape(*(shape[:dim] + [1] + shape[dim:]))


@aten("permute")
def permute(self, dims):
    return F.permute(self, list(dims))


@aten("transpose")
def transpose(self, dim0, dim1):
    return F.transpose(self, dim0, dim1)


@aten("t", "numpy_T")
def t(self):
    return self if self.dim() < 2 else F.transpose(self, 0, 1)


@aten("contiguous", "clone", "alias", "detach", "lift_fresh_copy", "_to_copy", "to",
      "type_as", "copy")
def same(self, *args, **kwargs):
    return self


@aten("expand")
def expand(self, size, implicit=False):
    """Broadcast lazily: the elementwise op that consumes it broadcasts the same way."""
    return self


@aten("cat", "concat")
def cat(tensors, dim=0):
    tensors = [t for t in tensors if not (isinstance(t, np.ndarray) and t.size == 0)]
    return F.cat(tensors, dim)


@aten("stack")
def stack(tensors, dim=0):
    return cat([unsqueeze(t, dim) for t in tensors], dim)


@aten("split.Tensor", "split")
def split(self, split_size, dim=0):
    return list(F.split(self, split_size, dim))


@aten("split_with_sizes", "split.sizes")
def split_with_sizes(self, split_sizes, dim=0):
    return list(F.split(self, list(split_sizes), dim))


@aten("chunk")
def chunk(self, chunks, dim=0):
    return list(F.chunk(self, chunks, dim))


@aten("unbind")
def unbind(self, dim=0):
    return list(F.unbind(self, dim))


@aten("slice.Tensor")
def slice_(self, dim=0, start=None, end=None, step=1):
    size = self.shape[dim]
    start = 0 if start is None else start
    end = size if end is None else end
    if (dim % self.dim()) and start in (0, None) and end >= size and step == 1:
        return self
    return F.slice(self, dim, start, min(end, size) if end >= 0 else end, step)


@aten("select.int")
def select(self, dim, index):
    return F.select(self, dim, index)


@aten("narrow")
def narrow(self, dim, start, length):
    return F.narrow(self, dim, start, length)


def _size(self, dim=None):
    return self.size() if dim is None else self.size(dim)


aten("sym_size.int", "size.int")(_size)
aten("sym_numel")(lambda self: math.prod(self.shape))
