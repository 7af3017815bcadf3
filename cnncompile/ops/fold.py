"""Unfold (im2col) and Fold (col2im), as torch.nn.Unfold/Fold: Unfold turns (N, C, H, W) into
(N, C * kH * kW, L) sliding blocks; Fold sums such blocks back into (N, C, H, W)."""
import math

import numpy as np

from ..errors import ShapeError, layer_error
from . import Op, register
from .common import describe_source, out_size


def blocks(size, attrs):
    """Number of sliding blocks along each spatial dimension of ``size``."""
    return [out_size(s, 2 * p, d * (k - 1) + 1, st) for s, k, d, p, st in
            zip(size, attrs["kernel_size"], attrs["dilation"], attrs["padding"], attrs["stride"])]


def _lower(attrs, plane_h, plane_w, bh, bw, channels):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (attrs["kernel_size"], attrs["stride"],
                                              attrs["padding"], attrs["dilation"])
    return dict(channels=channels, kh=kh, kw=kw, stride_h=sh, stride_w=sw, pad_top=ph,
                pad_left=pw, dil_h=dh, dil_w=dw, img_h=plane_h, img_w=plane_w,
                img_plane=plane_h * plane_w, img_vol=channels * plane_h * plane_w, blocks_h=bh, blocks_w=bw, n_blocks=bh * bw)


def _check(node, attrs):
    if min(attrs["kernel_size"] + attrs["stride"] + attrs["dilation"]) <= 0 or min(attrs["padding"]) < 0:
        raise layer_error(node, f"{node.op}: kernel_size, stride and dilation must be positive, "
                          "padding not negative")


@register
class Unfold(Op):
    name = "unfold"
    template = "unfold.c.j2"

    def infer_shape(self, node, ins):
        a, x = node.attrs, ins[0]
        _check(node, a)
        if len(x.shape) != 4:
            raise layer_error(node, f"Unfold expects a 4-D input (N, C, H, W) but receives "
                              f"{len(x.shape)}-D {describe_source(x)}", ShapeError)
        bh, bw = blocks(x.shape[2:], a)
        if bh <= 0 or bw <= 0:
            raise layer_error(node, f"Unfold kernel {a['kernel_size']} does not fit its input "
                              f"{x.shape[2]}x{x.shape[3]} with padding {a['padding']}", ShapeError)
        return (x.shape[0], x.shape[1] * math.prod(a["kernel_size"]), bh * bw)

    def reference(self, node, arrays):
        a = node.attrs
        x = arrays[0]
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (a["kernel_size"], a["stride"], a["padding"],
                                                  a["dilation"])
        bh, bw = blocks((h, w), a)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        cols = np.empty((n, c, kh, kw, bh, bw), np.float32)
        for i in range(kh):
            for j in range(kw):
                cols[:, :, i, j] = xp[:, :, i * dh:i * dh + (bh - 1) * sh + 1:sh,
                                      j * dw:j * dw + (bw - 1) * sw + 1:sw]
        return cols.reshape(n, c * kh * kw, bh * bw)

    def lower(self, node, ins, out_shape):
        _, c, h, w = ins[0].shape
        return _lower(node.attrs, h, w, *blocks((h, w), node.attrs), c)


@register
class Fold(Op):
    name = "fold"
    template = "fold.c.j2"

    def infer_shape(self, node, ins):
        a, x = node.attrs, ins[0]
        _check(node, a)
        area = math.prod(a["kernel_size"])
        if len(x.shape) != 3:
            raise layer_error(node, f"Fold expects a 3-D input (N, C * kH * kW, L) but receives "
                              f"{len(x.shape)}-D {describe_source(x)}", ShapeError)
        if x.shape[1] % area:
            raise layer_error(node, f"Fold: input channels {x.shape[1]} must be a multiple of "
                              f"kernel_size {a['kernel_size']} = {area}", ShapeError)
        bh, bw = blocks(a["output_size"], a)
        if bh * bw != x.shape[2]:
            raise layer_error(node, f"Fold: output_size {a['output_size']} with these settings "
                              f"has {bh} x {bw} = {bh * bw} blocks but the input has "
                              f"{x.shape[2]} {describe_source(x)}", ShapeError)
        return (x.shape[0], x.shape[1] // area) + tuple(a["output_size"])

    def reference(self, node, arrays):
        a = node.attrs
        x = arrays[0].astype(np.float64)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (a["kernel_size"], a["stride"], a["padding"],
                                                  a["dilation"])
        h, w = a["output_size"]
        n = x.shape[0]
        c = x.shape[1] // (kh * kw)
        bh, bw = blocks((h, w), a)
        cols = x.reshape(n, c, kh, kw, bh, bw)
        out = np.zeros((n, c, h + 2 * ph + sh + dh * kh, w + 2 * pw + sw + dw * kw))
        for i in range(kh):
            for j in range(kw):
                out[:, :, i * dh:i * dh + (bh - 1) * sh + 1:sh,
                    j * dw:j * dw + (bw - 1) * sw + 1:sw] += cols[:, :, i, j]
        return out[:, :, ph:ph + h, pw:pw + w].astype(np.float32)

    def lower(self, node, ins, out_shape):
        h, w = node.attrs["output_size"]
        return _lower(node.attrs, h, w, *blocks((h, w), node.attrs), out_shape[1])
