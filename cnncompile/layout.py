"""How a tensor is laid out in memory, as the kernels and the memory planner see it.

Planes (NCHW): channel after channel, each an H x W plane. Channel blocks (NCHW16c, oneDNN's
nChw16c, ONNX Runtime's NCHWc): ceil(C / BLOCK) blocks of H x W pixels of BLOCK channels,
the channels past C zero, so that one vector holds a pixel's channels of a block.
"""
import math

PLANES = "nchw"
BLOCKS = "nchw16c"

BLOCK = 16  # channels per block: CNN_CB in runtime/cnn_nchw16c.h


def blocks(channels):
    return -(-channels // BLOCK)


def floats(shape):
    """Floats per sample of a blocked tensor of ``shape`` (N, C, *spatial)."""
    return blocks(shape[1]) * BLOCK * math.prod(shape[2:])


def fills_blocks(channels):
    """Whether ``channels`` fill their blocks to 4/5 or more: each padding channel costs a
    blocked kernel as much as a real one."""
    return 4 * blocks(channels) * BLOCK <= 5 * channels
