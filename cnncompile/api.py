"""compile(): model -> traced graph -> passes -> C -> build -> CompiledModel."""
import sys
import time
import warnings

from . import build as _build
from . import codegen, frontends, memory, model_io, passes, trace
from .compiled import CompiledModel, default_threads, load  # noqa: F401  (load: re-exported)
from .options import CompileOptions


def build_graph(model, input_shape, skip_passes=(), after=None, kernels=None, options=None):
    """Trace ``model`` and run the pass pipeline; the graph that code generation reads.

    ``model`` is a cnncompile.nn module, a torch.nn.Module or an ONNX model (see frontends).
    ``options`` (a CompileOptions) takes the place of ``skip_passes`` and ``kernels``."""
    if options is None:
        options = CompileOptions(kernels=kernels or {}, skip_passes=skip_passes)
    original = model
    model, input_shape = frontends.to_cnncompile(model, model_io.as_shape(input_shape))
    if input_shape is None:
        raise ValueError("input_shape is missing: give the shape of one call's input, "
                         "e.g. input_shape=(1, 3, 32, 32), or a list of shapes, one per "
                         "forward() argument")
    _warn_if_training(model)
    input_names, output_names = frontends.io_names(model, original)
    graph = trace.trace(model, input_shape, input_names, output_names)
    graph.options = options
    return passes.run(graph, after=after, skip=options.skip_passes)


def _warn_if_training(model):
    from .nn import BatchNorm2d, Dropout
    if getattr(model, "training", False) and any(
            isinstance(m, (BatchNorm2d, Dropout)) for m in model.modules()):
        warnings.warn(f"{type(model).__name__} is in training mode; cnncompile compiles it for "
                      "inference, as model.eval() would (BatchNorm uses its running statistics, "
                      "Dropout does nothing). Call model.eval() first to silence this warning.",
                      stacklevel=3)


def compile(model, input_shape=None, *, name=None, cache_dir=None, flags=None, werror=False,
            skip_passes=(), weights="auto", kernels=None, num_threads=None, batch_group=None,
            max_memory=None, verbose=False):
    """Compile a model into C and return a callable CompiledModel.

    model: a cnncompile.nn module, a torch.nn.Module (read through torch.export), or an ONNX
        model (a path to a .onnx file or an onnx.ModelProto).
    input_shape: (N, C, H, W) with N any batch size (the compiled model takes any batch), or
        the same as text, "1,3,32,32" or "1x3x32x32";
        for a forward() of several tensors, a list of shapes, one per argument, with the same
        N; for an ONNX model it defaults to the shapes the file declares (batch 1 if
        symbolic). The compiled model takes its inputs in that order (or by forward()'s
        argument names) and returns what forward() returns: an array, or a tuple, list or
        dict of arrays (an ONNX model of several outputs: a tuple, in the file's order).
    name: prefix of the exported C functions (default: the model's class name).
    cache_dir: where builds are cached (default $CNNCOMPILE_CACHE_DIR or ~/.cache/cnncompile).
    flags: C compiler flags (default: build.NATIVE_FLAGS; build.PORTABLE_FLAGS for export).
    skip_passes: names of optimisation passes to leave out (for testing).
    kernels: {layer name: kernel} to override the kernel selection, e.g. {"conv1": "nchw.direct"}.
    num_threads: threads per call (default: OMP_NUM_THREADS, or every CPU this process may
        use); can be changed later through CompiledModel.num_threads. A batch of several
        samples runs up to this many samples at once, each with its own workspace slot.
    weights: "c" writes the weights into model.c as literals; "blob" into weights.bin, linked
        by weights.S (fast to build for large models); "auto" chooses by size.
    max_memory: the most memory one call may need (bytes, or "512M", "2G"; default: this
        machine's memory, or its container's limit). A model above it is refused with its
        largest buffers named, one near it warned about, and a batch whose outputs would not
        fit is refused before anything is allocated.
    verbose: print progress to stderr.
    """
    log = (lambda msg: print(f"[cnncompile] {msg}", file=sys.stderr)) if verbose else None
    t0 = time.perf_counter()
    options = CompileOptions(kernels=kernels or {}, skip_passes=skip_passes, weights=weights,
                             num_threads=num_threads, batch_group=batch_group)
    graph = build_graph(model, input_shape, options=options)
    t1 = time.perf_counter()
    slots = max(1, num_threads or default_threads())
    source = codegen.generate(graph, name, weights=options.weights, slots=slots,
                              group=options.batch_group)
    t2 = time.perf_counter()
    cap = memory.check(graph, source, slots, max_memory)
    if log:
        log(f"traced and optimised {len(graph)} layers in {t1 - t0:.2f}s; generated "
            f"{len(source.c_source.splitlines())} lines of C in {t2 - t1:.2f}s")
    artifact = _build.build(source, cache_dir=cache_dir, flags=flags, werror=werror, log=log)
    module = _build.load_module(artifact)
    t3 = time.perf_counter()
    if log:
        log(("found cached build" if artifact.cached else "built") +
            f" {artifact.directory} in {t3 - t2:.2f}s")
    info = {"cached": artifact.cached, "directory": str(artifact.directory),
            "flags": list(_build.NATIVE_FLAGS if flags is None else flags),
            "seconds": {"trace_passes": t1 - t0, "codegen": t2 - t1, "build": t3 - t2}}

    def build_profiler():
        """The same model with <prefix>_profile(): (function, ffi, layer names, the
        library's set_num_threads)."""
        src = codegen.generate(graph, name, weights=weights, profile=True, slots=slots,
                               group=batch_group)
        mod = _build.load_module(_build.build(src, cache_dir=cache_dir, flags=flags))
        return (getattr(mod.lib, f"{src.prefix}_profile"), mod.ffi, src.layers,
                getattr(mod.lib, f"{src.prefix}_set_num_threads"))

    return CompiledModel(source.prefix, source.input_shape, source.output_shape,
                         source.workspace_bytes, module.lib, module.ffi,
                         c_source=source.c_source, header=source.header, graph=graph,
                         path=artifact.library, build_info=info, weights_asm=source.weights_asm,
                         profiler=build_profiler, num_threads=num_threads,
                         inputs=source.inputs, outputs=source.outputs, io=source.io,
                         cdef=source.cdef, weights_key=source.weights_key, memory_limit=cap)


def from_torch(module, input_shape, **options):
    """Compile a torch.nn.Module: torch.export records the ATen ops forward() runs on inputs of
    ``input_shape`` (a shape, or a list of shapes for several inputs), each becomes the
    cnncompile layer that computes it, and the result compiles like a cnncompile.nn model.
    ``options`` as compile()."""
    frontends.refuse_class(module, "cnncompile.from_torch")
    if not frontends.is_torch_module(module):
        raise TypeError(f"from_torch() takes a torch.nn.Module, got {type(module).__name__}")
    return compile(module, input_shape, **options)


def from_onnx(model, input_shape=None, **options):
    """Compile an ONNX model (a path or an onnx.ModelProto). The file is checked before any
    code is written; ``input_shape`` defaults to the one it declares. ``options`` as compile()."""
    from .frontends import onnx as onnx_frontend
    converted = onnx_frontend.convert(model, model_io.as_shape(input_shape))
    return compile(converted, converted.input_shape, **options)
