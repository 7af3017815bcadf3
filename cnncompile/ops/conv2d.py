"""Conv2d: y[k] = b[k] + sum over the group's input channels of w[k, c] (*) x[c]."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ShapeError, UnsupportedError
from ..ir import layer_error
from . import Op, register
from .common import describe_source, out_size


def conv_pads(attrs):
    """(top, left, bottom, right). 'same' puts the odd pixel at the bottom/right, as torch does."""
    padding = attrs["padding"]
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        (kh, kw), (dh, dw) = attrs["kernel_size"], attrs["dilation"]
        th, tw = dh * (kh - 1), dw * (kw - 1)
        return (th // 2, tw // 2, th - th // 2, tw - tw // 2)
    return (padding[0], padding[1], padding[0], padding[1])


@register
class Conv2d(Op):
    name = "conv2d"
    template = "conv2d.c.j2"
    epilogue = True

    def check_attrs(self, node):
        if node.attrs["padding_mode"] != "zeros":
            raise layer_error(node, f"Conv2d padding_mode={node.attrs['padding_mode']!r} is not "
                              "supported yet; use padding_mode='zeros'", UnsupportedError)

    def infer_shape(self, node, ins):
        a, x = node.attrs, ins[0]
        k, c, groups = a["out_channels"], a["in_channels"], a["groups"]
        (kh, kw), (sh, sw), (dh, dw) = a["kernel_size"], a["stride"], a["dilation"]
        if min(sh, sw) <= 0 or min(dh, dw) <= 0:
            raise layer_error(node, f"Conv2d stride {a['stride']} and dilation {a['dilation']} "
                              "must be positive")
        self.check_attrs(node)
        if len(x.shape) != 4:
            raise layer_error(node, f"Conv2d expects a 4-D input (N, C, H, W) but receives "
                              f"{len(x.shape)}-D {describe_source(x)}", ShapeError)
        if x.shape[1] != c:
            raise layer_error(node, f"Conv2d expects {c} input channels but receives "
                              f"{x.shape[1]} {describe_source(x)}; use "
                              f"nn.Conv2d({x.shape[1]}, {k}, ...)", ShapeError)
        w = node.params["weight"]
        if w.shape != (k, c // groups, kh, kw):
            raise layer_error(node, f"Conv2d weight has shape {w.shape}, expected "
                              f"{(k, c // groups, kh, kw)}", ShapeError)
        if "bias" in node.params and node.params["bias"].shape != (k,):
            raise layer_error(node, f"Conv2d bias has shape {node.params['bias'].shape}, "
                              f"expected ({k},)", ShapeError)
        pt, pl, pb, pr = conv_pads(a)
        h, wd = x.shape[2], x.shape[3]
        eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        if eh > h + pt + pb or ew > wd + pl + pr:
            span = f" (dilation {dh}x{dw}, so it spans {eh}x{ew})" if (dh, dw) != (1, 1) else ""
            raise layer_error(node, f"Conv2d kernel {kh}x{kw}{span} is larger than its padded "
                              f"input {h + pt + pb}x{wd + pl + pr} ({h}x{wd} "
                              f"{describe_source(x, shape=False)} plus padding {pt + pb},{pl + pr}); "
                              "use a smaller kernel, more padding, or a larger input_shape",
                              ShapeError)
        return (x.shape[0], k, out_size(h, pt + pb, eh, sh), out_size(wd, pl + pr, ew, sw))

    def reference(self, node, arrays):
        a = node.attrs
        x = arrays[0].astype(np.float64)
        w = node.params["weight"].astype(np.float64)
        (kh, kw), (sh, sw), (dh, dw), g = a["kernel_size"], a["stride"], a["dilation"], a["groups"]
        pt, pl, pb, pr = conv_pads(a)
        n, c = x.shape[:2]
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
        win = win[:, :, ::sh, ::sw, ::dh, ::dw]
        oh, ow = win.shape[2:4]
        win = win.reshape(n, g, c // g, oh, ow, kh, kw)
        wg = w.reshape(g, w.shape[0] // g, c // g, kh, kw)
        y = np.einsum("ngchwij,gkcij->ngkhw", win, wg, optimize=True).reshape(n, -1, oh, ow)
        if "bias" in node.params:
            y += node.params["bias"].astype(np.float64)[None, :, None, None]
        return y.astype(np.float32)

    def flops(self, node, ins, out_shape):
        a = node.attrs
        kh, kw = a["kernel_size"]
        macs = out_shape[1] * out_shape[2] * out_shape[3] * (a["in_channels"] // a["groups"]) * kh * kw
        return 2 * macs

    def lower(self, node, ins, out_shape):
        a = node.attrs
        _, c, h, w = ins[0].shape
        _, k, oh, ow = out_shape
        (kh, kw), (sh, sw), (dh, dw), g = a["kernel_size"], a["stride"], a["dilation"], a["groups"]
        pt, pl, _, _ = conv_pads(a)
        return dict(groups=g, c_per_group=c // g, k_per_group=k // g, in_h=h, in_w=w,
                    in_plane=h * w, out_h=oh, out_w=ow, out_plane=oh * ow, kh=kh, kw=kw,
                    kernel_area=kh * kw, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw,
                    pad_top=pt, pad_left=pl)
