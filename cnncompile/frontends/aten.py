"""ATen ops, as torch.export records them, -> cnncompile.nn calls.

One handler per ATen op (all overloads share it unless an overload is listed on its own),
with the op schema's own parameter names and defaults, so that the positional and keyword
arguments of an exported node bind to it as they do to the op. Handlers receive traced
Tensors for computed values and numpy arrays for the model's weights and buffers; torch.py
evaluates every node whose inputs are all constant with torch itself before it gets here.

Schemas: https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/native_functions.yaml
"""
import numpy as np

from .. import trace
from ..nn import functional as F
from ..nn.functional_resize import interpolate_from_aten
from ..nn.module import weight_array
from ..trace import Tensor

ATEN = {}  # "conv2d" or "upsample_bilinear2d.vec" -> handler
SKIPPED = frozenset(["_assert_tensor_metadata", "_assert_scalar", "_assert_async",
                     "sym_constrain_range", "sym_constrain_range_for_size",
                     "_functional_assert_async", "_functional_assert_scalar"])


def aten(*names):
    def register(fn):
        for name in names:
            ATEN[name] = fn
        return fn
    return register


def handler(packet, overload):
    """The handler of ``aten.<packet>.<overload>``, or None. In-place forms (relu_) compute
    the same value as their functional form."""
    for key in (f"{packet}.{overload}", packet, packet.rstrip("_")):
        if key in ATEN:
            return ATEN[key]
    return None


def constant(value, what):
    """A weight or buffer as float32, refusing one computed from the model's input."""
    return weight_array(value, what, "the exported module")


# -- layers ----------------------------------------------------------------------------------
@aten("conv1d", "conv2d", "conv3d")
def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    rank = np.ndim(weight) - 2
    return F.convolution(input, constant(weight, "convolution weight"),
                         constant(bias, "convolution bias"), stride, padding, dilation, groups,
                         rank=rank)


@aten("convolution", "_convolution")
def convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
                groups, *rest):
    if not transposed:
        return conv(input, weight, bias, stride, padding, dilation, groups)
    return conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation)


@aten("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                   dilation=1):
    if np.ndim(weight) != 4:
        return trace.record_unsupported(f"aten.conv_transpose{np.ndim(weight) - 2}d", [input])
    return F.conv_transpose2d(input, constant(weight, "weight"), constant(bias, "bias"), stride,
                              padding, output_padding, groups, dilation)


@aten("linear")
def linear(input, weight, bias=None):
    return F.linear(input, constant(weight, "linear weight"), constant(bias, "linear bias"))


@aten("mm", "matmul", "bmm")
def matmul(self, other):
    return F.matmul(self, other)


@aten("addmm")
def addmm(self, mat1, mat2, beta=1, alpha=1):
    if isinstance(mat2, Tensor) or isinstance(self, Tensor):
        return trace.record_unsupported("aten.addmm of computed tensors", [mat1])
    w = constant(mat2, "addmm weight").T * alpha
    return F.linear(mat1, np.ascontiguousarray(w), constant(self, "addmm bias") * beta)


@aten("batch_norm")
def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
               cudnn_enabled=True):
    if running_mean is None or running_var is None:
        return trace.record_unsupported(
            "BatchNorm without running statistics (track_running_stats=False)", [input],
            hint="it normalises with each batch's own statistics; cnncompile compiles "
                 "inference with fixed statistics: train with track_running_stats=True")
    return F.batch_norm(input, constant(running_mean, "running_mean"),
                        constant(running_var, "running_var"), constant(weight, "weight"),
                        constant(bias, "bias"), training, momentum, eps)


@aten("_native_batch_norm_legit_no_training")
def native_batch_norm(input, weight, bias, running_mean, running_var, momentum, eps):
    return (batch_norm(input, weight, bias, running_mean, running_var, False, momentum, eps),
            None, None)


@aten("_native_batch_norm_legit", "native_batch_norm")
def native_batch_norm_training(input, weight, bias, running_mean, running_var, training,
                               momentum, eps):
    return (batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps),
            None, None)


@aten("layer_norm")
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    return F.layer_norm(input, list(normalized_shape), constant(weight, "weight"),
                        constant(bias, "bias"), eps)


@aten("native_layer_norm")
def native_layer_norm(input, normalized_shape, weight, bias, eps):
    return layer_norm(input, normalized_shape, weight, bias, eps), None, None


@aten("group_norm")
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    return F.group_norm(input, num_groups, constant(weight, "weight"), constant(bias, "bias"),
                        eps)


@aten("native_group_norm")
def native_group_norm(input, weight, bias, N, C, HxW, group, eps):
    return group_norm(input, group, weight, bias, eps), None, None


@aten("instance_norm")
def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum,
                  eps, cudnn_enabled=True):
    return F.instance_norm(input, constant(running_mean, "running_mean"),
                           constant(running_var, "running_var"), constant(weight, "weight"),
                           constant(bias, "bias"), use_input_stats, momentum, eps)


@aten("dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout")
def dropout(input, p=0.5, train=False):
    return F.dropout(input, p, training=False)


@aten("native_dropout")
def native_dropout(input, p, train=None):
    return dropout(input, p), None


# -- pooling ---------------------------------------------------------------------------------
# output 1 is the maxima's indices, which no kernel computes: torch.py asks for them only if read
WITH_INDICES = frozenset(["max_pool1d_with_indices", "max_pool2d_with_indices",
                          "max_pool3d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d",
                          "adaptive_max_pool3d"])


@aten("max_pool1d", "max_pool2d", "max_pool3d")
def max_pool(self, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False,
             return_indices=False):
    fn = {1: "max_pool1d", 2: "max_pool2d", 3: "max_pool3d"}[self.dim() - 2]
    return getattr(F, fn)(self, kernel_size, stride or None, padding, dilation,
                          ceil_mode=ceil_mode, return_indices=return_indices)


@aten("max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices")
def max_pool_with_indices(self, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False,
                          return_indices=False):
    out = max_pool(self, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return out, (out if return_indices else None)


@aten("avg_pool1d", "avg_pool2d", "avg_pool3d")
def avg_pool(self, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None):
    fn = {1: "avg_pool1d", 2: "avg_pool2d", 3: "avg_pool3d"}[self.dim() - 2]
    args = (self, kernel_size, stride or None, padding, ceil_mode, count_include_pad)
    return getattr(F, fn)(*args) if fn == "avg_pool1d" else getattr(F, fn)(*args,
                                                                           divisor_override)


@aten("adaptive_avg_pool1d", "adaptive_avg_pool2d", "_adaptive_avg_pool2d",
      "adaptive_avg_pool3d", "_adaptive_avg_pool3d")
def adaptive_avg_pool(self, output_size):
    fn = {1: "adaptive_avg_pool1d", 2: "adaptive_avg_pool2d", 3: "adaptive_avg_pool3d"}
    return getattr(F, fn[self.dim() - 2])(self, list(output_size))


@aten("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")
def adaptive_max_pool(self, output_size, return_indices=False):
    fn = {1: "adaptive_max_pool1d", 2: "adaptive_max_pool2d", 3: "adaptive_max_pool3d"}
    out = getattr(F, fn[self.dim() - 2])(self, list(output_size), return_indices)
    return out, (out if return_indices else None)


# -- resizing --------------------------------------------------------------------------------
def _upsample(name):
    def fn(self, output_size, *args, **kwargs):  # the schema's order: align_corners, scales
        return interpolate_from_aten(name, self, output_size, *args, *kwargs.values())
    return fn


for _mode, _ranks in (("nearest", "123"), ("_nearest_exact", "123"), ("linear", "1"),
                      ("bilinear", "2"), ("trilinear", "3")):
    for _rank in _ranks:
        _op = f"{'_upsample' if _mode[0] == '_' else 'upsample_'}{_mode.lstrip('_')}{_rank}d"
        for _overload in ("vec", "default"):
            aten(f"{_op}.{_overload}")(_upsample(f"{_op}.{_overload}"))


@aten("pixel_shuffle")
def pixel_shuffle(self, upscale_factor):
    return F.pixel_shuffle(self, upscale_factor)


@aten("pixel_unshuffle")
def pixel_unshuffle(self, downscale_factor):
    return F.pixel_unshuffle(self, downscale_factor)


@aten("channel_shuffle", "native_channel_shuffle")
def channel_shuffle(self, groups):
    return F.channel_shuffle(self, groups)


# -- padding ---------------------------------------------------------------------------------
@aten("constant_pad_nd")
def constant_pad_nd(self, pad, value=0):
    return F.pad(self, list(pad), "constant", float(value))


@aten("pad")
def pad(self, pad, mode="constant", value=None):
    return F.pad(self, list(pad), mode, value)


def _pad_mode(mode):
    def fn(self, padding):
        return F.pad(self, list(padding), mode)
    return fn


for _rank in (1, 2, 3):
    aten(f"reflection_pad{_rank}d")(_pad_mode("reflect"))
    aten(f"replication_pad{_rank}d")(_pad_mode("replicate"))
    aten(f"circular_pad{_rank}d", "_pad_circular")(_pad_mode("circular"))


# -- softmax ---------------------------------------------------------------------------------
@aten("softmax", "_softmax")
def softmax(self, dim, dtype=None):
    return F.softmax(self, dim)


@aten("log_softmax", "_log_softmax")
def log_softmax(self, dim, dtype=None):
    return F.log_softmax(self, dim)
