"""ONNX nodes -> cnncompile.nn calls: one converter per ONNX op, and constant folding.

A converter receives the node's inputs (traced Tensors, numpy arrays for constants, None for
omitted optional inputs) and its attributes, checks the attributes an untrusted file could get
wrong, and returns the node's outputs. Semantics follow the ONNX operator specification
(https://onnx.ai/onnx/operators/); where ONNX pads asymmetrically and the cnncompile layer pads
symmetrically, an explicit pad layer goes first.
"""
import inspect
import math
import operator

import numpy as np

from .. import trace
from ..errors import ModelFileError, UnsupportedError
from ..nn import functional as F
from ..trace import Tensor

CONVERTERS = {}
# ops evaluated by onnx's reference implementation when every input is a constant
FOLDABLE = {"Constant", "Identity", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat",
            "Reshape", "Flatten", "Transpose", "Add", "Sub", "Mul", "Div", "Neg", "Sqrt",
            "Slice", "ConstantOfShape", "CastLike", "Relu", "Sigmoid", "Tanh", "Clip", "Dropout"}
MAX_FOLDED = 1 << 24  # elements of one folded constant


def converter(*names):
    def register(fn):
        for name in names:
            CONVERTERS[name] = fn
        return fn
    return register


class Node:
    """What a converter sees of an ONNX node: its name, inputs and attributes."""

    def __init__(self, proto, name, opset):
        from onnx import helper
        self.proto, self.name, self.op, self.opset = proto, name, proto.op_type, opset
        self._check_attributes()
        self.attrs = {a.name: helper.get_attribute_value(a) for a in proto.attribute}
        for key, value in self.attrs.items():
            if isinstance(value, bytes):
                self.attrs[key] = value.decode("utf-8", "replace")

    def _check_attributes(self):
        """Every attribute must be one the op's schema has, of the schema's type, as ONNX
        Runtime requires: an unknown one may change the meaning in a way nothing here reads."""
        from onnx import AttributeProto, defs
        try:
            schema = defs.get_schema(self.op, self.opset, "")
        except Exception:  # noqa: BLE001 - no such op: reported as unsupported, not here
            return
        for attr in self.proto.attribute:
            expected = schema.attributes.get(attr.name)
            if expected is None:
                raise self.bad(f"attribute {attr.name!r} is not an attribute of {self.op} "
                               f"(opset {self.opset})")
            if attr.type != int(expected.type):
                raise self.bad(f"attribute {attr.name} has type "
                               f"{AttributeProto.AttributeType.Name(attr.type)}; {self.op} "
                               f"takes {expected.type.name}")

    def floats(self, value, what, dtype=np.float32):
        """A constant float tensor: weights, biases, statistics, bounds."""
        value = np.asarray(self.const(value, what))
        if not np.issubdtype(value.dtype, np.floating):
            raise self.bad(f"{what} is a tensor of {value.dtype}; {self.op} takes float tensors")
        return value.astype(dtype)

    def bad(self, message):
        return ModelFileError(f"{self.op}: {message}", layer=self.name)

    def unsupported(self, message):
        return UnsupportedError(f"{self.op}: {message}", layer=self.name)

    # The accessors below need no type checks: _check_attributes held every attribute to
    # the type its schema gives.
    def integer(self, key, default=None):
        """An INT attribute, or the default; one without a default is required."""
        value = self.attrs.get(key, default)
        if value is None:
            raise self.bad(f"attribute {key} is missing")
        return value

    def number(self, key, default):
        """A FLOAT attribute; it must be finite, since it becomes a constant in the C."""
        value = float(self.attrs.get(key, default))
        if not math.isfinite(value):
            raise self.bad(f"attribute {key} = {value!r} must be a finite number")
        return value

    def ints(self, key, count, default=None, positive=False, nonnegative=False):
        value = self.attrs.get(key, default)
        if value is None:
            return None
        if len(value) != count:
            raise self.bad(f"attribute {key} has {len(value)} values but the node has "
                           f"{count // (2 if key == 'pads' else 1)} spatial dimensions")
        if positive and any(v <= 0 for v in value):
            raise self.bad(f"attribute {key} = {value} must be positive")
        if nonnegative and any(v < 0 for v in value):
            raise self.bad(f"attribute {key} = {value} must not be negative")
        if any(abs(v) > 1 << 20 for v in value):
            raise self.bad(f"attribute {key} = {value} is absurdly large")
        return value

    def const(self, value, what):
        if value is None:
            raise self.bad(f"{what} is missing")
        if isinstance(value, Tensor):
            raise self.unsupported(f"{what} must be a constant (an initializer); here it is "
                                   "computed from the input")
        return value

    def tensor(self, value, what="the data input"):
        if value is None:
            raise self.bad(f"{what} is missing")
        if not isinstance(value, Tensor):
            raise self.unsupported(f"{what} must depend on the model input")
        return value


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


# -- padding -------------------------------------------------------------------------------
def spatial_pads(node, in_sizes, kernel, strides, dilations):
    """(begins, ends) per spatial dimension, from ``pads`` or ``auto_pad``."""
    rank = len(kernel)
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = node.ints("pads", 2 * rank, [0] * 2 * rank, nonnegative=True)
        return pads[:rank], pads[rank:]
    if auto == "VALID":
        return [0] * rank, [0] * rank
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise node.bad(f"auto_pad {auto!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    begins, ends = [], []
    for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begins.append(small if auto == "SAME_UPPER" else big)
        ends.append(big if auto == "SAME_UPPER" else small)
    return begins, ends


def torch_pads(begins, ends):
    """(begin, end) pairs from the last dimension backwards, as F.pad takes them."""
    out = []
    for b, e in reversed(list(zip(begins, ends))):
        out += [b, e]
    return out


def _window(node, x, weight_kernel=None):
    """kernel, strides, dilations of a conv or pool node, checked against its input."""
    rank = x.dim() - 2
    if rank < 1:
        raise node.unsupported(f"input of rank {x.dim()}; expected (N, C, spatial...)")
    kernel = node.ints("kernel_shape", rank, weight_kernel, positive=True)
    if kernel is None:
        raise node.bad("attribute kernel_shape is missing")
    if weight_kernel is not None and list(kernel) != list(weight_kernel):
        raise node.bad(f"kernel_shape {kernel} disagrees with the weight's spatial shape "
                       f"{list(weight_kernel)}")
    strides = node.ints("strides", rank, [1] * rank, positive=True)
    dilations = node.ints("dilations", rank, [1] * rank, positive=True)
    return kernel, strides, dilations


# -- layers ---------------------------------------------------------------------------------
@converter("Conv")
def conv(node, x, w, b=None):
    x = node.tensor(x)
    w = node.floats(w, "the weight W")
    if w.ndim < 3 or w.ndim > 5:
        raise node.unsupported(f"weight of rank {w.ndim}; cnncompile has 1-D, 2-D and 3-D "
                               "convolutions")
    if x.dim() != w.ndim:
        raise node.bad(f"input of rank {x.dim()} and weight of rank {w.ndim} disagree")
    kernel, strides, dilations = _window(node, x, list(w.shape[2:]))
    group = node.integer("group", 1)
    channels = x.shape[1]
    if group <= 0 or channels % group or w.shape[0] % group:
        raise node.bad(f"group {group} must be positive and divide the {channels} input and "
                       f"{w.shape[0]} output channels")
    if channels != w.shape[1] * group:
        raise node.bad(f"the input has {channels} channels but the weight {list(w.shape)} with "
                       f"group {group} expects {w.shape[1] * group}")
    if b is not None:
        b = node.floats(b, "the bias B")
        if b.shape != (w.shape[0],):
            raise node.bad(f"bias of shape {list(b.shape)}; expected [{w.shape[0]}]")
    begins, ends = spatial_pads(node, x.shape[2:], kernel, strides, dilations)
    if begins != ends:
        x, begins = F.pad(x, torch_pads(begins, ends)), [0] * len(begins)
    fn = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[w.ndim]
    return fn(x, w, b, stride=strides, padding=begins, dilation=dilations, groups=group)


@converter("ConvTranspose")
def conv_transpose(node, x, w, b=None):
    x = node.tensor(x)
    w = node.floats(w, "the weight W")
    if w.ndim not in (3, 4) or x.dim() != w.ndim:
        raise node.unsupported("only 1-D and 2-D transposed convolutions are supported")
    rank = w.ndim - 2
    kernel, strides, dilations = _window(node, x, list(w.shape[2:]))
    group = node.integer("group", 1)
    if group <= 0 or x.shape[1] % group or x.shape[1] != w.shape[0]:
        raise node.bad(f"group {group} and weight {list(w.shape)} do not fit {x.shape[1]} input "
                       "channels")
    out_pad = node.ints("output_padding", rank, [0] * rank, nonnegative=True)
    output_shape = node.ints("output_shape", rank, None, positive=True)
    auto = node.attrs.get("auto_pad", "NOTSET")
    if output_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        # ONNX: total_padding = stride * (in - 1) + output_padding + ((k - 1) * d + 1) - out,
        # split evenly, the odd one at the end (SAME_UPPER, and output_shape) or the start
        begins, ends = [], []
        for i in range(rank):
            full = (strides[i] * (x.shape[2 + i] - 1) + out_pad[i]
                    + (kernel[i] - 1) * dilations[i] + 1)
            target = output_shape[i] if output_shape is not None else x.shape[2 + i] * strides[i]
            total = full - target
            if total < 0:  # the output grows at the end: torch's output_padding
                out_pad[i], total = out_pad[i] - total, 0
            small, big = total // 2, total - total // 2
            begins.append(big if auto == "SAME_LOWER" else small)
            ends.append(small if auto == "SAME_LOWER" else big)
    else:
        begins, ends = spatial_pads(node, x.shape[2:], kernel, strides, dilations)
    if begins != ends:
        raise node.unsupported(f"asymmetric pads {begins + ends}; cnncompile's transposed "
                               "convolution crops the same amount on both sides")
    if b is not None:
        b = node.floats(b, "the bias B")
    if rank == 1:  # (N, C, L) as (N, C, 1, L)
        y = F.conv_transpose2d(x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]),
                               w[:, :, None, :], b, stride=[1] + strides, padding=[0] + begins,
                               output_padding=[0] + out_pad, groups=group,
                               dilation=[1] + dilations)
        return y.reshape(y.shape[0], y.shape[1], y.shape[3])
    return F.conv_transpose2d(x, w, b, stride=strides, padding=begins, output_padding=out_pad,
                              groups=group, dilation=dilations)


def _as_2d(node, x):
    """A 1-D pooling input (N, C, L) as (N, C, 1, L); 2-D as is."""
    if x.dim() == 3:
        return x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]), True
    if x.dim() != 4:
        raise node.unsupported(f"{x.dim() - 2}-D pooling; cnncompile pools over 1-D and 2-D maps")
    return x, False


@converter("MaxPool", "AveragePool")
def pool(node, x):
    x = node.tensor(x)
    if node.op == "MaxPool" and len(node.proto.output) > 1 and node.proto.output[1]:
        raise node.unsupported("the Indices output is not supported")
    kernel, strides, dilations = _window(node, x)
    begins, ends = spatial_pads(node, x.shape[2:], kernel, strides, dilations)
    ceil_mode = bool(node.integer("ceil_mode", 0))
    x2, lifted = _as_2d(node, x)
    if lifted:
        kernel, strides, dilations = [1] + kernel, [1] + strides, [1] + dilations
        begins, ends = [0] + begins, [0] + ends
    # torch-style pooling pads both sides alike, by at most half the kernel; otherwise pad first
    pad_first = begins != ends or any(p > k // 2 for p, k in zip(begins, kernel))
    if node.op == "MaxPool":
        if pad_first:
            if ceil_mode:
                raise node.unsupported(f"pads {begins + ends} with ceil_mode")
            x2, begins = F.pad(x2, torch_pads(begins, ends), value=-math.inf), [0, 0]
        y = F.max_pool2d(x2, kernel, strides, begins, dilations, ceil_mode=ceil_mode)
    else:
        if dilations != [1, 1]:
            raise node.unsupported(f"dilations {dilations[-len(x.shape) + 2:]} in average pooling")
        include = bool(node.integer("count_include_pad", 0))
        if pad_first:
            if ceil_mode:
                raise node.unsupported(f"pads {begins + ends} that are asymmetric or more than "
                                       "half the kernel, with ceil_mode")
            in_sizes = x2.shape[2:]
            y = F.avg_pool2d(F.pad(x2, torch_pads(begins, ends)), kernel, strides, 0,
                             count_include_pad=True)
            if not include:  # rescale each window from k*k to the inputs it covers
                cover = _cover(node, in_sizes, kernel, strides, begins, ends)
                y = _with_constant(node, "mul", y, cover)
        else:
            y = F.avg_pool2d(x2, kernel, strides, begins, ceil_mode=ceil_mode,
                             count_include_pad=include)
    return y.reshape(y.shape[0], y.shape[1], y.shape[3]) if lifted else y


def _cover(node, in_sizes, kernel, strides, begins, ends):
    """(1, OH, OW): kernel area / number of real inputs, for each window of a padded pool."""
    counts = []
    for size, k, s, b, e in zip(in_sizes, kernel, strides, begins, ends):
        starts = np.arange((size + b + e - k) // s + 1) * s - b
        counts.append(np.minimum(starts + k, size) - np.maximum(starts, 0))
    cover = counts[0][:, None] * counts[1][None, :]
    if (cover <= 0).any():
        raise node.unsupported("a window lies wholly in the padding")
    return (kernel[0] * kernel[1] / cover)[None].astype(np.float32)


@converter("GlobalAveragePool", "GlobalMaxPool")
def global_pool(node, x):
    x = node.tensor(x)
    if x.dim() < 3:
        raise node.bad(f"input of rank {x.dim()}; expected (N, C, spatial...)")
    n, c = x.shape[0], x.shape[1]
    flat = x if x.dim() == 4 else x.reshape(n, c, 1, math.prod(x.shape[2:]))
    fn = F.adaptive_avg_pool2d if node.op == "GlobalAveragePool" else F.adaptive_max_pool2d
    y = fn(flat, 1)
    return y if x.dim() == 4 else y.reshape((n, c) + (1,) * (x.dim() - 2))


@converter("BatchNormalization")
def batch_norm(node, x, scale, bias, mean, var):
    x = node.tensor(x)
    if node.integer("training_mode", 0) or any(node.proto.output[1:]):
        raise node.unsupported("training mode (batch statistics, running-statistic outputs); "
                               "export the model in eval mode")
    params = [node.floats(v, what) for v, what in
              ((scale, "scale"), (bias, "B"), (mean, "mean"), (var, "var"))]
    c = x.shape[1] if x.dim() > 1 else 0
    if any(p.shape != (c,) for p in params):
        raise node.bad(f"scale, B, mean and var must each have {c} values (the channels), got "
                       f"{[list(p.shape) for p in params]}")
    flat = x if x.dim() == 4 else x.reshape(x.shape[0], c, 1, -1)
    y = F.batch_norm(flat, params[2], params[3], params[0], params[1],
                     eps=node.number("epsilon", 1e-5))
    return y if x.dim() == 4 else y.reshape(*x.shape)


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
    return F.relu(x) - _with_constant(node, "mul", F.relu(-x), slope)


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
    b = node.floats(b, "B (the weight)")
    if a.dim() != 2 or b.ndim != 2:
        raise node.unsupported(f"MatMul of a rank-{a.dim()} input and a rank-{b.ndim} weight; "
                               "cnncompile multiplies (N, K) inputs by (K, M) weights")
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
ARITH = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}


def _with_constant(node, op, x, c, reverse=False):
    """``x op c`` (``c op x`` if reverse) for a constant array ``c``, by numpy broadcasting."""
    c = node.floats(c, "the constant operand")
    if c.size == 1 and c.ndim <= x.dim():
        value = float(c.reshape(()))
        return ARITH[op](value, x) if reverse else ARITH[op](x, value)
    if c.ndim > x.dim():
        raise node.unsupported(f"a constant of rank {c.ndim} broadcast against a rank-{x.dim()} "
                               "input would add dimensions in front of the batch")
    c = c.reshape((1,) * (x.dim() - c.ndim) + c.shape)
    if c.shape[0] != 1:
        raise node.unsupported(f"a constant of shape {list(c.shape)} differs along the batch "
                               "dimension")
    attrs = {"reverse": True} if reverse else {}
    return trace.apply(op, [x], attrs, {"other": np.ascontiguousarray(c[0])})


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
        return _with_constant(node, op, a, b)
    return _with_constant(node, op, b, a, reverse=True)
