"""Exact C literals for float32 weights.

'%.8e' gives 9 significant decimal digits, which identify every float32 uniquely; the C
compiler's correctly rounded conversion of the 'f'-suffixed literal gives back the same bits
(IEEE 754-2008, section 5.12.2: 9 digits suffice for binary32).
"""
import numpy as np

PER_LINE = 6


def c_float(value):
    """One float32 constant as an exact C literal."""
    return c_floats(np.asarray([value], np.float32), indent="")


def c_floats(array, indent="    "):
    flat = np.ascontiguousarray(array, dtype=np.float32).ravel()
    text = np.char.add(np.char.mod("%.8e", flat.astype(np.float64)), "f")
    nan, inf = np.isnan(flat), np.isinf(flat)
    if nan.any() or inf.any():
        text = text.astype(object)
        text[nan] = "NAN"
        text[inf & (flat > 0)] = "INFINITY"
        text[inf & (flat < 0)] = "-INFINITY"
    lines = [", ".join(text[i:i + PER_LINE]) for i in range(0, len(text), PER_LINE)]
    return ",\n".join(indent + line for line in lines)
