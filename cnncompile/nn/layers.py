"""The layers of torch.nn that cnncompile compiles, with torch's constructor signatures.

Each layer's forward() calls the functional form in functional.py, so a layer and its
functional call trace to the same graph op.
"""
import math

from . import functional as F
from . import init
from .module import Module, Parameter


def _tuple(value, rank, name, layer):
    if isinstance(value, int):
        return (value,) * rank
    if isinstance(value, (tuple, list)) and len(value) == rank and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise ValueError(f"{layer}: {name} must be an int or a tuple of {rank} ints, got {value!r}")


def _init_weight_and_bias(layer, shape, fan_in, bias, out_channels=None):
    """torch's reset_parameters: both U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias per output."""
    bound = init.fan_in_bound(fan_in)
    layer.weight = Parameter(init.uniform(shape, bound))
    if bias:
        layer.bias = Parameter(init.uniform((out_channels or shape[0],), bound))
    else:
        layer.register_parameter("bias", None)


class _ConvNd(Module):
    """Convolution over ``rank`` spatial dimensions, torch.nn.Conv{1,2,3}d's signature and
    parameter layout (out_channels, in_channels/groups, *kernel_size)."""
    rank = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        name, rank = type(self).__name__, self.rank
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{name}: padding_mode must be one of 'zeros', 'reflect', "
                             f"'replicate', 'circular', got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, rank, "kernel_size", name)
        self.stride = _tuple(stride, rank, "stride", name)
        self.dilation = _tuple(dilation, rank, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of "
                                 "'valid', 'same'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 "convolutions; give the padding as numbers")
            self.padding = padding
        else:
            self.padding = _tuple(padding, rank, "padding", name)
        self.padding_mode = padding_mode
        _init_weight_and_bias(self, (out_channels, in_channels // groups) + self.kernel_size,
                              in_channels // groups * math.prod(self.kernel_size), bias)

    def forward(self, x):
        return F.convolution(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                             self.groups, self.padding_mode, rank=self.rank)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self.rank:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.rank:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    op_name = "conv1d"
    rank = 1


class Conv2d(_ConvNd):
    op_name = "conv2d"
    rank = 2


class Conv3d(_ConvNd):
    op_name = "conv3d"
    rank = 3


class ConvTranspose2d(Module):
    """Transposed 2-D convolution, torch.nn.ConvTranspose2d's signature and weight layout
    (in_channels, out_channels/groups, kH, kW)."""
    op_name = "conv_transpose2d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only 'zeros' padding mode is supported for "
                             "ConvTranspose2d")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, 2, "kernel_size", name)
        self.stride = _tuple(stride, 2, "stride", name)
        self.padding = _tuple(padding, 2, "padding", name)
        self.output_padding = _tuple(output_padding, 2, "output_padding", name)
        self.dilation = _tuple(dilation, 2, "dilation", name)
        self.padding_mode = padding_mode
        # torch's fan_in for a transposed conv: weight.size(1) * kernel area
        _init_weight_and_bias(self, (in_channels, out_channels // groups) + self.kernel_size,
                              out_channels // groups * math.prod(self.kernel_size), bias,
                              out_channels)

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Unfold(Module):
    op_name = "unfold"

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, x):
        return F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Module):
    op_name = "fold"

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, x):
        return F.fold(x, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")


class Linear(Module):
    """y = x W^T + b, torch.nn.Linear's signature and weight layout (out_features, in_features)."""
    op_name = "linear"


    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        _init_weight_and_bias(self, (out_features, in_features), in_features, bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    op_name = "flatten"

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
