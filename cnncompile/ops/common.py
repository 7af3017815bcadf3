"""Helpers shared by the shape rules of several ops."""
import math

from ..errors import layer_ref


def out_size(size, pad_total, span, stride, ceil_mode=False):
    """Output length of a sliding window: floor((size + pads - span) / stride) + 1."""
    num = size + pad_total - span
    if ceil_mode:
        return -(-num // stride) + 1
    return num // stride + 1


def describe_source(value, shape=True):
    """'(output of conv1: (1, 32, 14, 14))' or '(the model input: ...)' for error messages."""
    what = "the model input" if value.op == "input" else f"output of {layer_ref(value.name)}"
    if not shape:
        return f"({what})"
    return f"({what}: {tuple(value.shape)})"


def per_sample_dims(shape):
    """'32 x 16 x 16' for a (N, 32, 16, 16) value."""
    return " x ".join(str(d) for d in shape[1:])


def numel_per_sample(shape):
    return math.prod(shape[1:])


# A layer's loops are shared among threads only above this much work: starting them costs
# a few microseconds, which small layers do not repay.
PARALLEL_MIN_FLOPS = 1_000_000


# A pass over memory (copies, reorders, per-channel scaling) is shared among threads only
# on values of at least this many floats a sample.
PARALLEL_MIN_FLOATS = 1 << 16


def parallel_pass_worth_it(floats):
    return floats >= PARALLEL_MIN_FLOATS


def parallel_worth_it(node, flops_per_gemm_flop=1):
    """flops_per_gemm_flop: for kernels that run several times slower per FLOP than the
    GEMM (depthwise convolutions), so that the threshold stays one of time."""
    return node.meta.get("flops", 0) * flops_per_gemm_flop >= PARALLEL_MIN_FLOPS
