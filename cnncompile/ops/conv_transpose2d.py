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


GEMM_KERNELS = ("gemm_col2im", "gemm_interleave")  # packed weights, a columns scratch


def tiles_output(node):
    """Whether the kernel's taps tile the output without overlap or gaps: kernel == stride,
    no padding, no dilation, no output_padding. Input pixel (i, j) then owns the output block
    [i*s, i*s + s) x [j*s, j*s + s), tap (a, b) its pixel (i*s + a, j*s + b)."""
    a = node.attrs
    return (tuple(a["kernel_size"]) == tuple(a["stride"]) and not any(a["padding"])
            and all(d == 1 for d in a["dilation"]) and not any(a["output_padding"]))


@register
class ConvTranspose2d(Op):
    name = "conv_transpose2d"
    template = "conv_transpose2d.c.j2"
    # gemm_col2im: columns = W^T x (a GEMM of (K/g * kH * kW) x (C/g) weights by the input
    # read in place), then each column is added into the output at its kernel tap: col2im.
    # gemm_interleave: the same product where the kernel tiles the output (see tiles_output),
    # so that every output pixel takes exactly one column value: the columns are interleaved
    # into the output with the bias and the activation, one write per pixel
    kernels = {"direct": "conv_transpose2d.c.j2", "gemm_col2im": "conv_transpose2d_gemm.c.j2",
               "gemm_interleave": "conv_transpose2d_interleave.c.j2"}
    epilogue = True

    def supports(self, node, kernel):
        if kernel == "gemm_interleave":
            return tiles_output(node)
        return kernel in self.kernels

    def select_kernel(self, node, ins):
        # 2x2 kernels at stride 2, one thread, against gemm_col2im (its bias fill, its
        # scalar scatter-add and its separate activation pass go): 32 -> 16 channels on 7x7
        # 5.99 -> 5.57 us, with a sigmoid 9.29 -> 8.64; 16 -> 1 on 14x14 with a sigmoid
        # 4.13 -> 3.49
        return "gemm_interleave" if tiles_output(node) else "gemm_col2im"

    def pack(self, node):
        if node.meta.get("kernel") not in GEMM_KERNELS:
            return node.params
        from .conv import packed_params
        w = node.params["weight"]  # (C, K/g, kH, kW) -> per group, rows (k, kh, kw), columns c
        g = node.attrs["groups"]
        c, kg = w.shape[:2]
        wt = w.reshape(g, c // g, kg * w.shape[2] * w.shape[3]).transpose(0, 2, 1)
        return packed_params(node, wt.reshape(g * wt.shape[1], c // g), g)

    def scratch_floats(self, node, ins, out_shape):
        if node.meta.get("kernel") not in GEMM_KERNELS:
            return 0
        a = node.attrs
        return a["out_channels"] // a["groups"] * math.prod(a["kernel_size"]) * math.prod(ins[0].shape[2:])

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

    def lower(self, node, ins, out_shape):
        a = node.attrs
        _, c, h, w = ins[0].shape
        _, k, oh, ow = out_shape
        g = a["groups"]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (a["kernel_size"], a["stride"], a["padding"],
                                                  a["dilation"])
        from .common import parallel_worth_it
        from .conv import MR
        rows = k // g * kh * kw
        return dict(gemm_rows=rows, a_group=-(-rows // MR) * MR * (c // g),
                    parallel=int(parallel_worth_it(node)), out_vol=k * oh * ow,
                    groups=g, c_per_group=c // g, k_per_group=k // g, in_h=h, in_w=w,
                    in_plane=h * w, out_h=oh, out_w=ow, out_plane=oh * ow, kh=kh, kw=kw,
                    kernel_area=kh * kw, tap_plane=kh * kw * h * w, stride_h=sh, stride_w=sw,
                    dil_h=dh, dil_w=dw, pad_top=ph, pad_left=pw)
