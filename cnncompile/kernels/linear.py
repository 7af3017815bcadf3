"""Linear layers: their weights read as rows (small layers), or in blocks of 16 outputs as a
1x1 convolution's (large ones, whose weights stream from L3 or memory on every call). Both
compute a group of samples at once as the lanes of a vector (runtime/cnn_linear.h)."""
from ..layout import BLOCK, blocks
from ..ops.common import parallel_worth_it
from .base import Kernel
from .conv_nchw16c import pack_rows, packed_rows_shapes
from .gemm import activation_code

LANES = BLOCK  # samples a vector holds in the group path (CNN_CB)
# output rows whose sums share each load of x: independent chains of vector sums
ROW_UNROLL = 4
# weights from this size on are read in blocks of 16 outputs: past the L2 a stream of blocks
# reads as fast as a plain copy, rows 16 floats at a time from four rows slower
BLOCKS_MIN_BYTES = 1 << 20
# output blocks a step of nc.linear_blocks computes, each x[i] broadcast against them
BLOCKS_NB = 4


class LinearKernel(Kernel):
    ops = ("linear",)
    template = "linear.c.j2"

    def blocked_path(self, node):
        """The constants of the blocked path, or None."""
        return None

    def lower(self, node, ins, out_shape):
        fout = node.attrs["out_features"]
        blocked = self.blocked_path(node)
        return dict(in_features=node.attrs["in_features"], out_features=fout,
                    rows=dict(unroll=ROW_UNROLL, blocks=-(-fout // ROW_UNROLL)),
                    blocks=blocked, blocked=int(blocked is not None),
                    parallel=int(parallel_worth_it(node)))

    def group_layout(self, node, ins, out_shape, samples):
        """Each weight read once for the group, broadcast against LANES samples at a time,
        their inputs transposed into the scratch."""
        return dict(samples=samples, scratch=node.attrs["in_features"] * LANES)


class LinearRows(LinearKernel):
    name = "nc.linear_rows"

    def preferred(self, node, ins):
        return 4 * node.attrs["in_features"] * node.attrs["out_features"] < BLOCKS_MIN_BYTES


class LinearBlocks(LinearKernel):
    """w[out / 16][in, padded to whole blocks][16], a 1x1 convolution's weights, and the
    bias padded to whole blocks."""
    name = "nc.linear_blocks"

    def pack(self, node):
        return pack_rows(node, node.params["weight"], blocks(node.attrs["in_features"]) * LANES)

    def packed_shapes(self, node):
        return packed_rows_shapes(node, blocks(node.attrs["in_features"]) * LANES)

    def blocked_path(self, node):
        act = activation_code(node)
        # relu and relu6 in the tile's epilogue, other activations after it
        return dict(nb=BLOCKS_NB, groups=-(-blocks(node.attrs["out_features"]) // BLOCKS_NB),
                    act=act or "CNN_ACT_NONE",
                    scalar_act=act is None and "activation" in node.meta)
