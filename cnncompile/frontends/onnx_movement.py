"""ONNX data movement -> cnncompile.nn calls: Transpose, Slice, Split, DepthToSpace,
SpaceToDepth, Squeeze, Unsqueeze (https://onnx.ai/onnx/operators/). Nodes whose inputs are
all constants are folded before they get here (onnx_ops.FOLDABLE); these see the model's data,
whose batch (dimension 0) must stay first and whole."""
import numpy as np

from ..nn import functional as F
from .onnx_node import converter


def _ints(node, value, what):
    """A constant integer tensor as a list of ints."""
    value = np.asarray(node.const(value, what))
    if not np.issubdtype(value.dtype, np.integer):
        raise node.bad(f"{what} is a tensor of {value.dtype}; {node.op} takes int64")
    return [int(v) for v in value.reshape(-1)]


def _axes(node, axes, rank, what="axes"):
    """Axes in 0..rank-1, each once."""
    if any(not -rank <= a < rank for a in axes):
        raise node.bad(f"{what} {axes} are out of range for a rank-{rank} tensor")
    axes = [a % rank for a in axes]
    if len(set(axes)) != len(axes):
        raise node.bad(f"{what} {axes} repeat an axis")
    return axes


@converter("Transpose")
def transpose(node, x):
    x = node.tensor(x)
    rank = x.dim()
    perm = list(node.attrs.get("perm", range(rank - 1, -1, -1)))
    if sorted(perm) != list(range(rank)):
        raise node.bad(f"perm {perm} is not a permutation of 0..{rank - 1}")
    if perm[0] != 0:
        raise node.unsupported(f"perm {perm} moves the batch out of axis 0; the compiled model "
                               "takes any batch size, so perm[0] must be 0")
    return F.permute(x, perm)


@converter("Slice")
def slice_(node, x, starts, ends, axes=None, steps=None):
    x = node.tensor(x)
    rank = x.dim()
    starts, ends = _ints(node, starts, "starts"), _ints(node, ends, "ends")
    axes = list(range(len(starts))) if axes is None else _ints(node, axes, "axes")
    steps = [1] * len(starts) if steps is None else _ints(node, steps, "steps")
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise node.bad(f"starts, ends, axes and steps have {len(starts)}, {len(ends)}, "
                       f"{len(axes)} and {len(steps)} values; they must have as many")
    for axis, start, end, step in zip(_axes(node, axes, rank), starts, ends, steps):
        if step == 0:
            raise node.bad("a step of 0")
        if step < 0:
            raise node.unsupported(f"step {step} on axis {axis}: slices that reverse a "
                                   "dimension are not supported")
        x = F.slice(x, axis, start, end, step)  # clamps like ONNX for positive steps
    return x


@converter("Split")
def split(node, x, sizes=None):
    x = node.tensor(x)
    axis = _axes(node, [node.integer("axis", 0)], x.dim(), "axis")[0]
    outputs = len(node.proto.output)
    size = x.shape[axis]
    if sizes is None and "split" in node.attrs:
        sizes = node.attrs["split"]
    if sizes is not None:
        sizes = [int(s) for s in (sizes if isinstance(sizes, list) else _ints(node, sizes, "split"))]
        if len(sizes) != outputs or sum(sizes) != size or any(s < 0 for s in sizes):
            raise node.bad(f"split {sizes} must give {outputs} sizes adding up to {size}")
    elif "num_outputs" in node.attrs:
        count = node.integer("num_outputs")
        if count != outputs or count <= 0:
            raise node.bad(f"num_outputs {count} but the node has {outputs} outputs")
        part = -(-size // count)
        sizes = [min(part, size - i * part) for i in range(count)]
        if sizes[-1] <= 0:
            raise node.bad(f"{size} values along axis {axis} cannot fill {count} outputs")
    else:
        if size % outputs:
            raise node.bad(f"{size} values along axis {axis} do not split evenly into "
                           f"{outputs} outputs; give the sizes")
        sizes = [size // outputs] * outputs
    if axis == 0:
        raise node.unsupported("Split along axis 0 splits the batch; the compiled model takes "
                               "any batch size and keeps samples together")
    return list(F.split_with_sizes(x, sizes, axis))


def _blocks(node, x):
    x = node.tensor(x)
    b = node.integer("blocksize")
    if x.dim() != 4:
        raise node.unsupported(f"a rank-{x.dim()} input; {node.op} takes (N, C, H, W)")
    if b <= 0:
        raise node.bad(f"blocksize {b} must be positive")
    return x, b, tuple(x.shape)


@converter("DepthToSpace")
def depth_to_space(node, x):
    x, b, (n, c, h, w) = _blocks(node, x)
    mode = node.attrs.get("mode", "DCR")
    if c % (b * b):
        raise node.bad(f"{c} channels do not divide by blocksize^2 = {b * b}")
    if mode == "CRD":  # channel, then row and column offsets: torch's pixel_shuffle
        return F.pixel_shuffle(x, b)
    if mode != "DCR":
        raise node.bad(f"mode {mode!r} is not DCR or CRD")
    y = F.permute(x.reshape(n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2))
    return y.reshape(n, c // (b * b), h * b, w * b)


@converter("SpaceToDepth")
def space_to_depth(node, x):
    x, b, (n, c, h, w) = _blocks(node, x)
    if h % b or w % b:
        raise node.bad(f"height {h} and width {w} must divide by blocksize {b}")
    mode = node.attrs.get("mode", "DCR")  # an attribute since opset 28
    if mode == "CRD":  # the inverse of DepthToSpace's CRD: torch's pixel_unshuffle
        return F.pixel_unshuffle(x, b)
    if mode != "DCR":
        raise node.bad(f"mode {mode!r} is not DCR or CRD")
    y = F.permute(x.reshape(n, c, h // b, b, w // b, b), (0, 3, 5, 1, 2, 4))
    return y.reshape(n, c * b * b, h // b, w // b)


def _axes_input(node, axes):
    """Squeeze/Unsqueeze's axes: an attribute before opset 13, an input since."""
    if node.opset < 13:
        return node.attrs.get("axes")
    return None if axes is None else _ints(node, axes, "axes")


@converter("Squeeze")
def squeeze(node, x, axes=None):
    x = node.tensor(x)
    axes = _axes_input(node, axes)
    if axes is None:
        return F.squeeze(x)  # every size-1 axis but the batch
    axes = _axes(node, list(axes), x.dim())
    if any(x.shape[a] != 1 for a in axes if a):
        raise node.bad(f"axes {axes} include an axis whose size is not 1 ({tuple(x.shape)})")
    if 0 in axes:
        raise node.unsupported("squeezing axis 0 removes the batch; the compiled model keeps it")
    return F.squeeze(x, tuple(axes))


@converter("Unsqueeze")
def unsqueeze(node, x, axes=None):
    x = node.tensor(x)
    axes = _axes_input(node, axes)
    if axes is None:
        raise node.bad("axes are missing")
    rank = x.dim() + len(axes)
    axes = sorted(_axes(node, list(axes), rank))
    if axes[0] == 0:
        raise node.unsupported("unsqueezing axis 0 puts an axis in front of the batch; the "
                               "compiled model keeps the batch first")
    for a in axes:
        x = F.unsqueeze(x, a)
    return x
