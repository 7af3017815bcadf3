"""ONNX frontend: an .onnx file -> an equivalent cnncompile.nn module.

An ONNX file is untrusted input. Before anything is built from it, the importer checks every
tensor it holds (its size against its shape, its dimensions against sane limits, external
data against the model's folder) and every attribute the converters read (lengths against the
spatial rank, strides and dilations positive, kernels against weights, groups against
channels). A file that fails raises ModelFileError naming the node or tensor; nothing is
written or compiled.

The module's forward() walks the graph's nodes in order. A node whose inputs are all constants
(initializers, Constant nodes, shapes of traced values) is folded with onnx's reference
evaluator; any other node is converted by ``onnx_ops`` into cnncompile.nn calls, under the
node's name, so compiled layers keep their ONNX names (mangled, like every name, before they
reach C).
"""
import math
import os
from pathlib import Path

import numpy as np

from .. import nn
from ..errors import ModelFileError, UnsupportedError
from ..support import SUPPORTED_HINT
from ..trace import Scope, Tensor, _current
from . import onnx_ops

MIN_OPSET = 11
MAX_DIM = 1 << 31           # a tensor dimension beyond this is not a CNN's
MAX_ELEMENTS = 1 << 31      # 8 GiB of float32 in one tensor
# ONNX TensorProto.DataType -> (numpy dtype, the repeated field holding non-raw data)
DTYPES = {1: (np.float32, "float_data"), 2: (np.uint8, "int32_data"), 3: (np.int8, "int32_data"),
          4: (np.uint16, "int32_data"), 5: (np.int16, "int32_data"), 6: (np.int32, "int32_data"),
          7: (np.int64, "int64_data"), 9: (np.bool_, "int32_data"),
          10: (np.float16, "int32_data"), 11: (np.float64, "double_data"),
          12: (np.uint32, "uint64_data"), 13: (np.uint64, "uint64_data")}


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("compiling an ONNX model needs the onnx package: "
                          "pip install onnx (or pip install 'cnncompile[onnx]')") from None
    return onnx


def _bad(message, where=None):
    return ModelFileError(message, layer=where)


# -- tensors -------------------------------------------------------------------------------
def check_dims(dims, what):
    dims = [int(d) for d in dims]
    if any(d < 0 for d in dims):
        raise _bad(f"{what} has a negative dimension: {dims}")
    if any(d > MAX_DIM for d in dims) or math.prod(dims) > MAX_ELEMENTS:
        raise _bad(f"{what} has dimensions {dims}, {math.prod(dims)} elements: more than "
                   f"cnncompile accepts in one tensor ({MAX_ELEMENTS})")
    return dims


def _read_external(tensor, base_dir, what):
    """The bytes of an external-data tensor, only from a regular file inside ``base_dir``."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    if base_dir is None:
        raise _bad(f"{what} keeps its data in an external file ({location!r}); load the model "
                   "from its path so the file can be found next to it")
    if not location or os.path.isabs(location) or Path(location).drive:
        raise _bad(f"{what}: external data location {location!r} must be a path relative to "
                   "the model's folder")
    root = Path(base_dir).resolve()
    path = (root / location).resolve()
    if root not in path.parents:
        raise _bad(f"{what}: external data location {location!r} points outside the model's "
                   f"folder {root}; refusing to read it")
    if not path.is_file():
        raise _bad(f"{what}: external data file {location!r} does not exist in {root}")
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise _bad(f"{what}: external data offset/length must be integers") from None
    size = path.stat().st_size
    end = size if length is None else offset + length
    if offset < 0 or offset > size or (length is not None and length < 0) or end > size:
        raise _bad(f"{what}: external data range offset={offset} length={length} lies outside "
                   f"{location!r} ({size} bytes)")
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size - offset if length is None else length)


def to_array(tensor, what, base_dir=None):
    """A TensorProto as a numpy array, after checking its size against its shape."""
    dims = check_dims(tensor.dims, what)
    if tensor.data_type not in DTYPES:
        raise UnsupportedError(f"{what} has ONNX data type {tensor.data_type}; cnncompile reads "
                               "float, integer and bool tensors")
    dtype, field = DTYPES[tensor.data_type]
    count = math.prod(dims)
    if tensor.data_location == 1:  # EXTERNAL
        raw = _read_external(tensor, base_dir, what)
    elif tensor.HasField("raw_data"):
        raw = tensor.raw_data
    else:
        raw = None
    if raw is not None:
        expected = count * np.dtype(dtype).itemsize
        if len(raw) != expected:
            raise _bad(f"{what} holds {len(raw)} bytes but its shape {dims} and type "
                       f"{np.dtype(dtype).name} need {expected}")
        little = np.dtype(dtype).newbyteorder("<")  # ONNX raw data is little-endian
        return np.frombuffer(raw, dtype=little).astype(dtype).reshape(dims)
    values = getattr(tensor, field)
    if len(values) != count:
        raise _bad(f"{what} holds {len(values)} values but its shape {dims} needs {count}")
    if tensor.data_type == 10:  # float16 values are stored as their bit patterns
        return np.asarray(values, np.uint16).view(np.float16).reshape(dims)
    return np.asarray(values).astype(dtype).reshape(dims)


# -- the model -----------------------------------------------------------------------------
def load(model):
    """(ModelProto, folder of the file or None); external data is not followed here."""
    onnx = _require_onnx()
    if isinstance(model, onnx.ModelProto):
        return model, None
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise _bad(f"{path} is not a readable ONNX model: {exc}") from None
    return proto, path.parent


def opset_of(proto):
    onnx = _require_onnx()
    versions = {entry.domain or "ai.onnx": entry.version for entry in proto.opset_import}
    version = versions.get("ai.onnx")
    if version is None:
        raise _bad("the model imports no ai.onnx opset")
    if version < MIN_OPSET:
        # Upsample-9 and Resize-10 sample at x_out / scale ("asymmetric"); the converter's
        # Resize-11 keeps its default half_pixel coordinates, which shift linear resizing
        linear = {n.output[0] for n in proto.graph.node if n.op_type in ("Upsample", "Resize")
                  and any(a.name == "mode" and a.s == b"linear" for a in n.attribute)}
        try:
            proto = onnx.version_converter.convert_version(proto, MIN_OPSET)
        except Exception as exc:
            raise UnsupportedError(
                f"the model uses opset {version}; converting it to opset {MIN_OPSET} with "
                f"onnx's version converter failed: {exc}") from None
        for node in proto.graph.node:
            if node.op_type == "Resize" and node.output[0] in linear:
                kept = [a for a in node.attribute if a.name != "coordinate_transformation_mode"]
                del node.attribute[:]
                node.attribute.extend(kept + [onnx.helper.make_attribute(
                    "coordinate_transformation_mode", "asymmetric")])
        version = MIN_OPSET
    return proto, version


def declared_shape(value_info):
    """The declared dims of a graph input: ints, or None where symbolic/unknown."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]


class OnnxModule(nn.Module):
    """An ONNX graph as a cnncompile.nn module; ``input_shape`` is the shape it compiles for
    (a list of shapes, in the file's input order, when the graph has several inputs).

    forward() takes the graph's inputs in the file's order and returns its output, or a tuple
    of its outputs in the file's order (as ONNX Runtime's run() lists them) when it has
    several; input_names and output_names are the graph's names for them."""

    def __init__(self, nodes, constants, input_names, output_names, input_shape, opset):
        super().__init__()
        for key, value in dict(nodes=nodes, constants=constants, input_names=input_names,
                               output_names=output_names, input_shape=input_shape,
                               opset=opset).items():
            object.__setattr__(self, key, value)

    def forward(self, *xs):
        env = dict(self.constants)
        env.update(zip(self.input_names, xs))
        tracer = _current()
        for index, node in enumerate(self.nodes):
            name = node.name or f"{node.op_type}_{index}"
            missing = [i for i in node.input if i and i not in env]
            if missing:
                raise _bad(f"node uses {missing[0]!r} before any node produces it (the graph "
                           "must list its nodes in topological order)", name)
            ins = [env[i] if i else None for i in node.input]
            if tracer is not None:
                tracer.scopes.append(Scope(name, True, f"ONNX node {index} ({node.op_type})"))
            try:
                outs = onnx_ops.run(node, name, ins, self.opset)
            finally:
                if tracer is not None:
                    tracer.scopes.pop()
            for out_name, value in zip(node.output, outs):
                if isinstance(value, Tensor) and value.numel() > MAX_ELEMENTS:
                    raise _bad(f"output {out_name!r} would have shape {tuple(value.shape)}, "
                               f"more than cnncompile accepts in one tensor ({MAX_ELEMENTS} "
                               "elements)", name)
                if out_name:
                    env[out_name] = value
        outs = [env.get(name) for name in self.output_names]
        for name, out in zip(self.output_names, outs):
            if not isinstance(out, Tensor):
                raise UnsupportedError(f"the graph output {name!r} does not depend on the "
                                       "input; there is nothing to compile")
        return outs[0] if len(outs) == 1 else tuple(outs)


def convert(model, input_shape=None):
    """``model`` (a path or ModelProto) as an OnnxModule, after checking everything in it."""
    proto, base_dir = load(model)
    proto, opset = opset_of(proto)
    graph = proto.graph
    constants = {}
    for i, tensor in enumerate(graph.initializer):
        what = f"initializer {tensor.name or i!r}"
        constants[tensor.name] = to_array(tensor, what, base_dir)
    for i, node in enumerate(graph.node):
        for attr in node.attribute:
            if attr.HasField("t"):  # Constant's value and the like
                to_array(attr.t, f"node {node.name or i!r} attribute {attr.name}", base_dir)
    inputs = [v for v in graph.input if v.name not in constants]
    if not inputs:
        raise UnsupportedError("the model has no input; there is nothing to compile")
    if not graph.output:
        raise UnsupportedError("the model has no output; there is nothing to compile")
    for value in inputs:
        if not value.type.HasField("tensor_type"):
            raise UnsupportedError(f"input {value.name!r} is not a tensor (a sequence, map or "
                                   "optional); cnncompile compiles models of tensor inputs")
        elem = value.type.tensor_type.elem_type
        if elem not in (0, 1):
            raise UnsupportedError(f"input {value.name!r} has ONNX type {elem}; cnncompile "
                                   "compiles float32 models")
    if len(inputs) == 1:
        shape = _input_shape(inputs[0], input_shape)
    else:
        given = [None] * len(inputs) if input_shape is None else list(input_shape)
        if len(given) != len(inputs) or not all(
                s is None or isinstance(s, (tuple, list)) for s in given):
            raise ValueError(f"the model has {len(inputs)} inputs "
                             f"({', '.join(v.name for v in inputs)}); give input_shape as a "
                             "list of as many shapes, in that order")
        shape = [_input_shape(v, s) for v, s in zip(inputs, given)]
        # an input whose batch is symbolic takes the batch of those given
        batch = next((s[0] for s in shape if s[0] != 1), 1)
        shape = [(batch,) + s[1:] if g is None and not (declared_shape(v) or [None])[0] else s
                 for v, s, g in zip(inputs, shape, given)]
    problems = onnx_ops.unsupported(graph.node, proto.opset_import)
    if problems:
        lines = [f"{graph.name or 'the ONNX model'} cannot be compiled: {len(problems)} "
                 f"unsupported node{'s' if len(problems) > 1 else ''}"]
        lines += [f"  - {where}: {what}" for where, what in problems]
        lines.append(SUPPORTED_HINT[0].upper() + SUPPORTED_HINT[1:] + "; ONNX ops: "
                     + ", ".join(sorted(onnx_ops.CONVERTERS)) + ".")
        raise UnsupportedError("\n".join(lines))
    name = graph.name if graph.name.isidentifier() else "OnnxModel"
    cls = type(name, (OnnxModule,), {"__module__": __name__})
    return cls(list(graph.node), constants, [v.name for v in inputs],
               [v.name for v in graph.output], shape, opset)


def _input_shape(value, input_shape):
    declared = declared_shape(value)
    if declared is not None:
        check_dims([d for d in declared if d is not None], f"input {value.name!r}")
    if input_shape is not None:
        shape = tuple(int(d) for d in input_shape)
        if declared is not None:
            if len(declared) != len(shape):
                raise ValueError(f"input_shape {shape} has {len(shape)} dimensions but the "
                                 f"model's input {value.name!r} has {len(declared)}: "
                                 f"{_show(declared)}")
            wrong = [i for i, (d, s) in enumerate(zip(declared, shape))
                     if i > 0 and d is not None and d != s]
            if wrong:
                raise ValueError(f"input_shape {shape} disagrees with the model's input "
                                 f"{value.name!r}, declared {_show(declared)}, in dimension "
                                 f"{wrong[0]}")
        return shape
    if declared is None:
        raise ValueError(f"the model does not declare the shape of its input {value.name!r}; "
                         "give input_shape=(N, C, H, W)")
    if any(d is None or d == 0 for d in declared[1:]):
        raise ValueError(f"the model's input {value.name!r} has symbolic dimensions "
                         f"{_show(declared)}; give input_shape=(N, C, H, W) with numbers")
    return tuple([declared[0] or 1] + declared[1:])


def _show(dims):
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
