"""Activation layers, with torch.nn's constructor signatures and reprs."""
from . import functional as F
from .module import Module


class _Inplace(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    op_name = "relu"

    def forward(self, x):
        return F.relu(x)


class ReLU6(_Inplace):
    op_name = "relu6"

    def forward(self, x):
        return F.relu6(x)


class SiLU(_Inplace):
    op_name = "silu"

    def forward(self, x):
        return F.silu(x)


class Hardswish(_Inplace):
    op_name = "hardswish"

    def forward(self, x):
        return F.hardswish(x)

    def extra_repr(self):
        return ""


class Hardsigmoid(Hardswish):
    op_name = "hardsigmoid"

    def forward(self, x):
        return F.hardsigmoid(x)


class Sigmoid(Module):
    op_name = "sigmoid"

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    op_name = "tanh"

    def forward(self, x):
        return F.tanh(x)


class LeakyReLU(Module):
    op_name = "leaky_relu"

    def __init__(self, negative_slope=1e-2, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    op_name = "elu"

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Hardtanh(Module):
    op_name = "hardtanh"

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if max_val <= min_val:
            raise ValueError("Hardtanh: max_val must be greater than min_val")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self):
        return (f"min_val={self.min_val}, max_val={self.max_val}"
                + (", inplace=True" if self.inplace else ""))


class GELU(Module):
    op_name = "gelu"

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    op_name = "softmax"

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    op_name = "log_softmax"

    def forward(self, x):
        return F.log_softmax(x, self.dim)
