"""BatchNorm2d and the layers that do nothing at inference (Dropout, Identity)."""
import numpy as np

from . import functional as F
from .module import Module, Parameter


class BatchNorm2d(Module):
    """Compiled with its running statistics, as torch computes it in eval() mode."""
    op_name = "batch_norm"
    _optional_state = ("num_batches_tracked",)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, np.float32))
            if bias:
                self.bias = Parameter(np.zeros(num_features, np.float32))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, np.float32))
            self.register_buffer("running_var", np.ones(num_features, np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, momentum=self.momentum, eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class Identity(Module):
    op_name = "identity"

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return F.identity(x)


class Dropout(Module):
    """Dropout is the identity at inference, which is what cnncompile compiles."""
    op_name = "identity"

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x):
        return F.identity(x, kind=type(self).__name__)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(Dropout):
    pass


class Dropout2d(Dropout):
    pass


class Dropout3d(Dropout):
    pass


class AlphaDropout(Dropout):
    pass
