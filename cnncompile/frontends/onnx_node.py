"""What a converter sees of an ONNX node (Node), and the table of converters: one per ONNX
op, registered with @converter (onnx_layers.py, onnx_ops.py)."""
import math
import operator

import numpy as np

from .. import trace
from ..errors import ModelFileError, UnsupportedError
from ..trace import Tensor

CONVERTERS = {}


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


ARITH = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}


def with_constant(node, op, x, c, reverse=False):
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
