"""Reductions as torch writes them: torch.mean(x, dim, keepdim), x.sum(dim), x.amax(dim)...

``dim`` is an int or a sequence of ints, negative counting from the end; it may not include
dimension 0, the batch, which the compiled model keeps free (ops/reduce.py says why).
"""
from .. import trace
from ..errors import UnsupportedError

__all__ = ["mean", "sum", "amax", "amin"]


def _dims(input, dim):
    """``dim`` as a tuple of non-negative dims (those in range), or None for every dim."""
    if dim is None:
        return None
    dims = (int(dim),) if isinstance(dim, int) else tuple(int(d) for d in dim)
    if not dims:  # torch: an empty list of dims reduces every dim
        return None
    if all(d >= 0 for d in dims):
        return dims
    nd = input.dim() if isinstance(input, trace.Tensor) else len(getattr(input, "shape", ()))
    return tuple(d % nd if -nd <= d < nd else d for d in dims)


def _check_dtype(what, dtype):
    if dtype is not None and str(dtype).rpartition(".")[2] != "float32":
        raise UnsupportedError(f"{what}(dtype={dtype}): cnncompile computes in float32; leave "
                               "dtype=None")


def _reduce(op, what, input, dim, keepdim):
    attrs = {"dims": _dims(input, dim), "keepdim": bool(keepdim)}
    return trace.apply(op, [input], attrs, name=what)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """A 4-D map's mean over (H, W) is global average pooling: it runs as
    AdaptiveAvgPool2d(1), whose kernels also read channel blocks, so no reorder comes first."""
    _check_dtype("mean", dtype)
    dims = _dims(input, dim)
    shape = input.shape if isinstance(input, trace.Tensor) else getattr(input, "shape", ())
    if dims is not None and sorted(dims) == [2, 3] and len(shape) == 4:
        y = trace.apply("adaptive_avg_pool2d", [input], {"output_size": (1, 1)}, name="mean")
        return y if keepdim else y.reshape(y.shape[0], y.shape[1])
    return _reduce("reduce_mean", "mean", input, dim, keepdim)


def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001 - torch's name
    _check_dtype("sum", dtype)
    return _reduce("reduce_sum", "sum", input, dim, keepdim)


def amax(input, dim=(), keepdim=False):
    return _reduce("reduce_max", "amax", input, dim, keepdim)


def amin(input, dim=(), keepdim=False):
    return _reduce("reduce_min", "amin", input, dim, keepdim)


trace.register_tensor_methods(mean=mean, sum=sum, amax=amax, amin=amin)
