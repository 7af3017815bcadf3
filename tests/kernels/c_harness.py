"""A C harness for the runtime's kernels: a few wrapper functions with plain signatures that
call the static inline functions of runtime/*.h, built as a cffi module by cnncompile's own
build (its compiler, flags and cache), and helpers to pass numpy arrays and compare results.

A test module names its runtime headers in one constant and writes its wrappers in C:

    HEADERS = ["cnn_gemm.h"]
    SOURCE = '''
    void gemm(int m, int kdim, int n, const float *a, const float *b, int ldb, float *c,
              int ldc, const float *bias, int act, int parallel)
    {
        cnn_gemm(m, kdim, n, a, b, ldb, c, ldc, bias, act, parallel);
    }
    '''
    lib = c_harness.fixture(HEADERS, SOURCE)  # a module fixture, one build per flavour

Each wrapper's signature (a definition starting at the beginning of a line) becomes its
cffi declaration; static helpers stay out of it. Each harness is built in each of FLAVOURS
(or the ones its module names): the native build models use, the portable one (SSE vectors
on x86-64), and plain C without vector extensions, which the runtime's headers implement
separately. Wrappers take shapes as arguments, and tiles as constants where a template
passes a macro.
"""
import concurrent.futures
import contextlib
import re
from types import SimpleNamespace

import numpy as np
import pytest

from cnncompile import build
from cnncompile.codegen import CSource

# The project's weight packing and kernel geometry, which the tests reuse to build the
# arrays the runtime reads exactly as the compiler does: the one place that imports them.
from cnncompile import kernels as _kernels  # noqa: E402
from cnncompile.kernels import conv_base as _conv_base  # noqa: E402
from cnncompile.kernels import conv_nchw16c as _nchw16c  # noqa: E402
from cnncompile.kernels import gemm as _gemm  # noqa: E402
from cnncompile.kernels import phases as _phases  # noqa: E402
from cnncompile.kernels.conv_winograd import WinogradF2x2, WinogradF4x4  # noqa: E402
from cnncompile.layout import BLOCK, blocks  # noqa: E402,F401  (BLOCK: CNN_CB)

pack_panels = _gemm.pack_panels          # A of cnn_gemm: a[g][panel][k][MR]
pack_columns = _gemm.pack_columns        # B of cnn_gemm_bpacked_block: b[panel][k][32]
inner_range = _conv_base.inner_range     # the output columns whose taps are all inside
shifted_layout = _phases.shifted_layout  # phase planes and tap offsets of shifted kernels
WINOGRAD = {k.name: dict(tile=k.tile, g=k.g, b_t=k.b_t, a_t=k.a_t)  # per variant
            for k in (WinogradF4x4, WinogradF2x2)}
BPANEL = _gemm.NR_MAX                    # CNN_BPANEL


def transform_weights(weight, kernel):
    """U = G g G^T for the Winograd kernel named ``kernel``, packed as pack_columns."""
    return _kernels.KERNELS["conv2d"][kernel].transform_weights(weight)


def pack_blocked(kernel, weight, bias=None, groups=1):
    """(weight, bias) packed for a kernel on blocks ('nchw16c.pointwise', 'nchw16c.depthwise',
    'nchw16c.direct', 'nchw_to_nchw16c.shifted'): w[out block][inner][16], bias padded to whole
    blocks (None without a bias)."""
    params = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    node = SimpleNamespace(params=params, meta={"kernel": kernel})
    if groups > 1:
        node.attrs = {"groups": groups}
    packed = _kernels.KERNELS["conv2d"][kernel].pack(node)
    return packed["weight"], packed.get("bias")


def pack_linear_blocks(weight, bias=None):
    """A linear layer's weights (out x in) as nc.linear_blocks packs them: a 1x1 convolution's
    blocks w[out / 16][in padded to whole blocks][16]; the bias padded to whole blocks."""
    params = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    inner = blocks(weight.shape[1]) * BLOCK
    packed = _nchw16c.pack_rows(SimpleNamespace(params=params), weight, inner)
    return packed["weight"], packed.get("bias")


def conv_geometry(in_channels, out_channels, kernel, stride=(1, 1), padding=(0, 0),
                  dilation=(1, 1), groups=1):
    """A stand-in for a Conv2d node, with the attributes the geometry functions above read."""
    return SimpleNamespace(attrs=dict(in_channels=in_channels, out_channels=out_channels,
                                      kernel_size=tuple(kernel), stride=tuple(stride),
                                      padding=tuple(padding), dilation=tuple(dilation),
                                      groups=groups))


FLAVOURS = {
    "native": build.NATIVE_FLAGS,
    "portable": build.PORTABLE_FLAGS,
    "scalar": build.PORTABLE_FLAGS + ["-DCNN_NO_VECTOR_EXTENSIONS"],
}
# The blocked kernels' 16-float vectors, split into SSE registers, take GCC up to half a
# minute per harness when the shapes are not constants: their modules build these two (the
# portable build of the blocked kernels runs in tests/test_layout.py, whole models).
BLOCKED_FLAVOURS = ("native", "scalar")

# The tiles of the blocked kernels (runtime/cnn_nchw16c.h) that kernels/conv_nchw16c.py chooses from,
# by code: pixels x output blocks. C for the harnesses that dispatch on them: each call of a
# tiled function takes its code's macros as constants, as a model's does; without AVX-512
# the four are one shape, and distinct_tile maps them onto code 0, so that it is compiled
# once (the branches of the other codes are then dropped).
TILES = {"narrow": 0, "wide": 1, "narrow7": 2, "wide7": 3}
# one output block (CNN_SINGLE_MR x 1): the direct kernel's tile for grouped layers whose groups
# are one block each; only its harness runs it
SINGLE_TILE = 4
TILES_C = """
static inline int tile_mr(int tile)
{
    const int mr[5] = {CNN_TILE_MR, CNN_WIDE_MR, CNN_TILE7_MR, CNN_TILE7_MR, CNN_SINGLE_MR};
    return mr[tile];
}

static inline int tile_nb(int tile)
{
    const int nb[5] = {CNN_TILE_NB, CNN_WIDE_NB, CNN_TILE_NB, CNN_WIDE_NB, 1};
    return nb[tile];
}

static inline int distinct_tile(int tile)
{
    if (tile == 3 && CNN_TILE7_MR == CNN_WIDE_MR)
        tile = 1;
    if (tile == 2 && CNN_TILE7_MR == CNN_TILE_MR)
        tile = 0;
    if (tile == 1 && CNN_WIDE_MR == CNN_TILE_MR && CNN_WIDE_NB == CNN_TILE_NB)
        tile = 0;
    return tile;
}
"""

# Declared in every harness: the thread count of the calling thread's next parallel loops.
_PRELUDE = """
int harness_get_threads(void)
{
    return cnn_team_size();
}

void harness_set_threads(int n)
{
    cnn_set_threads(n);
}
"""

# A wrapper's definition: a return type and a name at the start of a line, its parameters,
# then the opening brace on the next line
_SIGNATURE = re.compile(r"^((?:const )?[a-z_]+ \**\w+\([^)]*\))\s*\{", re.M)


def declarations(source):
    return "".join(f"{' '.join(sig.split())};\n" for sig in _SIGNATURE.findall(source))


def _build(headers, source, flavour, cache_dir):
    """Compile ``source`` after #include of each of ``headers`` (runtime/ file names) with
    the flags of ``flavour``, through cnncompile's build and its cache."""
    body = _PRELUDE + source
    header = "#include <stddef.h>\n" + declarations(body)
    includes = "".join(f'#include "{h}"\n' for h in headers)
    c_source = f'{includes}#include "model.h"\n{body}'
    csrc = CSource(prefix="harness", c_source=c_source, header=header,
                   cdef=declarations(body), input_shape=(), output_shape=(), workspace_bytes=0)
    return build.build(csrc, cache_dir=cache_dir, flags=list(FLAVOURS[flavour]), werror=True)


# Builds take seconds (the kernels are compiled at -O3, as for a model), tests milliseconds:
# when the first harness is needed, every harness the collected modules declared starts
# building, two at a time, in the order the tests will need them.
_HARNESSES = []
_builds = {}
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)


def _submit(key):
    if key not in _builds:
        # the cache folder is read here, in the session, not when a worker gets to it
        _builds[key] = _pool.submit(_build, *key, build.cache_root())
    return _builds[key]


def load(headers, source, flavour):
    """The cffi module (its .lib and .ffi) of the harness, built once per session."""
    first = not _builds
    future = _submit((tuple(headers), source, flavour))
    if first:
        for h, s, flavours in _HARNESSES:
            for f in flavours:
                _submit((h, s, f))
    return build.load_module(future.result())


def _stop_builds():
    _pool.shutdown(wait=False, cancel_futures=True)  # a -k or -x run needs no more of them


def fixture(headers, source, flavours=tuple(FLAVOURS)):
    """A module-scoped pytest fixture giving the harness's module, once per flavour."""
    _HARNESSES.append((tuple(headers), source, tuple(flavours)))

    @pytest.fixture(scope="module", params=flavours)
    def harness(request):
        if not _builds:
            request.config.add_cleanup(_stop_builds)
        return load(headers, source, request.param)
    return harness


@contextlib.contextmanager
def threads(module, n):
    """Run the block with parallel loops of n threads, then restore the count."""
    old = module.lib.harness_get_threads()
    module.lib.harness_set_threads(n)
    try:
        yield
    finally:
        module.lib.harness_set_threads(old)


# (parallel flag, threads): a plain loop; the pool on one thread; the pool on two
PARALLEL = [(0, 1), (1, 1), (1, 2)]


def ptr(module, array, offset=0):
    """A C pointer into a numpy array (float32 -> float *, int32 -> int *), no copy, at element
    ``offset``; None -> NULL. The array must be C-contiguous, so that what the kernel writes
    lands in it, and (with an offset) outlive the call."""
    if array is None:
        return module.ffi.NULL
    kind = {np.dtype(np.float32): "float[]", np.dtype(np.int32): "int[]"}[array.dtype]
    assert array.flags.c_contiguous, "pass C-contiguous arrays to the kernels"
    buffer = module.ffi.from_buffer(kind, array)  # holds the array (a cast would not)
    return buffer + offset if offset else buffer


def random(rng, shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, shape).astype(np.float32)


def filled(shape, value=np.nan):
    """An output buffer holding ``value`` (NaN: what a kernel fails to write stays NaN)."""
    return np.full(shape, value, np.float32)


RTOL = ATOL = 1e-5

# CNN_ACT_* codes and their numpy twins
ACTIVATIONS = {0: lambda v: v, 1: lambda v: np.maximum(v, 0.0),
               2: lambda v: np.clip(v, 0.0, 6.0)}


def assert_close(actual, expected, magnitude=None, what="", rtol=RTOL, atol=ATOL):
    """|actual - expected| <= atol * magnitude + rtol * |expected| everywhere, expected in
    float64. magnitude: the size of the terms summed into each value (an array, e.g.
    |A| @ |B| for a product, or a number), which bounds float32's rounding better than the
    result's own size; by default the largest |expected|, at least 1."""
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if magnitude is None:
        magnitude = max(1.0, float(np.abs(expected).max(initial=0.0)))
    err = np.abs(actual.astype(np.float64) - expected)
    bound = atol * np.asarray(magnitude, np.float64) + rtol * np.abs(expected)
    bad = ~(err <= bound)  # NaN (never written) fails too
    if bad.any():
        where = tuple(int(i[0]) for i in np.nonzero(bad))
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} values off; first at "
                             f"{where}: {actual[where]!r} against {expected[where]!r}")


def assert_equal(actual, expected, what=""):
    """Bit for bit (copies, transposes, zero padding)."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    expected = np.asarray(expected, np.float32)
    bad = actual.view(np.uint32) != expected.view(np.uint32)
    if bad.any():
        where = tuple(int(i[0]) for i in np.nonzero(bad))
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} values differ; first at "
                             f"{where}: {actual[where]!r} against {expected[where]!r}")


def to_blocks(x):
    """(channels, *pixels) planes -> (blocks, *pixels, 16), the padding channels zero: the
    blocked layout of runtime/cnn_nchwc.h."""
    c, *pixels = x.shape
    nb = -(-c // BLOCK)
    out = np.zeros((nb * BLOCK, *pixels), x.dtype)
    out[:c] = x
    out = out.reshape(nb, BLOCK, *pixels)
    return np.ascontiguousarray(np.moveaxis(out, 1, -1))


def from_blocks(xb, channels):
    """The inverse of to_blocks: (blocks, *pixels, 16) -> (channels, *pixels)."""
    planes = np.moveaxis(xb, -1, 1)
    return planes.reshape(-1, *planes.shape[2:])[:channels]
