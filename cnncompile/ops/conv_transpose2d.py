"""ConvTranspose2d: the adjoint of a strided conv. Each input pixel scatters its kernel-weighted
value into the output; output size (H - 1) * stride - 2 * padding + dilation * (k - 1)
+ output_padding + 1, as the torch.nn.ConvTranspose2d documentation gives it."""
import math

import numpy as np

from ..errors import ShapeError, layer_error
from . import Op, register
from .common import describe_source


def transposed_size(size, k, s, p, d, op):
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


@register
class ConvTranspose2d(Op):
    name = "conv_transpose2d"
    epilogue = True  # kernels: cnncompile/kernels/conv_transpose.py

    def infer_shape(self, node, ins):
        a, x = node.attrs, ins[0]
        c, k, g = a["in_channels"], a["out_channels"], a["groups"]
        kernel, stride, pad = a["kernel_size"], a["stride"], a["padding"]
        dil, opad = a["dilation"], a["output_padding"]
        if min(stride) <= 0 or min(dil) <= 0 or min(pad) < 0 or min(opad) < 0:
            raise layer_error(node, f"ConvTranspose2d stride {stride} and dilation {dil} must "
                              f"be positive, padding {pad} and output_padding {opad} not negative")
        for o, s, d in zip(opad, stride, dil):
            if o >= s and o >= d:
                raise layer_error(node, f"ConvTranspose2d output_padding {opad} must be smaller "
                                  f"than either stride {stride} or dilation {dil}")
        if len(x.shape) != 4:
            raise layer_error(node, f"ConvTranspose2d expects a 4-D input (N, C, H, W) but "
                              f"receives {len(x.shape)}-D {describe_source(x)}", ShapeError)
        if x.shape[1] != c:
            raise layer_error(node, f"ConvTranspose2d expects {c} input channels but receives "
                              f"{x.shape[1]} {describe_source(x)}; use "
                              f"nn.ConvTranspose2d({x.shape[1]}, {k}, ...)", ShapeError)
        w = node.params["weight"]
        if w.shape != (c, k // g) + tuple(kernel):
            raise layer_error(node, f"ConvTranspose2d weight has shape {w.shape}, expected "
                              f"{(c, k // g) + tuple(kernel)}", ShapeError)
        out = [transposed_size(*args) for args in zip(x.shape[2:], kernel, stride, pad, dil, opad)]
        if min(out) <= 0:
            raise layer_error(node, f"ConvTranspose2d output would be {out[0]}x{out[1]} for "
                              f"input {x.shape[2]}x{x.shape[3]}: padding {pad} is too large",
                              ShapeError)
        return (x.shape[0], k) + tuple(out)

    def reference(self, node, arrays):
        a = node.attrs
        x = arrays[0].astype(np.float64)
        w = node.params["weight"].astype(np.float64)
        (kh, kw), (sh, sw), (ph, pw) = a["kernel_size"], a["stride"], a["padding"]
        (dh, dw), g = a["dilation"], a["groups"]
        n, c, h, wd = x.shape
        k = a["out_channels"]
        oh, ow = (transposed_size(*t) for t in zip((h, wd), (kh, kw), (sh, sw), (ph, pw),
                                                     (dh, dw), a["output_padding"]))
        full = np.zeros((n, k, oh + 2 * ph + sh + dh * kh, ow + 2 * pw + sw + dw * kw))
        xg = x.reshape(n, g, c // g, h, wd)
        wg = w.reshape(g, c // g, k // g, kh, kw)
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("ngchw,gck->ngkhw", xg, wg[:, :, :, i, j]).reshape(n, k, h, wd)
                full[:, :, i * dh:i * dh + (h - 1) * sh + 1:sh,
                     j * dw:j * dw + (wd - 1) * sw + 1:sw] += contrib
        y = full[:, :, ph:ph + oh, pw:pw + ow]
        if "bias" in node.params:
            y = y + node.params["bias"].astype(np.float64)[None, :, None, None]
        return y.astype(np.float32)

    def flops(self, node, ins, out_shape):
        a = node.attrs
        return 2 * math.prod(ins[0].shape[1:]) * (a["out_channels"] // a["groups"]) * math.prod(
            a["kernel_size"])
