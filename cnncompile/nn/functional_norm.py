"""torch.nn.functional's normalisations by a sample's own statistics: layer_norm, group_norm,
instance_norm (group_norm with a group per channel, or batch_norm with running statistics)."""
import numbers

import numpy as np

from .. import trace
from .module import weight_array

__all__ = ["layer_norm", "group_norm", "instance_norm"]


_const = weight_array


def _affine(op, weight, bias):
    params = {"weight": _const(weight, "weight", op), "bias": _const(bias, "bias", op)}
    return {k: v for k, v in params.items() if v is not None}


def _shape(input):
    return tuple(input.shape) if isinstance(input, trace.Tensor) else np.shape(input)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05):
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    attrs = {"normalized_shape": tuple(int(d) for d in normalized_shape), "eps": float(eps)}
    return trace.apply("layer_norm", [input], attrs, _affine("layer_norm", weight, bias))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05):
    attrs = {"num_groups": int(num_groups), "eps": float(eps)}
    return trace.apply("group_norm", [input], attrs, _affine("group_norm", weight, bias))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-05):
    """Each sample's channels normalised by their own statistics (use_input_stats), else by
    the running statistics, as batch_norm at inference."""
    shape = _shape(input)
    if len(shape) < 2:
        raise ValueError(f"instance_norm: expected an (N, C, *) input, got shape {shape}")
    if use_input_stats:
        if np.prod(shape[2:]) == 1:  # as torch: the variance of one value says nothing
            raise ValueError(f"Expected more than 1 spatial element when training, got input "
                             f"size {shape}")
        return group_norm(input, shape[1], weight, bias, eps)
    if running_mean is None or running_var is None:
        raise ValueError("instance_norm: expected running_mean and running_var to be defined "
                         "when use_input_stats is false")
    params = {"running_mean": _const(running_mean, "running_mean", "instance_norm"),
              "running_var": _const(running_var, "running_var", "instance_norm")}
    params.update(_affine("instance_norm", weight, bias))
    attrs = {"num_features": int(params["running_mean"].shape[0]), "eps": float(eps)}
    return trace.apply("batch_norm", [input], attrs, params)

