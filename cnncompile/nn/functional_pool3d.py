"""torch.nn.functional's 1-D and 3-D pooling, with torch's signatures (ops/pool3d.py)."""
from .. import trace

__all__ = ["max_pool1d", "max_pool3d", "avg_pool1d", "avg_pool3d", "adaptive_avg_pool1d",
           "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool3d"]


def _ntuple(value, rank, what):
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) == 1:
        values = values * rank
    if len(values) != rank:
        raise ValueError(f"{what} must be an int or {rank} ints, got {value!r}")
    return tuple(int(v) for v in values)


def _window(kernel_size, stride, padding, dilation, rank):
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel_size
    return {"kernel_size": _ntuple(kernel_size, rank, "kernel_size"),
            "stride": _ntuple(stride, rank, "stride"),
            "padding": _ntuple(padding, rank, "padding"),
            "dilation": _ntuple(dilation, rank, "dilation")}


def max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, rank):
    attrs = _window(kernel_size, stride, padding, dilation, rank)
    attrs.update(ceil_mode=bool(ceil_mode), return_indices=bool(return_indices))
    return trace.apply(f"max_pool{rank}d", [input], attrs)


def avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, rank, dilation=1):
    """Average pooling of rank 1 or 3; ``dilation`` (not in torch) is ONNX AveragePool's."""
    attrs = _window(kernel_size, stride, padding, dilation, rank)
    attrs.update(ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
                 divisor_override=None if divisor_override is None else int(divisor_override))
    return trace.apply(f"avg_pool{rank}d", [input], attrs)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    return avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, 3)


def _output_size(size, rank):
    if size is None or isinstance(size, int):
        return (size,) * rank
    sizes = tuple(None if s is None else int(s) for s in size)
    if len(sizes) != rank:
        raise ValueError(f"output_size must be an int or {rank} sizes, got {size!r}")
    return sizes


def adaptive_avg_pool1d(input, output_size):
    return trace.apply("adaptive_avg_pool1d", [input], {"output_size": _output_size(output_size, 1)})


def adaptive_avg_pool3d(input, output_size):
    return trace.apply("adaptive_avg_pool3d", [input], {"output_size": _output_size(output_size, 3)})


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return trace.apply("adaptive_max_pool1d", [input], {"output_size": _output_size(output_size, 1),
                                                        "return_indices": bool(return_indices)})


def adaptive_max_pool3d(input, output_size, return_indices=False):
    return trace.apply("adaptive_max_pool3d", [input], {"output_size": _output_size(output_size, 3),
                                                        "return_indices": bool(return_indices)})
