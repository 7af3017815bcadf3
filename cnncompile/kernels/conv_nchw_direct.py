"""Convolutions on planes without a matrix product: the direct loop nest (any rank), the
taps kernel for layers of very few taps, and the two depthwise kernels."""
from .conv_base import CONV_OPS, ConvKernel, is_depthwise
from .gemm import gemm_shape
from .phases import shifted_extra, shifted_layout

# Layers with at most this many taps (in_channels x kernel area) skip the GEMM, whose
# micro-kernel would store its whole tile of C every few multiply-adds
TAPS_MAX = 4
# depthwise_planes keeps a channel's padded planes and sums on each thread's stack
DEPTHWISE_STACK_FLOATS = 1 << 15  # 128 KiB
# depthwise kernels take several times longer per FLOP than the GEMM: their layers are worth
# threads at that fraction of the GEMM's FLOP threshold
DEPTHWISE_SLOWDOWN = 8


class Direct(ConvKernel):
    """Loops over outputs and taps; the only kernel for 3-D convolutions."""
    name = "nchw.direct"
    ops = CONV_OPS + ("conv3d",)
    template = "conv.c.j2"

    def applies(self, node):
        return True


class Taps(ConvKernel):
    """Each tap a multiply-add of a shifted phase plane into the output planes."""
    name = "nchw.taps"
    template = "conv_taps.c.j2"

    def applies(self, node):
        return super().applies(node) and node.attrs["groups"] == 1

    def preferred(self, node, ins):
        return gemm_shape(node, node.meta["shape"])[1] <= TAPS_MAX

    def scratch(self, node, ins, out_shape):  # the phase planes
        return shifted_layout(node, ins[0].shape, out_shape)["c_offset"]

    def extra(self, node, ins, out_shape):
        return shifted_extra(node, ins, out_shape)


class DepthwiseRows(ConvKernel):
    """One channel at a time, along output rows."""
    name = "nchw.depthwise_rows"
    template = "conv_depthwise.c.j2"
    slowdown = DEPTHWISE_SLOWDOWN

    def applies(self, node):
        return super().applies(node) and node.attrs["in_channels"] == node.attrs["groups"]

    def preferred(self, node, ins):
        return is_depthwise(node)


class DepthwisePlanes(DepthwiseRows):
    """One channel at a time from its padded phase planes on the stack, every output pixel
    a run of vector multiply-adds. Stride 1 only: splitting a plane into phases costs more
    than it saves."""
    name = "nchw.depthwise_planes"
    template = "conv_depthwise_planes.c.j2"

    def applies(self, node):
        return super().applies(node) and planes_floats(node) <= DEPTHWISE_STACK_FLOATS

    def preferred(self, node, ins):
        return is_depthwise(node) and all(s == 1 for s in node.attrs["stride"])

    def extra(self, node, ins, out_shape):
        return shifted_extra(node, ins, out_shape)


def planes_floats(node):
    """Stack floats of depthwise_planes: one channel's phase planes and its grid."""
    sh = shifted_layout(node, node.meta["in_shapes"][0], node.meta["shape"])
    return sh["planes_floats"] + sh["grid"]
