"""Elementwise activations: one op each, all sharing the elementwise template.

Each is a C function in runtime/cnn_runtime.h (cnn_unary.h for the math functions) applied
to every value; any of them fuses into the epilogue of a conv/linear/pool
(passes/fuse_activation.py). NaN propagates as in torch. Formulas follow the torch.nn
documentation of each module.
"""
import math

import numpy as np

from ..literals import c_float
from . import Op, register
from .common import numel_per_sample

# the activations vector kernels apply in their epilogue as they store (runtime CNN_ACT_*
# codes): the GEMM's micro-kernel and the kernels on channel blocks; others run after them
VECTOR_ACTIVATIONS = {None: "CNN_ACT_NONE", "cnn_relu": "CNN_ACT_RELU",
                      "cnn_relu6": "CNN_ACT_RELU6", "cnn_hardswish": "CNN_ACT_HARDSWISH",
                      "cnn_silu": "CNN_ACT_SILU", "cnn_gelu": "CNN_ACT_GELU"}


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _hardtanh(x, lo, hi):
    return np.where(x < lo, lo, np.where(x > hi, hi, x))


# op name -> (C function, attribute names passed to it in order, numpy reference on float64)
ACTIVATIONS = {
    "relu": ("cnn_relu", (), lambda x, a: np.where(x < 0, 0.0, x)),
    "relu6": ("cnn_relu6", (), lambda x, a: _hardtanh(x, 0.0, 6.0)),
    "leaky_relu": ("cnn_leaky_relu", ("negative_slope",),
                   lambda x, a: np.where(x > 0, x, x * a["negative_slope"])),
    "elu": ("cnn_elu", ("alpha",), lambda x, a: np.where(x > 0, x, a["alpha"] * np.expm1(x))),
    "sigmoid": ("cnn_sigmoid", (), lambda x, a: 1.0 / (1.0 + np.exp(-x))),
    "tanh": ("cnn_tanh", (), lambda x, a: np.tanh(x)),
    "hardtanh": ("cnn_hardtanh", ("min_val", "max_val"),
                 lambda x, a: _hardtanh(x, a["min_val"], a["max_val"])),
    "hardswish": ("cnn_hardswish", (), lambda x, a: x * _hardtanh(x + 3.0, 0.0, 6.0) / 6.0),
    "hardsigmoid": ("cnn_hardsigmoid", (), lambda x, a: _hardtanh(x + 3.0, 0.0, 6.0) / 6.0),
    "silu": ("cnn_silu", (), lambda x, a: x / (1.0 + np.exp(-x))),
    "gelu": ("cnn_gelu", (), lambda x, a: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))),
    "gelu_tanh": ("cnn_gelu_tanh", (), lambda x, a: 0.5 * x * (1.0 + np.tanh(
        math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))),
    # the elementwise math of runtime/cnn_unary.h, as torch's float32 kernels compute it
    "abs": ("cnn_abs", (), lambda x, a: np.abs(x)),
    "exp": ("cnn_exp", (), lambda x, a: np.exp(x)),
    "log": ("cnn_log", (), lambda x, a: np.log(x)),
    "sqrt": ("cnn_sqrt", (), lambda x, a: np.sqrt(x)),
    "erf": ("cnn_erf", (), lambda x, a: _erf(x)),
    "rsqrt": ("cnn_rsqrt", (), lambda x, a: 1.0 / np.sqrt(x)),
    "reciprocal": ("cnn_reciprocal", (), lambda x, a: 1.0 / x),
    "square": ("cnn_square", (), lambda x, a: x * x),
    "pow": ("cnn_pow", ("exponent",), lambda x, a: np.power(x, float(np.float32(a["exponent"])))),
    "softplus": ("cnn_softplus", ("beta", "threshold"), lambda x, a: np.where(
        x * a["beta"] > a["threshold"], x, np.log1p(np.exp(x * a["beta"])) / a["beta"])),
    "mish": ("cnn_mish", (), lambda x, a: x * np.tanh(np.log1p(np.exp(x)))),
}


class Activation(Op):
    template = "elementwise.c.j2"
    inplace = True
    ref = None
    arg_names = ()

    def infer_shape(self, node, ins):
        return ins[0].shape

    def reference(self, node, arrays):
        with np.errstate(all="ignore"):  # inf and NaN come out as torch gives them
            return self.ref(arrays[0].astype(np.float64), node.attrs).astype(np.float32)

    def flops(self, node, ins, out_shape):
        return numel_per_sample(out_shape)

    def lower(self, node, ins, out_shape):
        return dict(size=numel_per_sample(out_shape))

    def activation_args(self, node):
        return [c_float(node.attrs[name]) for name in self.arg_names]


for _name, (_fn, _args, _ref) in ACTIVATIONS.items():
    register(type(f"Activation_{_name}", (Activation,), dict(
        name=_name, activation=_fn, arg_names=_args, ref=staticmethod(_ref))))
