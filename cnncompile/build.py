"""Build generated C: a plain shared library (C ABI) and a cffi extension module for Python.

model.c is compiled once, with the model's flags, into model.o; it is linked into
``libmodel.so`` for C and ctypes users, and with cffi's generated wrapper into a CPython
extension module. The compiler is run directly (no setuptools): it is faster, and the flags
are exactly ours.

Builds are cached under a key of (generated source, weights, runtime headers, flags, compiler
version, Python ABI), hashed with BLAKE2b. An entry is built in a temporary folder next to the
cache and renamed into place, which is atomic: concurrent builds of the same model all
succeed, one entry remains, and an interrupted build never leaves a half-written entry
behind. After each new build, the least recently used entries go until the cache holds at
most $CNNCOMPILE_CACHE_SIZE (default 10 GiB).
"""
import contextlib
import errno
import functools
import io
import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from .version import __version__
from .errors import BuildError
from .memory import parse_size
from .resources import runtime_dir

# -DCNN_THREADS -pthread: the runtime's thread pool (runtime/cnn_threads.h); -fopenmp-simd
# with CNN_OMP_SIMD: only the `omp simd` pragmas of the vectorised sums, no OpenMP runtime
THREAD_FLAGS = ["-fopenmp-simd", "-DCNN_OMP_SIMD", "-DCNN_THREADS", "-pthread"]


def target_flags(arch="-march=native", threads=True):
    """A build's flags: arch ("-march=...", or "" for the compiler's baseline), and the thread
    pool, or one thread per call and no pthreads. -fno-trapping-math changes no result: it
    lets the compiler compute both sides of a select, so that loops over GELU, SiLU and the
    like vectorise on targets without masked vector instructions (AVX2, NEON)."""
    return ["-O3", *([arch] if arch else []), "-ffp-contract=fast", "-fno-trapping-math",
            *(THREAD_FLAGS if threads else THREAD_FLAGS[:2])]


NATIVE_FLAGS = target_flags("-march=native")
PORTABLE_FLAGS = target_flags("")
WARNING_FLAGS = ["-std=c11", "-Wall", "-Wextra"]
LIBRARY_NAME = "libmodel.so"
_loaded = {}
_lock = threading.Lock()


@dataclass
class Artifact:
    directory: Path     # the cache entry: model.c, model.h, cnn_*.h, libmodel.so, module
    library: Path       # the plain shared library
    module_path: Path   # the cffi extension module
    module_name: str
    cached: bool        # True when the entry was already there


def cache_root(cache_dir=None):
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("CNNCOMPILE_CACHE_DIR"):
        return Path(os.environ["CNNCOMPILE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnncompile"


CACHE_SIZE_DEFAULT = 10 << 30  # bytes; ResNet-18's entry takes about 190 MB


def cache_limit():
    """The most bytes the build cache may hold: $CNNCOMPILE_CACHE_SIZE (bytes, or with a K, M,
    G or T suffix; 0 for no limit), else CACHE_SIZE_DEFAULT."""
    text = os.environ.get("CNNCOMPILE_CACHE_SIZE", "").strip()
    if not text:
        return CACHE_SIZE_DEFAULT
    try:
        return parse_size(text, "CNNCOMPILE_CACHE_SIZE")
    except ValueError:
        raise BuildError(f"CNNCOMPILE_CACHE_SIZE={text!r} is not a size: give bytes, or a "
                         f"number with K, M, G or T (e.g. 10G), or 0 for no limit") from None


def _entry_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def prune_cache(root, limit, keep=()):
    """Remove the least recently used entries (by modification time: a cache hit touches its
    entry) until the cache holds at most ``limit`` bytes, never an entry in ``keep`` (the one
    just built, and those whose modules this process has loaded). limit 0: no limit."""
    if not limit:
        return
    keep = {Path(k).resolve() for k in keep}
    entries = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                with contextlib.suppress(OSError):
                    entries.append((entry.stat().st_mtime, entry.path,
                                    _entry_bytes(entry.path)))
    total = sum(size for _, _, size in entries)
    for _, path, size in sorted(entries):
        if total <= limit:
            break
        if Path(path).resolve() in keep:
            continue
        shutil.rmtree(path, ignore_errors=True)
        total -= size


def compiler():
    return os.environ.get("CC", "cc")


@functools.lru_cache(maxsize=None)
def compiler_version(cc):
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"no C compiler: running '{cc} --version' failed ({exc}); install gcc "
                         "or clang, or set CC to a C compiler") from None
    if out.returncode != 0:
        raise BuildError(f"the C compiler '{cc}' does not work: '{cc} --version' exited "
                         f"{out.returncode}: {out.stderr.strip()[:500]}")
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else cc


def _run(cmd, cwd, what):
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as exc:
        raise BuildError(f"{what}: could not run {cmd[0]!r}: {exc}") from None
    if res.returncode != 0:
        raise BuildError(f"{what} failed (exit {res.returncode}):\n  {' '.join(cmd)}\n"
                         f"{(res.stderr or res.stdout).strip()[:4000]}")
    return res.stderr


def build_key(source, flags, cc):
    h = hashlib.blake2b(digest_size=32)  # twice sha256's speed on the weights of a large model
    for part in (__version__, source.c_source, source.header, source.cdef,
                 *(f.read_text() for f in sorted(runtime_dir().glob("*.h"))), " ".join(flags),
                 compiler_version(cc), sys.version, _ext_suffix(), source.weights_asm or ""):
        h.update(part.encode())
        h.update(b"\0")
    h.update((source.weights_key or "").encode())  # blob mode: weights.bin is packed on a miss
    return h.hexdigest()


def _ext_suffix():
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def build(source, cache_dir=None, flags=None, werror=False, log=None):
    """Build (or find in the cache) the library and extension module for ``source``."""
    cc = compiler()
    flags = list(NATIVE_FLAGS if flags is None else flags)
    if werror:
        flags.append("-Werror")
    key = build_key(source, flags, cc)
    root = cache_root(cache_dir)
    final = root / key[:32]
    module_name = f"_cnn_{key[:16]}"
    module_file = module_name + _ext_suffix()
    if (final / module_file).exists():
        with contextlib.suppress(OSError):  # recently used: the last to be pruned
            os.utime(final)
        return Artifact(final, final / LIBRARY_NAME, final / module_file, module_name, True)
    limit = cache_limit()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    except OSError as exc:
        raise BuildError(f"cannot write to the build cache {root}: {exc}; set "
                         "CNNCOMPILE_CACHE_DIR or pass cache_dir= to a writable folder") from None
    try:
        _build_in(tmp, source, cc, flags, module_name, module_file, log)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / module_file).exists():
                raise
            # another process finished the same build first: use its entry
    except OSError as exc:
        hint = ""
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            hint = ("; the disk is full or a size limit was hit: free some space, or set "
                    "CNNCOMPILE_CACHE_DIR (or cache_dir=) to a folder on another disk")
        raise BuildError(f"writing the build to {root} failed: {exc}{hint}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    with _lock:
        loaded = [Path(path).parent for path in _loaded]
    prune_cache(root, limit, keep=[final, *loaded])
    return Artifact(final, final / LIBRARY_NAME, final / module_file, module_name, False)


def _build_in(tmp, source, cc, flags, module_name, module_file, log):
    import cffi
    (tmp / "model.c").write_text(source.c_source)
    (tmp / "model.h").write_text(source.header)
    for header in runtime_dir().glob("*.h"):
        shutil.copy(header, tmp / header.name)
    if log:
        log(f"compiling model.c with {cc} {' '.join(flags)}")
    warnings = _run([cc, *WARNING_FLAGS, *flags, "-fPIC", "-c", "model.c", "-o", "model.o"],
                    tmp, "compiling the generated model.c")
    if warnings.strip() and log:
        log(f"compiler warnings:\n{warnings.strip()}")
    objects = ["model.o"]
    if source.pack_weights is not None:
        (tmp / "weights.bin").write_bytes(source.weights_bin)
        (tmp / "weights.S").write_text(source.weights_asm)
        _run([cc, "-c", "weights.S", "-o", "weights.o"], tmp, "assembling weights.S")
        objects.append("weights.o")
    link = ["-pthread"] if "-pthread" in flags else []
    _run([cc, "-shared", *objects, "-o", LIBRARY_NAME, *link, "-lm"], tmp, "linking libmodel.so")
    ffi = cffi.FFI()
    ffi.cdef(source.cdef)
    ffi.set_source(module_name, '#include "model.h"')
    with contextlib.redirect_stdout(io.StringIO()):  # cffi announces the file it writes
        ffi.emit_c_code(str(tmp / f"{module_name}.c"))
    include = sysconfig.get_paths()["include"]
    _run([cc, "-O2", "-w", "-fPIC", f"-I{include}", "-I.", "-c", f"{module_name}.c",
          "-o", "wrapper.o"], tmp, "compiling the cffi wrapper")
    _run([cc, "-shared", "wrapper.o", *objects, "-o", module_file, *link, "-lm"], tmp,
         "linking the Python extension module")
    for leftover in (*objects, "wrapper.o", f"{module_name}.c"):
        (tmp / leftover).unlink()


def load_module(artifact):
    """Import the cffi extension module of a build (once per process)."""
    key = str(artifact.module_path)
    with _lock:
        if key not in _loaded:
            spec = importlib.util.spec_from_file_location(artifact.module_name, key)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _loaded[key] = module
        return _loaded[key]
