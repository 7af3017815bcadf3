"""A model's inputs and outputs: the shapes it is compiled for, their names, and the structure
(tuple, list, dict, nested) that forward() returns.

A model of one input returning one tensor needs none of this: its graph has no ``io`` entry
and it compiles, calls and prints as it always has. Any other model's graph carries
``graph.meta["io"]``, a plain JSON-ready dict (it is saved in model.json)::

    {"inputs": ["x", "y"],           names, in forward()'s argument order
     "outputs": ["out", "aux"],      names, in the order the returned structure flattens
     "tree": ["dict", [["out", 0], ["aux", 1]]]}

A tree is an int (the index of a flattened output), ["tuple", [trees]], ["list", [trees]] or
["dict", [[key, tree], ...]] (insertion order).
"""
import inspect
import numbers
import re

from .errors import TraceError

# one shape as text: sizes separated by commas, "x" or spaces (brackets around it are dropped)
_SHAPE_TEXT = re.compile(r"\s*(\d+(?:\s*[,xX]\s*\d+|\s+\d+)*)\s*,?\s*")


def parse_shape(text):
    """The shape ``text`` writes, "1,3,32,32", "1x3x32x32" or "(1, 3, 32, 32)", as a tuple of
    ints; a ValueError saying what to give for anything else."""
    body = text.strip()
    if body[:1] + body[-1:] in ("()", "[]"):
        body = body[1:-1]
    match = _SHAPE_TEXT.fullmatch(body)
    if match is None:
        raise ValueError(f"input_shape {text!r} is not a shape: give the sizes of one input as "
                         "integers, e.g. input_shape=(1, 3, 32, 32) or input_shape=\"1,3,32,32\"")
    return tuple(int(d) for d in re.split(r"\s*[,xX]\s*|\s+", match.group(1)))


def as_shape(input_shape):
    """``input_shape`` with a shape written as text (see parse_shape) read into a tuple."""
    return parse_shape(input_shape) if isinstance(input_shape, str) else input_shape


def input_shapes(input_shape):
    """([shape, ...], several): one shape as a tuple of ints, or several as a list of them."""
    if input_shape is None:
        raise ValueError("input_shape is missing: give the shape of one call's input, e.g. "
                         "(1, 3, 32, 32), or a list of shapes for a forward() of several inputs")
    items = list(as_shape(input_shape))
    several = bool(items) and all(isinstance(s, (tuple, list)) for s in items)
    shapes = [_shape(s) for s in items] if several else [_shape(items)]
    batches = {s[0] for s in shapes}
    if len(batches) > 1:
        raise ValueError(f"input_shape {[tuple(s) for s in shapes]}: the inputs have batch "
                         f"sizes {sorted(batches)}; every input must have the same batch size "
                         "(dimension 0)")
    return shapes, several


def _shape(shape):
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(f"input_shape must be positive integers such as (1, 3, 32, 32) (or a "
                         f"list of such shapes, one per input), got {shape or 'nothing'}")
    return shape


def input_names(given, forward, count):
    """The names of ``count`` inputs: ``given`` (a frontend's), else forward()'s arguments."""
    if given is not None and len(given) >= count:
        return [str(n) for n in given[:count]]
    return argument_names(forward, count)


def argument_names(forward, count):
    """The names of forward()'s first ``count`` positional arguments (input0, input1... for
    *args); a TraceError when forward() takes fewer."""
    names = []
    for p in inspect.signature(forward).parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            names += [f"input{i}" for i in range(len(names), count)]
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    if len(names) < count:
        raise TraceError(f"input_shape gives {count} shapes but forward() takes "
                         f"{len(names)} tensor argument{'s' if len(names) != 1 else ''} "
                         f"({', '.join(names)}); give one shape per argument")
    return names[:count]


def flatten_outputs(out, model, tensor_type):
    """(tensors, tree, names) of what forward() returned, tensors in flattening order."""
    tensors, names = [], []

    def walk(value, path):
        if isinstance(value, tensor_type):
            tensors.append(value)
            names.append(".".join(path) or "output")
            return len(tensors) - 1
        if isinstance(value, (tuple, list)):
            kind = "list" if isinstance(value, list) else "tuple"
            return [kind, [walk(v, path + [str(i)]) for i, v in enumerate(value)]]
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, (str, numbers.Integral)) or isinstance(key, bool):
                    raise TraceError(f"{model}.forward() returned a dict with a key of type "
                                     f"{type(key).__name__}; use strings or integers as keys")
            return ["dict", [[key, walk(v, path + [str(key)])] for key, v in value.items()]]
        raise TraceError(f"{model}.forward() returned {type(value).__name__}"
                         + (f" at {'.'.join(path)}" if path else "") + "; it must return the "
                         "output tensor of a layer, or a tuple, list or dict of them")

    tree = walk(out, [])
    if not tensors:
        raise TraceError(f"{model}.forward() returned no tensor; it must return the output "
                         "tensor of a layer, or a tuple, list or dict of them")
    return tensors, tree, names


def describe(input_names, output_names, tree):
    return {"inputs": [str(n) for n in input_names], "outputs": [str(n) for n in output_names],
            "tree": tree}


def rebuild(tree, values):
    """The structure ``tree`` describes, with ``values`` (in flattening order) as leaves."""
    if isinstance(tree, int):
        return values[tree]
    kind, items = tree
    if kind == "dict":
        return {key: rebuild(sub, values) for key, sub in items}
    built = [rebuild(sub, values) for sub in items]
    return built if kind == "list" else tuple(built)
