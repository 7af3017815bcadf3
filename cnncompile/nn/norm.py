"""LayerNorm, GroupNorm and InstanceNorm1d/2d/3d, with torch's constructors and parameters."""
import numbers

import numpy as np

from . import functional as F
from .module import Module, Parameter

__all__ = ["LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]


def _affine(module, shape, weight=True, bias=True):
    """weight (ones) and bias (zeros) of ``shape``, registered as None when absent."""
    module.register_parameter("weight", Parameter(np.ones(shape, np.float32)) if weight else None)
    module.register_parameter("bias", Parameter(np.zeros(shape, np.float32)) if bias else None)


class LayerNorm(Module):
    op_name = "layer_norm"

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(d) for d in normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine(self, self.normalized_shape, elementwise_affine, elementwise_affine and bias)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    op_name = "group_norm"

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None,
                 *, bias=True):
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        _affine(self, (num_channels,), affine, affine and bias)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _InstanceNorm(Module):
    """Each sample's channels normalised by their own mean and variance; in eval() with
    track_running_stats=True, by the running statistics instead (as torch)."""
    op_name = "group_norm"
    rank = None  # spatial dimensions
    _optional_state = ("num_batches_tracked",)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _affine(self, (num_features,), affine, affine and bias)
        stats = track_running_stats
        self.register_buffer("running_mean", np.zeros(num_features, np.float32) if stats else None)
        self.register_buffer("running_var", np.ones(num_features, np.float32) if stats else None)
        self.register_buffer("num_batches_tracked", np.array(0, np.int64) if stats else None)

    def forward(self, input):
        ndim = input.dim() if hasattr(input, "dim") else np.ndim(input)
        if ndim != self.rank + 2:
            raise ValueError(f"{type(self).__name__}: expected a batched {self.rank + 2}-D input "
                             f"(N, C{', *' * self.rank}), got {ndim}-D; an unbatched input "
                             f"needs a batch dimension in front (x.unsqueeze(0))")
        if self.affine and input.shape[1] != self.num_features:
            raise ValueError(f"expected input's size at dim=1 to match num_features "
                             f"({self.num_features}), but got: {input.shape[1]}.")
        return F.instance_norm(input, self.running_mean, self.running_var, self.weight,
                               self.bias, self.training or not self.track_running_stats,
                               0.0 if self.momentum is None else self.momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    rank = 1


class InstanceNorm2d(_InstanceNorm):
    rank = 2


class InstanceNorm3d(_InstanceNorm):
    rank = 3
