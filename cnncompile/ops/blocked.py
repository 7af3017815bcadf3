"""Convolutions on channel-blocked tensors (runtime/cnn_nchwc.h): which layers they compute,
their weights packed in blocks, and the constants their templates receive.

A blocked tensor of C channels and P pixels is ceil(C / BLOCK) blocks of P pixels of BLOCK
channels, the padding channels zero (oneDNN's nChw16c, ONNX Runtime's NCHWc).
passes/select_layout.py chooses the layers that run on it and puts reorders around them.
"""
import numpy as np

from . import conv  # conv.py imports this module: names are read at call time

BLOCK = 16  # CNN_CB in runtime/cnn_nchwc.h
KERNELS = ("pointwise_nchwc", "depthwise_nchwc")  # blocks in, blocks out
ENTRY = "shifted_nchwc"  # planes in, blocks out: a convolution feeding a blocked run
# ... chosen for the layer before a run when its weights per output block pair stay in L1
# (a network's stem: 3 channels x 3 x 3 taps); larger ones keep shifted_gemm and a reorder
ENTRY_MAX_TAPS = 256
ALL = KERNELS + (ENTRY,)  # every kernel whose output is blocked


def blocks(channels):
    return -(-channels // BLOCK)


def floats(shape):
    """Floats per sample of a blocked tensor of ``shape`` (N, C, *spatial)."""
    return blocks(shape[1]) * BLOCK * int(np.prod(shape[2:], dtype=np.int64))


def supports(node, kernel):
    a = node.attrs
    if len(a["kernel_size"]) != 2 or node.meta.get("activation", {}).get("fn") \
            not in conv.GEMM_ACTIVATIONS:
        return False
    if kernel == "depthwise_nchwc":
        return a["in_channels"] == a["groups"] == a["out_channels"]
    if kernel == ENTRY:
        return a["groups"] == 1 and "residual" not in node.meta
    return (a["groups"] == 1 and tuple(a["kernel_size"]) == (1, 1) and tuple(a["stride"]) == (1, 1)
            and conv.conv_pads(a) == [(0, 0), (0, 0)])


def _padded_bias(node, channels):
    if "bias" not in node.params:
        return {}
    b = np.zeros(blocks(channels) * BLOCK, np.float32)
    b[:channels] = node.params["bias"]
    return {"bias": b}


def _inner(node):
    """Values per output channel in the packed weights: pointwise, the input channels padded
    to whole blocks; depthwise, the taps; shifted_nchwc, input channels x taps."""
    w = node.params["weight"]
    return {"pointwise_nchwc": blocks(w.shape[1]) * BLOCK,
            "depthwise_nchwc": int(np.prod(w.shape[2:])),
            ENTRY: int(np.prod(w.shape[1:]))}[node.meta["kernel"]]


def pack(node):
    """w[out block][inner][16]: pointwise inner = input channel, depthwise = kh * kw + kw,
    shifted_nchwc = (c * kh + kh) * kw + kw; zeros past the real channels."""
    w = node.params["weight"]
    k, cols, inner = w.shape[0], int(np.prod(w.shape[1:])), _inner(node)
    p = np.zeros((blocks(k) * BLOCK, inner), np.float32)
    p[:k, :cols] = w.reshape(k, cols)
    packed = p.reshape(blocks(k), BLOCK, inner).transpose(0, 2, 1)
    return dict(node.params, weight=np.ascontiguousarray(packed), **_padded_bias(node, k))


def packed_shapes(node):
    k = node.params["weight"].shape[0]
    shapes = {"weight": (blocks(k), _inner(node), BLOCK)}
    if "bias" in node.params:
        shapes["bias"] = (blocks(k) * BLOCK,)
    return shapes


def lower(node, ins):
    """What the blocked templates add to the conv's constants. by_output: a pointwise layer
    whose weights outweigh its image loops over output blocks outermost, so that each block's
    weights are read once rather than once per pixel tile (MobileNetV2's 7x7 layers: 960 ->
    320 channels streamed 1.2 MB of weights per 8 pixels)."""
    a = node.attrs
    act = conv.GEMM_ACTIVATIONS[node.meta.get("activation", {}).get("fn")]
    plane = int(np.prod(node.meta["shape"][2:]))
    return dict(in_blocks=blocks(a["in_channels"]), out_blocks=blocks(a["out_channels"]),
                blocked_act=act, by_output=plane < a["out_channels"])
