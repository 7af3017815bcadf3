"""Data movement inside a sample, with torch's signatures: permute, transpose, slicing
(narrow, chunk, split, unbind, select, x[...]), squeeze/unsqueeze, channel and pixel shuffle.

Everything is built on two ops, ``permute`` and ``slice`` (cnncompile/ops/movement.py), and on
views (reshape). The batch is free at call time, so it must stay dimension 0, whole: moving,
slicing or indexing it raises UnsupportedError saying what to write instead.
"""
import builtins
import numbers

import numpy as np

from .. import trace
from ..errors import ShapeError, TraceError, UnsupportedError

__all__ = ["permute", "transpose", "swapaxes", "swapdims", "movedim", "moveaxis", "narrow",
           "chunk", "split", "split_with_sizes", "unbind", "select", "slice", "squeeze",
           "unsqueeze", "channel_shuffle", "pixel_shuffle", "pixel_unshuffle", "getitem"]

_FULL = builtins.slice(None)


def _traced(x):
    return isinstance(x, trace.Tensor)


def _shape(x):
    return tuple(x.shape) if _traced(x) else np.shape(x)


def _error(x, op, message, cls=ShapeError):
    """An error about the call ``op`` on ``x``: named as the layer it would have been."""
    if _traced(x):
        return cls(message, layer=x._tracer.graph.unique_name(op), source=trace.user_source())
    return cls(f"{op}: {message}")


def _dim(x, dim, op, rank=None):
    """``dim`` in 0..rank-1 (rank: x's by default), as torch wraps negative dims."""
    rank = len(_shape(x)) if rank is None else rank
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool) or not -rank <= dim < rank:
        raise _error(x, op, f"dimension {dim!r} is out of range (expected to be in range of "
                     f"[{-rank}, {rank - 1}])", IndexError if not _traced(x) else ShapeError)
    return int(dim) % rank


def _no_batch(x, op, dim, fix):
    if dim == 0:
        raise _error(x, op, f"{op} along dimension 0 splits the batch; the compiled model takes "
                     f"any batch size and keeps samples together: {fix}", UnsupportedError)


def _view(x, shape, op):
    if _traced(x):
        return x._reshape(op, (x.shape[0],) + tuple(shape[1:]))
    return np.reshape(x, shape)


def _dims(dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        return tuple(dims[0])
    return tuple(dims)


# -- permutations ---------------------------------------------------------------------------
def permute(input, dims):
    """torch.permute: ``dims`` lists every dimension once; dims[0] must stay 0 (the batch)."""
    dims = tuple(dims)
    if _traced(input) and input.node.meta["shape"] is None:  # after an unsupported layer
        rank = len(dims)  # recorded all the same, so that tracing goes on to list the others
        return trace.apply("permute", [input], {"perm": tuple(_dim(input, d, "permute", rank)
                                                              for d in dims)})
    rank = len(_shape(input))
    if len(dims) != rank:
        raise _error(input, "permute", f"permute{dims} has {len(dims)} dims but the input has "
                     f"{rank}")
    perm = tuple(_dim(input, d, "permute") for d in dims)
    if perm == tuple(range(rank)):
        return input
    return trace.apply("permute", [input], {"perm": perm})


def transpose(input, dim0, dim1):
    rank = len(_shape(input))
    a, b = _dim(input, dim0, "transpose"), _dim(input, dim1, "transpose")
    perm = list(range(rank))
    perm[a], perm[b] = b, a
    return permute(input, perm)


swapaxes = swapdims = transpose


def movedim(input, source, destination):
    rank = len(_shape(input))
    src = [source] if isinstance(source, numbers.Integral) else list(source)
    dst = [destination] if isinstance(destination, numbers.Integral) else list(destination)
    if len(src) != len(dst):
        raise _error(input, "movedim", f"movedim: source ({len(src)} dims) and destination "
                     f"({len(dst)} dims) must have the same number of dims")
    src = [_dim(input, d, "movedim") for d in src]
    dst = [_dim(input, d, "movedim") for d in dst]
    perm = [None] * rank
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(d for d in range(rank) if d not in src)
    return permute(input, [p if p is not None else next(rest) for p in perm])


moveaxis = movedim


# -- slices ---------------------------------------------------------------------------------
def slice(input, dim=0, start=None, end=None, step=1):
    """aten.slice: start/end may be None, negative (from the end) or past the end (clamped).
    Slicing the whole of a dimension, the batch included, returns the input."""
    shape = _shape(input)
    dim = _dim(input, dim, "slice")
    size = shape[dim]
    step = 1 if step is None else int(step)
    if step < 1:
        raise _error(input, "slice", f"slice step {step}: only positive steps are supported",
                     UnsupportedError)
    start = 0 if start is None else int(start)
    end = size if end is None else int(end)
    start = min(max(start + size if start < 0 else start, 0), size)
    end = min(max(end + size if end < 0 else end, start), size)
    if (start, end, step) == (0, size, 1):
        return input
    return trace.apply("slice", [input], {"dim": dim, "start": start, "stop": end,
                                          "step": step})


def narrow(input, dim, start, length):
    shape = _shape(input)
    dim = _dim(input, dim, "narrow")
    start = start + shape[dim] if start < 0 else start
    if not 0 <= start <= start + length <= shape[dim] or length < 0:
        raise _error(input, "narrow", f"narrow(dim={dim}, start={start}, length={length}) is "
                     f"out of range for dimension {dim} of size {shape[dim]}")
    return slice(input, dim, start, start + length)


def split_with_sizes(input, split_sizes, dim=0):
    shape = _shape(input)
    dim = _dim(input, dim, "split")
    _no_batch(input, "split", dim, "split along a dimension >= 1 (dim=1 for channels)")
    sizes = [int(s) for s in split_sizes]
    if sum(sizes) != shape[dim] or any(s < 0 for s in sizes):
        raise _error(input, "split", f"split sizes {sizes} must add up to {shape[dim]}, the "
                     f"size of dimension {dim}")
    out, start = [], 0
    for s in sizes:
        out.append(slice(input, dim, start, start + s))
        start += s
    return tuple(out)


def split(tensor, split_size_or_sections, dim=0):
    """torch.split: pieces of split_size (the last one smaller), or of the sizes listed."""
    if isinstance(split_size_or_sections, int):
        shape = _shape(tensor)
        d = _dim(tensor, dim, "split")
        _no_batch(tensor, "split", d, "split along a dimension >= 1 (dim=1 for channels)")
        step = split_size_or_sections
        if step <= 0:
            raise _error(tensor, "split", f"split_size must be positive, got {step}")
        sizes = [min(step, shape[d] - s) for s in range(0, shape[d], step)] or [0]
        return split_with_sizes(tensor, sizes, d)
    return split_with_sizes(tensor, split_size_or_sections, dim)


def chunk(input, chunks, dim=0):
    """torch.chunk: pieces of ceil(size / chunks), so possibly fewer than ``chunks``."""
    shape = _shape(input)
    d = _dim(input, dim, "chunk")
    _no_batch(input, "chunk", d, "chunk along a dimension >= 1: x.chunk(2, dim=1) for channels")
    if chunks <= 0:
        raise _error(input, "chunk", f"chunks must be positive, got {chunks}")
    return split(input, max(1, -(-shape[d] // chunks)), d)


def select(input, dim, index):
    """input[..., index, ...] along ``dim``: that dimension is removed."""
    shape = _shape(input)
    dim = _dim(input, dim, "select")
    _no_batch(input, "select", dim, "select from a dimension >= 1 (x[:, 0] for channel 0)")
    if not -shape[dim] <= index < shape[dim]:
        raise _error(input, "select", f"index {index} is out of range for dimension {dim} of "
                     f"size {shape[dim]}", ShapeError if _traced(input) else IndexError)
    index %= shape[dim]
    y = slice(input, dim, index, index + 1)
    return _view(y, shape[:dim] + shape[dim + 1:], "select")


def unbind(input, dim=0):
    shape = _shape(input)
    d = _dim(input, dim, "unbind")
    _no_batch(input, "unbind", d, "unbind a dimension >= 1: x.unbind(1)")
    return tuple(select(input, d, i) for i in range(shape[d]))


# -- size-1 dimensions ----------------------------------------------------------------------
def squeeze(input, dim=None):
    """Removes dimensions of size 1 (``dim``: only those listed). The batch stays: without
    ``dim`` only dimensions >= 1 are removed, whatever the batch size."""
    shape = _shape(input)
    if dim is None:
        dims = [d for d in range(1, len(shape)) if shape[d] == 1]
    else:
        dims = [_dim(input, d, "squeeze")
                for d in ((dim,) if isinstance(dim, int) else tuple(dim))]
        if 0 in dims:
            raise _error(input, "squeeze", "squeeze(0) removes the batch dimension; the compiled "
                         "model keeps it: squeeze a dimension >= 1", UnsupportedError)
        dims = [d for d in dims if shape[d] == 1]
    if not dims:
        return input
    return _view(input, tuple(s for d, s in enumerate(shape) if d not in dims), "squeeze")


def unsqueeze(input, dim):
    shape = _shape(input)
    dim = _dim(input, dim, "unsqueeze", len(shape) + 1)
    if dim == 0:
        raise _error(input, "unsqueeze", "unsqueeze(0) puts a dimension in front of the batch; "
                     "the compiled model keeps the batch first: unsqueeze a dimension >= 1",
                     UnsupportedError)
    return _view(input, shape[:dim] + (1,) + shape[dim:], "unsqueeze")


# -- x[...] ---------------------------------------------------------------------------------
def _expand_ellipsis(x, key):
    key = key if isinstance(key, tuple) else (key,)
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise _error(x, "getitem", "an index can only have a single ellipsis ('...')", TraceError)
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    rank = len(_shape(x))
    if used > rank:
        raise _error(x, "getitem", f"too many indices ({used}) for a {rank}-D tensor")
    if Ellipsis in key:
        at = key.index(Ellipsis)
        return key[:at] + (_FULL,) * (rank - used) + key[at + 1:]
    return key + (_FULL,) * (rank - used)


def getitem(input, key):
    """x[...] with what CNN code writes: slices with positive steps, integers, None and
    '...'. The batch (the first index) must be the whole ':'."""
    shown = _show(key if isinstance(key, tuple) else (key,))
    key = _expand_ellipsis(input, key)
    batch = key[0]
    if batch is None or batch != _FULL and not (
            isinstance(batch, builtins.slice) and batch.start in (None, 0)
            and batch.stop is None and batch.step in (None, 1)):
        raise _error(input, "getitem", f"x[{shown}] indexes the batch dimension; the "
                     "compiled model takes any batch size and keeps every sample: the first "
                     "index must be ':' (x[:, a:b], x[..., 1:])", UnsupportedError)
    y, dim = input, 0
    for k in key:
        if k is None:
            y = unsqueeze(y, dim)
            dim += 1
        elif isinstance(k, builtins.slice):
            size = _shape(y)[dim]
            if k.step is not None and k.step <= 0:
                raise _error(input, "getitem", f"x[{shown}]: only positive slice steps "
                             "are supported (torch does not allow others either)",
                             UnsupportedError)
            if dim:
                start, stop, step = k.indices(size)
                y = slice(y, dim, start, max(start, stop), step)
            dim += 1
        elif isinstance(k, numbers.Integral) and not isinstance(k, (bool, np.bool_)):
            y = select(y, dim, int(k))
        else:
            raise _error(input, "getitem", f"indexing with {type(k).__name__} is not supported; "
                         "index with slices, integers, None and '...'", UnsupportedError)
    return y


def _show(key):
    def one(k):
        if k is None:
            return "None"
        if isinstance(k, builtins.slice):
            return ":".join("" if v is None else str(v) for v in (k.start, k.stop)) + (
                f":{k.step}" if k.step is not None else "")
        return repr(k)
    return ", ".join(one(k) for k in key)


# -- shuffles -------------------------------------------------------------------------------
def channel_shuffle(input, groups):
    """(N, g*k, ...) -> view (N, g, k, ...) -> swap g and k -> (N, k*g, ...)."""
    shape = _shape(input)
    if len(shape) < 3 or groups <= 0 or shape[1] % groups:
        raise _error(input, "channel_shuffle", f"channel_shuffle(groups={groups}) needs an input "
                     f"of at least 3 dims whose {shape[1] if len(shape) > 1 else 0} channels "
                     "divide into the groups")
    x = _view(input, (shape[0], groups, shape[1] // groups) + shape[2:], "channel_shuffle")
    return _view(transpose(x, 1, 2), shape, "channel_shuffle")


def pixel_shuffle(input, upscale_factor):
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r): y[c, h*r + i, w*r + j] = x[c*r*r + i*r + j, h, w]."""
    shape, r = _shape(input), int(upscale_factor)
    if len(shape) != 4 or r <= 0 or shape[1] % (r * r):
        raise _error(input, "pixel_shuffle", f"pixel_shuffle(upscale_factor={r}) needs an "
                     f"(N, C, H, W) input whose channels divide by {r * r}, got {shape}")
    n, c, h, w = shape
    x = _view(input, (n, c // (r * r), r, r, h, w), "pixel_shuffle")
    x = permute(x, (0, 1, 4, 2, 5, 3))
    return _view(x, (n, c // (r * r), h * r, w * r), "pixel_shuffle")


def pixel_unshuffle(input, downscale_factor):
    """The inverse of pixel_shuffle: (N, C, H*r, W*r) -> (N, C*r*r, H, W)."""
    shape, r = _shape(input), int(downscale_factor)
    if len(shape) != 4 or r <= 0 or shape[2] % r or shape[3] % r:
        raise _error(input, "pixel_unshuffle", f"pixel_unshuffle(downscale_factor={r}) needs an "
                     f"(N, C, H, W) input whose height and width divide by {r}, got {shape}")
    n, c, h, w = shape
    x = _view(input, (n, c, h // r, r, w // r, r), "pixel_unshuffle")
    x = permute(x, (0, 1, 3, 5, 2, 4))
    return _view(x, (n, c * r * r, h // r, w // r), "pixel_unshuffle")


# -- tensor methods ---------------------------------------------------------------------------
def _permute_method(input, *dims, **kwargs):
    return permute(input, _dims(dims) if dims else tuple(kwargs["dims"]))


def _split_method(input, split_size, dim=0):
    return split(input, split_size, dim)


trace.register_tensor_methods(
    permute=_permute_method, transpose=transpose, swapaxes=swapaxes, swapdims=swapdims,
    movedim=movedim, moveaxis=moveaxis, narrow=narrow, chunk=chunk, split=_split_method,
    split_with_sizes=split_with_sizes, unbind=unbind, select=select, squeeze=squeeze,
    unsqueeze=unsqueeze, __getitem__=getitem)
