"""Elementwise math as torch writes it: torch.abs(x), x.exp(), x ** 0.5, x.clamp(min=0),
F.softplus(x), F.mish(x)... Each is an activation op (ops/activations.py): it fuses into the
layer before it."""
import math
import numbers

from .. import trace

__all__ = ["abs", "exp", "log", "erf", "sqrt", "rsqrt", "reciprocal", "square", "pow", "clamp", "clip",
           "clamp_min", "clamp_max", "mish", "softplus"]


def abs(input):  # noqa: A001 - torch's names, as in torch.abs
    return trace.apply("abs", [input], {})


def exp(input):
    return trace.apply("exp", [input], {})


def log(input):
    return trace.apply("log", [input], {})


def erf(input):
    return trace.apply("erf", [input], {})


def sqrt(input):
    return trace.apply("sqrt", [input], {})


def rsqrt(input):
    return trace.apply("rsqrt", [input], {})


def reciprocal(input):
    return trace.apply("reciprocal", [input], {})


def square(input):
    return trace.apply("square", [input], {})


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def pow(input, exponent):  # noqa: A001
    """input ** exponent for a constant number exponent."""
    if not _number(exponent):
        return trace.record_unsupported(
            "pow with a tensor exponent", [input, exponent],
            hint="the exponent must be a number: x ** 2.0, x.pow(0.5)")
    return trace.apply("pow", [input], {"exponent": float(exponent)})


def clamp(input, min=None, max=None):  # noqa: A002 - torch's keyword names
    """min(max(input, min), max) for number bounds; all ``max`` where min > max, as in torch."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    if not all(b is None or _number(b) for b in (min, max)):
        return trace.record_unsupported(
            "clamp with tensor bounds", [input],
            hint="give number bounds, e.g. x.clamp(min=0.0, max=6.0), or write the bound "
                 "as a layer: torch.maximum/minimum are not supported either")
    lo = -math.inf if min is None else float(min)
    hi = math.inf if max is None else float(max)
    if (lo, hi) == (0.0, math.inf):
        return trace.apply("relu", [input], {}, name="clamp")
    if (lo, hi) == (0.0, 6.0):
        return trace.apply("relu6", [input], {}, name="clamp")
    lo = lo if lo <= hi else hi  # torch: every value becomes max when min > max
    return trace.apply("hardtanh", [input], {"min_val": lo, "max_val": hi}, name="clamp")


clip = clamp


def clamp_min(input, min):  # noqa: A002
    return clamp(input, min=min)


def clamp_max(input, max):  # noqa: A002
    return clamp(input, max=max)


def mish(input, inplace=False):
    return trace.apply("mish", [input], {})


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + e^(beta x)) / beta, and x where beta x > threshold."""
    if beta == 0:
        raise ValueError("softplus: beta must not be 0")
    return trace.apply("softplus", [input], {"beta": float(beta), "threshold": float(threshold)})


trace.register_tensor_methods(
    abs=abs, __abs__=abs, exp=exp, log=log, erf=erf, sqrt=sqrt, rsqrt=rsqrt, reciprocal=reciprocal,
    square=square, pow=pow, __pow__=pow, clamp=clamp, clip=clip, clamp_min=clamp_min,
    clamp_max=clamp_max)
