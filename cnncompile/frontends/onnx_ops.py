"""ONNX nodes -> cnncompile.nn calls: one converter per ONNX op, and constant folding.

A converter receives the node's inputs (traced Tensors, numpy arrays for constants, None for
omitted optional inputs) and its attributes, checks the attributes an untrusted file could get
wrong, and returns the node's outputs. Semantics follow the ONNX operator specification
(https://onnx.ai/onnx/operators/); where ONNX pads asymmetrically and the cnncompile layer pads
symmetrically, an explicit pad layer goes first.
"""
import inspect
import math

import numpy as np

from ..nn import functional as F
from ..trace import Tensor
from .onnx_layers import torch_pads  # importing it registers the layers' converters
from . import onnx_norm  # noqa: F401  (registers LayerNormalization, GroupNormalization...)
from . import onnx_movement  # noqa: F401  (registers Transpose, Slice, Split, ...)
from . import onnx_reduce  # noqa: F401  (registers the reductions' and math ops' converters)
from . import onnx_pool  # noqa: F401  (registers the pooling converters)
from .onnx_node import ARITH, CONVERTERS, Node, converter, with_constant
from . import onnx_resize  # noqa: F401,E402  (registers Resize and Upsample)

# ops evaluated by onnx's reference implementation when every input is a constant
FOLDABLE = {"Constant", "Identity", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat",
            "Reshape", "Flatten", "Transpose", "Add", "Sub", "Mul", "Div", "Neg", "Sqrt",
            "Slice", "ConstantOfShape", "CastLike", "Relu", "Sigmoid", "Tanh", "Clip", "Dropout"}
MAX_FOLDED = 1 << 24  # elements of one folded constant


def unsupported(nodes, opset_import):
    """[(node, reason)] for every node no converter or folder handles, all at once."""
    domains = {e.domain for e in opset_import if e.domain not in ("", "ai.onnx")}
    problems = []
    for i, node in enumerate(nodes):
        where = node.name or f"{node.op_type}_{i}"
        if node.domain not in ("", "ai.onnx"):
            problems.append((where, f"{node.domain}.{node.op_type} (custom domain"
                             f"{'s ' + ', '.join(sorted(domains)) if domains else ''})"))
        elif node.op_type not in CONVERTERS and node.op_type not in FOLDABLE:
            problems.append((where, node.op_type))
    return problems


def run(proto, name, ins, opset):
    node = Node(proto, name, opset)
    if all(not isinstance(v, Tensor) for v in ins) and node.op in FOLDABLE:
        return fold(node, ins)
    if node.op == "Shape":
        return [_shape(node, ins[0])]
    if node.op not in CONVERTERS:
        raise node.unsupported("only constant inputs can be folded; this node computes on the "
                               "model input")
    fn = CONVERTERS[node.op]
    try:
        inspect.signature(fn).bind(node, *ins)
    except TypeError:
        raise node.bad(f"{len(ins)} inputs is not a valid number of inputs") from None
    out = fn(node, *ins)
    return out if isinstance(out, list) else [out]


def fold(node, ins):
    from onnx.reference import ReferenceEvaluator
    if node.op == "ConstantOfShape" and ins and math.prod(int(d) for d in ins[0]) > MAX_FOLDED:
        raise node.bad(f"ConstantOfShape of {ins[0].tolist()} is absurdly large")
    feeds = {n: v for n, v in zip(node.proto.input, ins) if n}
    try:
        outs = ReferenceEvaluator(node.proto, opsets={"": node.opset}).run(None, feeds)
    except Exception as exc:
        raise node.bad(f"cannot evaluate this constant node: {type(exc).__name__}: {exc}") from None
    for out in outs:
        if np.size(out) > MAX_FOLDED:
            raise node.bad(f"folds to a constant of {np.size(out)} elements")
    return [np.asarray(o) for o in outs]


def _shape(node, x):
    shape = np.asarray(x.shape, np.int64)
    start, end = node.integer("start", 0), node.integer("end", len(shape))
    return shape[start:end]


# -- activations ----------------------------------------------------------------------------
@converter("Relu", "Sigmoid", "Tanh", "HardSwish")
def activation(node, x):
    fn = {"Relu": F.relu, "Sigmoid": F.sigmoid, "Tanh": F.tanh, "HardSwish": F.hardswish}
    return fn[node.op](node.tensor(x))


@converter("LeakyRelu")
def leaky_relu(node, x):
    return F.leaky_relu(node.tensor(x), node.number("alpha", 0.01))


@converter("Elu")
def elu(node, x):
    return F.elu(node.tensor(x), node.number("alpha", 1.0))


@converter("HardSigmoid")
def hard_sigmoid(node, x):
    x = node.tensor(x)
    alpha, beta = node.number("alpha", 0.2), node.number("beta", 0.5)
    if np.float32(alpha) == np.float32(1 / 6) and beta == 0.5:
        return F.hardsigmoid(x)
    return F.hardtanh(x * alpha + beta, 0.0, 1.0)  # max(0, min(1, alpha * x + beta))


@converter("Clip")
def clip(node, x, lo=None, hi=None):
    x = node.tensor(x)
    lo = -math.inf if lo is None else float(node.floats(lo, "min").reshape(()))
    hi = math.inf if hi is None else float(node.floats(hi, "max").reshape(()))
    if lo == -math.inf and hi == math.inf:
        return F.identity(x)
    return F.hardtanh(x, min(lo, hi), hi)  # min(max(x, lo), hi): all hi when lo > hi


@converter("PRelu")
def prelu(node, x, slope):
    x = node.tensor(x)
    slope = node.floats(slope, "slope")
    if slope.size == 1:
        return F.leaky_relu(x, float(slope.reshape(())))
    # max(0, x) + slope * min(0, x), with min(0, x) = -max(0, -x)
    return F.relu(x) - with_constant(node, "mul", F.relu(-x), slope)


@converter("Softmax", "LogSoftmax")
def softmax(node, x):
    x = node.tensor(x)
    fn = F.softmax if node.op == "Softmax" else F.log_softmax
    rank = x.dim()
    axis = node.integer("axis", -1 if node.opset >= 13 else 1)
    if not -rank <= axis < rank:
        raise node.bad(f"axis {axis} is out of range for a rank-{rank} input")
    axis %= rank
    if node.opset >= 13 or axis == rank - 1:
        return fn(x, dim=axis)
    # before opset 13: the input is seen as 2-D, [d0 * .. * d(axis-1), d(axis) * .. * d(n-1)]
    if axis == 0:
        raise node.unsupported("softmax over the whole batch (axis 0, opset < 13)")
    y = fn(x.reshape(*x.shape[:axis], math.prod(x.shape[axis:])), dim=axis)
    return y.reshape(*x.shape)


# -- linear algebra -------------------------------------------------------------------------
@converter("Gemm")
def gemm(node, a, b, c=None):
    a = node.tensor(a, "A")
    b = node.floats(b, "B", np.float64)
    if node.integer("transA", 0):
        raise node.unsupported("transA=1 would move the batch out of dimension 0")
    if a.dim() != 2 or b.ndim != 2:
        raise node.bad(f"A and B must be 2-D, got ranks {a.dim()} and {b.ndim}")
    weight = b if node.integer("transB", 0) else b.T
    if weight.shape[1] != a.shape[1]:
        raise node.bad(f"A has {a.shape[1]} columns but B {list(b.shape)} (transB="
                       f"{node.integer('transB', 0)}) expects {weight.shape[1]}")
    weight = weight * node.number("alpha", 1.0)
    bias = None
    if c is not None:
        c = node.floats(c, "C", np.float64) * node.number("beta", 1.0)
        if c.ndim == 2 and c.shape[0] != 1:
            raise node.unsupported(f"C of shape {list(c.shape)} adds a different row to each "
                                   "sample; give C of shape [N] or [1, N]")
        bias = np.broadcast_to(c.reshape(-1) if c.ndim else c, (weight.shape[0],))
    return F.linear(a, weight.astype(np.float32),
                    None if bias is None else np.ascontiguousarray(bias, np.float32))


@converter("MatMul")
def matmul(node, a, b):
    a = node.tensor(a, "A")
    if isinstance(b, Tensor):
        return F.matmul(a, b)
    b = node.floats(b, "B (the weight)")
    if a.dim() < 2 or b.ndim != 2 or a.shape[-1] != b.shape[0]:
        raise node.unsupported(f"MatMul of a {list(a.shape)} input and a {list(b.shape)} "
                               "weight; cnncompile multiplies (N, ..., K) inputs by (K, M) "
                               "weights")
    return F.linear(a, np.ascontiguousarray(b.T, np.float32))


# -- shapes ---------------------------------------------------------------------------------
@converter("Flatten")
def flatten(node, x):
    x = node.tensor(x)
    axis = node.integer("axis", 1)
    if not -x.dim() <= axis <= x.dim():
        raise node.bad(f"axis {axis} is out of range for a rank-{x.dim()} input")
    if axis < 0:
        axis += x.dim()
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


@converter("Reshape")
def reshape(node, x, shape):
    x = node.tensor(x)
    shape = [int(d) for d in node.const(shape, "shape").reshape(-1)]
    if not node.integer("allowzero", 0):
        shape = [x.shape[i] if d == 0 and i < x.dim() else d for i, d in enumerate(shape)]
    return x.reshape(*shape)


@converter("Identity", "Dropout")
def identity(node, x, *rest):
    if node.op == "Dropout" and len(node.proto.output) > 1 and node.proto.output[1]:
        raise node.unsupported("the mask output is not supported")
    if node.op == "Dropout" and len(rest) > 1 and rest[1] is not None:
        ratio = 0.5 if rest[0] is None else float(
            np.asarray(node.const(rest[0], "ratio")).reshape(()))
        if bool(np.asarray(node.const(rest[1], "training_mode")).reshape(())) and ratio > 0:
            raise node.unsupported("training_mode=True drops values at random; cnncompile "
                                   "compiles inference")
    return F.identity(x, node.op.lower()) if isinstance(x, Tensor) else x


@converter("Concat")
def concat(node, *xs):
    return F.cat([node.tensor(x, "every input") for x in xs], dim=node.integer("axis"))


@converter("Pad")
def pad(node, x, pads=None, value=None, axes=None):
    x = node.tensor(x)
    rank = x.dim()
    pads = [int(p) for p in np.asarray(node.const(pads, "pads")).reshape(-1)]
    dims = list(range(rank))
    if axes is not None:
        dims = [int(a) % rank for a in np.asarray(node.const(axes, "axes")).reshape(-1)]
    if len(pads) != 2 * len(dims):
        raise node.bad(f"pads has {len(pads)} values for {len(dims)} axes")
    begins, ends = [0] * rank, [0] * rank
    for i, d in enumerate(dims):
        begins[d], ends[d] = pads[i], pads[len(dims) + i]
    if begins[0] or ends[0]:
        raise node.unsupported("padding the batch dimension")
    if any(p < 0 for p in begins + ends):
        raise node.unsupported(f"negative pads {pads} (cropping)")
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
            "wrap": "circular"}.get(node.attrs.get("mode", "constant"))
    if mode is None:
        raise node.bad(f"mode {node.attrs.get('mode')!r} is not constant, reflect, edge or wrap")
    fill = 0.0 if value is None or np.size(value) == 0 else float(np.asarray(value).reshape(-1)[0])
    return F.pad(x, torch_pads(begins[1:], ends[1:]), mode=mode, value=fill)


# -- arithmetic -----------------------------------------------------------------------------
@converter("Add", "Sub", "Mul", "Div")
def arithmetic(node, a, b):
    op = node.op.lower()
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a.dim() != b.dim():
            big, small = (a, b) if a.dim() > b.dim() else (b, a)
            small = small.reshape(*((1,) * (big.dim() - small.dim()) + tuple(small.shape)))
            a, b = (big, small) if a.dim() > b.dim() else (small, big)
        return ARITH[op](a, b)
    if isinstance(a, Tensor):
        return with_constant(node, op, a, b)
    return with_constant(node, op, b, a, reverse=True)
