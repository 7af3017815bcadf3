"""CompiledModel: call compiled C on numpy arrays.

The input is checked against the compiled shape (any batch size), converted to contiguous
float32 when it is not (float64, Fortran order, negative strides...), and handed to C without
a copy when it already is. The GIL is released during the C call, so one CompiledModel can
serve many threads; each thread gets its own workspace.

A model of several inputs takes them positionally, in forward()'s argument order (or by
forward()'s argument names as keywords), all with the same batch size; a model that returns
a tuple, list or dict of tensors returns the same structure of arrays.
"""
import contextlib
import json
import math
import os
import threading
import time
from pathlib import Path

import numpy as np

from . import bundle, memory, model_io, persist

INT_MAX = 2**31 - 1
_FLOAT32 = np.dtype(np.float32)  # the native float32 descriptor numpy's arrays share

# per library: the thread count last set on each OS thread (see _apply_threads)
_THREAD_STATE = {}


def default_threads():
    """OMP_NUM_THREADS if set, else the CPUs this process may use: the cores it may run on,
    at most its container's CPU quota (rounded up), as ONNX Runtime and the JVM count them."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def cgroup_cpu_quota(root="/sys/fs/cgroup"):
    """CPUs' worth of time the cgroup may use per period (cgroup v2 cpu.max, else v1
    cpu.cfs_quota_us / cpu.cfs_period_us), or None without a limit."""
    try:
        quota, period = Path(root, "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path(root, "cpu", "cpu.cfs_quota_us").read_text())
        period = int(Path(root, "cpu", "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _aligned_bytes(size):
    """A byte array of ``size`` starting on a 64-byte (cache line) boundary: the workspace's
    buffers are laid out at 64-byte offsets so that the vector kernels' loads never straddle
    two lines."""
    buf = np.empty(size + 64, np.uint8)
    start = (-buf.ctypes.data) % 64
    return buf[start:start + size]


class CompiledModel:
    def __init__(self, prefix, input_shape, output_shape, workspace_bytes, lib, ffi,
                 c_source=None, header=None, graph=None, path=None, build_info=None,
                 weights_asm=None, profiler=None, num_threads=None, inputs=None, outputs=None,
                 io=None, cdef=None, weights_key=None, memory_limit=None):
        self.prefix = prefix
        self._cdef, self._weights_key = cdef, weights_key  # to build it again (pickling)
        self._num_threads_given = num_threads
        self.model_name = graph.name if graph is not None else prefix
        self.input_shape = tuple(input_shape)      # per sample, e.g. (3, 32, 32)
        self.output_shape = tuple(output_shape)    # per sample, e.g. (10,)
        # several inputs or outputs (io: names and returned structure, see model_io.py):
        # input_shape / output_shape are then the tuples of every input's / output's shape
        self._io = io
        self.input_names, self.output_names = ["input"], ["output"]
        self.input_shapes, self.output_shapes = [self.input_shape], [self.output_shape]
        if io is not None:
            self.input_names = [p["name"] for p in inputs]
            self.output_names = [p["name"] for p in outputs]
            self.input_shapes = [tuple(p["shape"]) for p in inputs]
            self.output_shapes = [tuple(p["shape"]) for p in outputs]
            self.input_shape = tuple(self.input_shapes)
            self.output_shape = tuple(self.output_shapes)
        self._ports = (inputs, outputs)
        self.workspace_bytes = int(workspace_bytes)
        self.c_source, self.header, self.graph = c_source, header, graph
        self.path = Path(path) if path is not None else None  # the plain shared library
        self.build_info = build_info or {}
        self.weights_asm = weights_asm  # weights.S, when the weights are in weights.bin
        self._profiler_factory, self._profiler = profiler, None
        if lib is not None:
            self._attach(lib, ffi)
        # threads per call; by default every CPU this process may use
        self.num_threads = num_threads or default_threads()
        self._local = threading.local()
        self._out_one = (1,) + self.output_shape
        # a batch whose outputs would not fit is refused before they are allocated
        self._memory_cap, self._memory_whence = memory_limit or memory.limit()
        self._memory_cap = self._memory_cap or float("inf")
        self._sample_bytes = 4 * sum(math.prod(s) for s in self.output_shapes)

    def _attach(self, lib, ffi):
        """Call into ``lib``, a loaded library of this model's C (through ``ffi``)."""
        self._ffi, self._lib = ffi, lib
        self._forward = getattr(lib, f"{self.prefix}_forward")
        self._set_threads = getattr(lib, f"{self.prefix}_set_num_threads")
        self._threads_set = _THREAD_STATE.setdefault(id(lib), threading.local())

    # -- calling ---------------------------------------------------------------------------
    def _expected(self, i=0):
        return "(N, " + ", ".join(map(str, self.input_shapes[i])) + ")"

    def _prepare(self, x, i=0):
        """Any input (the i-th) into a contiguous float32 batch (no copy when it already is
        one; calls check that common case first, inline), and whether it came without a batch
        axis."""
        if hasattr(x, "detach") and hasattr(x, "cpu") and not isinstance(x, np.ndarray):
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        shape = self.input_shapes[i]
        if x.ndim == len(shape) + 1 and tuple(x.shape[1:]) == shape:
            self._check_batch(x.shape[0], converted=not (x.dtype == _FLOAT32
                                                         and x.flags.c_contiguous))
        what = "input" if self._io is None else f"input {self.input_names[i]}"
        if x.dtype.kind != "f":
            raise TypeError(f"{self.prefix}: expected a float32 array of shape "
                            f"{self._expected(i)}" + ("" if self._io is None else f" for {what}")
                            + f", got dtype {x.dtype}; convert it with x.astype(np.float32)")
        unbatched = x.ndim == len(shape) and x.shape == shape
        if unbatched:
            x = x[None]
        if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"{self.prefix}: expected {what} of shape {self._expected(i)} "
                             f"(N = any batch size), got {tuple(x.shape)}")
        if x.shape[0] > INT_MAX:
            raise ValueError(f"{self.prefix}: batch {x.shape[0]} is larger than {INT_MAX}")
        return np.ascontiguousarray(x, dtype=np.float32), unbatched

    def _check_batch(self, n, converted):
        """Refuse a batch whose outputs (and inputs converted to float32) cannot fit."""
        per_sample = self._sample_bytes + (
            4 * sum(math.prod(s) for s in self.input_shapes) if converted else 0)
        if n * per_sample > self._memory_cap:
            raise memory.refuse_batch(self.prefix, n, per_sample, self._memory_cap,
                                      self._memory_whence)

    def _apply_threads(self):
        """Set the library's thread count for this OS thread, when it changes. The count
        belongs to the library and the OS thread (runtime/cnn_threads.h), not to a model:
        models compiled from the same C share one library."""
        if self.num_threads and getattr(self._threads_set, "n", None) != self.num_threads:
            self._set_threads(int(self.num_threads))
            self._threads_set.n = self.num_threads

    def _workspace(self):
        ws = getattr(self._local, "ws", None)
        if ws is None:
            ws = _aligned_bytes(self.workspace_bytes)
            self._local.ws = ws
            self._local.ptr = self._ffi.from_buffer(ws) if self.workspace_bytes else self._ffi.NULL
        return self._local.ptr

    def __call__(self, *inputs, **named):
        if self._io is not None or len(inputs) != 1 or named:
            return self._call_io(inputs, named)
        x = inputs[0]
        # the common case first, with as few Python steps as it takes: a call on a small model
        # is tens of microseconds, and each attribute lookup here is tens of nanoseconds
        if (type(x) is np.ndarray and x.dtype is _FLOAT32 and x.shape[1:] == self.input_shape
                and x.flags.c_contiguous and 0 < x.shape[0] <= INT_MAX):
            unbatched, n = False, x.shape[0]
            if n * self._sample_bytes > self._memory_cap:
                self._check_batch(n, converted=False)
            out = np.empty(self._out_one if n == 1 else (n,) + self.output_shape, np.float32)
        else:
            x, unbatched = self._prepare(x)
            n = x.shape[0]
            out = np.empty((n,) + self.output_shape, np.float32)
            if not n:
                return out
        if getattr(self._threads_set, "n", None) != self.num_threads:
            self._apply_threads()
        try:
            ws = self._local.ptr
        except AttributeError:
            ws = self._workspace()
        from_buffer = self._ffi.from_buffer
        rc = self._forward(from_buffer("float[]", x), from_buffer("float[]", out), n, ws)
        if rc != 0:
            raise RuntimeError(f"{self.prefix}_forward returned {rc}")
        return out[0] if unbatched else out

    forward = __call__

    def _bind(self, inputs, named):
        """The call's inputs in forward()'s argument order, from positions and names."""
        count = len(self.input_names)
        if len(inputs) > count:
            raise TypeError(f"{self.prefix} takes {count} input(s) "
                            f"({', '.join(self.input_names)}), got {len(inputs)}")
        bound = dict(zip(self.input_names, inputs))
        for key, value in named.items():
            if key not in self.input_names:
                raise TypeError(f"{self.prefix} has no input named {key!r}; its inputs are "
                                f"{', '.join(self.input_names)}")
            if key in bound:
                raise TypeError(f"{self.prefix} got input {key!r} twice")
            bound[key] = value
        missing = [n for n in self.input_names if n not in bound]
        if missing:
            raise TypeError(f"{self.prefix} is missing input(s) {', '.join(missing)}; it takes "
                            f"{', '.join(self.input_names)}")
        return [bound[n] for n in self.input_names]

    def _prepare_all(self, inputs, named=None):
        """Every input as a contiguous float32 batch, whether they came without a batch axis,
        and the batch size, which must be the same for all."""
        prepared = [self._prepare(x, i) for i, x in enumerate(self._bind(inputs, named or {}))]
        xs = [x for x, _ in prepared]
        flags = {u for _, u in prepared}
        batches = [x.shape[0] for x in xs]
        if len(flags) > 1:
            raise ValueError(f"{self.prefix}: some inputs have a batch axis and some do not; "
                             "give every input with the batch axis (N, ...)")
        if len(set(batches)) > 1:
            sizes = ", ".join(f"{n}: {b}" for n, b in zip(self.input_names, batches))
            raise ValueError(f"{self.prefix}: the inputs have batch sizes {sizes}; every "
                             "input of one call must have the same batch size (dimension 0)")
        return xs, flags.pop(), batches[0]

    def _call_io(self, inputs, named):
        """A call of a model of several inputs or outputs (or any call but model(x))."""
        xs, unbatched, n = self._prepare_all(inputs, named)
        outs = [np.empty((n,) + shape, np.float32) for shape in self.output_shapes]
        if n:
            self._apply_threads()
            from_buffer = self._ffi.from_buffer
            rc = self._forward(*[from_buffer("float[]", a) for a in xs + outs], n,
                               self._workspace())
            if rc != 0:
                raise RuntimeError(f"{self.prefix}_forward returned {rc}")
        if unbatched:
            outs = [o[0] for o in outs]
        return outs[0] if self._io is None else model_io.rebuild(self._io["tree"], outs)

    def profile(self, x, repeat=100, warmup=10, layers=False):
        """Time the compiled model on ``x``: median and min milliseconds per call.

        layers=True also times every layer (an instrumented build of the same C, made once):
        result["layers"] is a list of (layer, kernel, mean ms per call, GFLOP/s), and
        print(compiled.profile_table(x)) shows it as a table.
        """
        xs, _, n = self._prepare_all(x if self._io is not None else (x,))
        for _ in range(warmup):
            self(*xs)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            self(*xs)
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        result = {"batch": n, "median_ms": times[len(times) // 2], "min_ms": times[0],
                  "repeat": repeat}
        if layers:
            result["layers"] = self._profile_layers(xs, n, repeat)
        return result

    def _profile_layers(self, xs, n, repeat):
        if self._profiler_factory is None:
            raise ValueError("per-layer profiles need the model from cnncompile.compile()")
        if self._profiler is None:
            self._profiler = self._profiler_factory()
        fn, ffi, names, set_threads = self._profiler
        set_threads(int(self.num_threads))
        seconds = np.zeros(len(names))
        outs = [np.empty((n,) + shape, np.float32) for shape in self.output_shapes]
        ws = _aligned_bytes(self.workspace_bytes)
        for _ in range(repeat):
            fn(*[ffi.from_buffer("float[]", a) for a in xs + outs], n,
               ffi.from_buffer(ws), ffi.from_buffer("double[]", seconds))
        rows = []
        for name, s in zip(names, seconds):
            node = self.graph.node(name)
            ms = s / repeat * 1e3
            flops = node.meta.get("flops", 0) * n
            if "pipelined_from" in node.meta:  # its call computes the 1x1 layer too
                producer = node.meta["pipelined_from"]
                flops += self.graph.node(producer).meta.get("flops", 0) * n
                name = f"{name} (+ {producer})"
            rows.append((name, node.meta.get("kernel", node.op), float(ms),
                         float(flops / (ms * 1e6)) if ms > 0 else 0.0))
        return rows

    def profile_table(self, x, repeat=50):
        """A per-layer time table with each layer's share of their sum. The layers are timed
        in an instrumented build of the same C (mean per call); the last line, the median of
        whole calls, also counts what happens between layers and around them (the Python
        call, waking threads), so it is a little more than the sum."""
        result = self.profile(x, repeat=repeat, warmup=3, layers=True)
        rows = result["layers"]
        total = sum(r[2] for r in rows) or 1.0
        width = max(len(r[0]) for r in rows + [("whole call (median)",)])
        lines = [f"{'layer':<{width}}  {'kernel':<16}  {'ms':>8}  {'%':>5}  {'GFLOP/s':>8}"]
        for name, kernel, ms, gflops in rows:
            lines.append(f"{name:<{width}}  {kernel:<16}  {ms:8.3f}  {100 * ms / total:5.1f}  "
                         f"{gflops:8.1f}")
        lines.append(f"{'sum of layers':<{width}}  {'':<16}  {total:8.3f}")
        lines.append(f"{'whole call (median)':<{width}}  {'':<16}  {result['median_ms']:8.3f}")
        return "\n".join(lines)

    # -- inspection ----------------------------------------------------------------------------
    def _signature(self, sep=": "):
        """'x: (N, 3, 32, 32), y: (N, 10) -> out: (N, 10), aux: (N, 5)'"""
        def side(names, shapes):
            return ", ".join(f"{name}{sep}(N, {', '.join(map(str, shape))})"
                             for name, shape in zip(names, shapes))
        return (f"{side(self.input_names, self.input_shapes)} -> "
                f"{side(self.output_names, self.output_shapes)}")

    def summary(self):
        lines = []
        if self.graph is not None:
            lines.append(self.graph.summary())
        if self._io is None:
            shapes = (f"Input (N, {', '.join(map(str, self.input_shape))}) -> output "
                      f"(N, {', '.join(map(str, self.output_shape))})")
        else:
            shapes = f"Inputs {self._signature(' ')}".replace(" -> ", " -> outputs ", 1)
        lines.append(f"{shapes}; workspace "
                     f"{self.workspace_bytes:,} bytes; C functions {self.prefix}_forward, "
                     f"{self.prefix}_workspace_size")
        if self.path is not None:
            lines.append(f"Shared library: {self.path}")
        return "\n".join(lines)

    def __repr__(self):
        if self._io is not None:
            return f"CompiledModel({self.prefix}: {self._signature()})"
        return (f"CompiledModel({self.prefix}: (N, {', '.join(map(str, self.input_shape))}) -> "
                f"(N, {', '.join(map(str, self.output_shape))}))")

    # -- pickling -------------------------------------------------------------------------------
    def __reduce__(self):
        """Pickles as its C source and weights; unpickling builds them (a cache hit where the
        same build was made before) and loads the library (persist.py)."""
        return persist.from_pickle, (type(self), persist.pickle_state(self))

    @property
    def cdef(self):
        """The C declarations cffi reads: workspace_size, set_num_threads, forward."""
        if self._cdef is None:
            pointers = ("const float *, " * len(self.input_names)
                        + "float *, " * len(self.output_names))
            self._cdef = (f"size_t {self.prefix}_workspace_size(void);\n"
                          f"void {self.prefix}_set_num_threads(int num_threads);\n"
                          f"int {self.prefix}_forward({pointers}int, void *);")
        return self._cdef

    # -- export ----------------------------------------------------------------------------------
    def save(self, directory, target="native", threads=True):
        """Write the C bundle into ``directory``: model.c, model.h, the runtime headers,
        weights.bin and weights.S (large models), model_main.c, a Makefile that builds
        libmodel.a, libmodel.so and model_main for ``target`` (native, portable, aarch64 or a
        -march value; threads=False: no thread pool), and model.json; with libmodel.so itself
        when this model was built for that target here, for cnncompile.load(directory)."""
        self.write_bundle(directory, target, threads)
        return Path(directory)

    def write_bundle(self, directory, target="native", threads=True):
        """save(), returning [(file name, what it is)] for every file written."""
        return persist.write_bundle(self, directory, target, threads)


def load(directory):
    """Load a model saved with CompiledModel.save() (or `cnncompile compile -o DIR`)."""
    d = Path(directory)
    try:
        meta = json.loads((d / "model.json").read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{d}: no model.json; save a model there with "
                                f"CompiledModel.save() or `cnncompile compile -o {d}`") from None
    library = d / "libmodel.so"
    if not library.is_file():
        raise FileNotFoundError(f"{d}: no libmodel.so (saved for target "
                                f"{meta.get('target', 'native')!r}); build it with `make -C {d}` "
                                "on a machine of that target")
    source = {}
    for name in ("model.c", "model.h", "weights.S"):
        with contextlib.suppress(FileNotFoundError):
            source[name] = (d / name).read_text()
    model = CompiledModel(meta["prefix"], meta["input_shape"], meta["output_shape"],
                          meta["workspace_bytes"], None, None, path=library,
                          inputs=meta.get("inputs"), outputs=meta.get("outputs"),
                          io=meta.get("io"), c_source=source.get("model.c"),
                          header=source.get("model.h"), weights_asm=source.get("weights.S"),
                          build_info={"flags": persist.bundle_flags(
                              bundle.target(meta.get("target", "native")),
                              meta.get("threads", True))})
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(model.cdef)
    model._attach(ffi.dlopen(str(library.resolve())), ffi)
    return model

