"""1-D and 3-D pooling: MaxPool, AvgPool, AdaptiveAvgPool, AdaptiveMaxPool over (N, C, L) and
(N, C, D, H, W). They are the table-driven pools of ops/window_pool.py at another rank, and
share one template, window_pool_3d.c.j2, in which a 1-D pool has depth and height 1.

Average pooling takes a dilation too (ONNX AveragePool has one since opset 19; torch's has
none, so its functional forms leave it at 1): the window's taps are dilation apart, and its
divisor counts the taps inside the padded input (count_include_pad) or inside the input.
"""
from . import register
from .window_pool import Adaptive, Pool

TEMPLATE = "window_pool_3d.c.j2"


@register
class MaxPool1d(Pool):
    name = "max_pool1d"
    what = "MaxPool1d"
    template = TEMPLATE
    mode = "max"
    rank = 1


@register
class MaxPool3d(MaxPool1d):
    name = "max_pool3d"
    what = "MaxPool3d"
    rank = 3


@register
class AvgPool1d(Pool):
    name = "avg_pool1d"
    what = "AvgPool1d"
    template = TEMPLATE
    rank = 1


@register
class AvgPool3d(AvgPool1d):
    name = "avg_pool3d"
    what = "AvgPool3d"
    rank = 3


@register
class AdaptiveAvgPool1d(Adaptive):
    name = "adaptive_avg_pool1d"
    what = "AdaptiveAvgPool1d"
    template = TEMPLATE
    rank = 1


@register
class AdaptiveAvgPool3d(AdaptiveAvgPool1d):
    name = "adaptive_avg_pool3d"
    what = "AdaptiveAvgPool3d"
    rank = 3


@register
class AdaptiveMaxPool1d(AdaptiveAvgPool1d):
    name = "adaptive_max_pool1d"
    what = "AdaptiveMaxPool1d"
    mode = "max"


@register
class AdaptiveMaxPool3d(AdaptiveMaxPool1d):
    name = "adaptive_max_pool3d"
    what = "AdaptiveMaxPool3d"
    rank = 3
