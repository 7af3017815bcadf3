"""The elementwise layers of torch.nn beyond the activation.py ones: Mish, Softplus."""
from . import functional as F
from .module import Module


class Mish(Module):
    op_name = "mish"

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.mish(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Softplus(Module):
    op_name = "softplus"

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"
