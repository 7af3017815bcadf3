"""Memory limits: a model whose one call cannot fit in the machine's memory (or in the limit
the user gives, max_memory=) is refused at compile time, naming its largest buffers; one near
the limit is warned about. Sizes are parsed and printed here too.

What one call needs: the workspace (every thread slot), the weights, and one sample's inputs
and outputs. The machine's memory is its physical memory, or its container's limit when lower.
"""
import math
import os
import warnings
from pathlib import Path

from .errors import CompileError, layer_ref

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
NEAR = 0.8  # a call that needs this share of the limit or more is warned about
LARGEST = 3  # buffers a refusal names


class MemoryLimitWarning(UserWarning):
    """A model's one call needs most of the memory it may use."""


def parse_size(value, what):
    """Bytes from an int, or text: a number with an optional K, M, G or T (powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    text = str(value).strip()
    number = text.rstrip("KMGTkmgtBb").strip()
    unit = text[len(number):].strip().upper().rstrip("B")
    try:
        size = float(number)
    except ValueError:
        size = -1
    if size < 0 or unit not in _UNITS:
        raise ValueError(f"{what}={value!r} is not a size: give bytes, or a number with K, M, G "
                         "or T, e.g. 512M or 2G")
    return int(size * _UNITS[unit])


def human(n):
    """1536 -> '1.5 KiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"


def cgroup_memory_limit(root="/sys/fs/cgroup"):
    """The container's memory limit in bytes (cgroup v2 memory.max, else v1), or None."""
    for path in (Path(root, "memory.max"), Path(root, "memory", "memory.limit_in_bytes")):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # v1 writes a huge number for no limit
            return int(text)
    return None


def machine_memory():
    """Bytes of memory this process can have: physical memory, or the container's limit."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = None
    container = cgroup_memory_limit()
    sizes = [s for s in (total, container) if s]
    return min(sizes) if sizes else None


def limit(max_memory=None):
    """(bytes, where the figure comes from) that one call may use."""
    if max_memory is not None:
        return parse_size(max_memory, "max_memory"), "max_memory"
    return machine_memory(), "this machine's memory"


def check(graph, source, slots, max_memory=None):
    """Refuse (CompileError) or warn about a model whose one call needs too much memory;
    returns the limit (bytes) and where it comes from, for the calls' own check."""
    cap, whence = limit(max_memory)
    if not cap:
        return cap, whence
    weights = 4 * sum(int(a.size) for n in graph.nodes() for a in n.params.values())
    ports = (source.inputs or []) + (source.outputs or [])
    sample = 4 * sum(math.prod(p["shape"]) for p in ports) if ports else 4 * (
        math.prod(source.input_shape) + math.prod(source.output_shape))
    need = source.workspace_bytes + weights + sample
    if need <= NEAR * cap:
        return cap, whence
    slices = sorted(graph.meta.get("arena_slices", []), key=lambda s: -s[2])[:LARGEST]
    largest = ", ".join(f"{layer_ref(layer)} {role} {human(4 * floats)}"
                        for layer, role, floats in slices)
    message = (f"one call needs {human(need)}: a workspace of {human(source.workspace_bytes)} "
               f"({slots} thread slot(s)), {human(weights)} of weights and {human(sample)} of one "
               f"sample's inputs and outputs; {whence} is {human(cap)}. "
               + (f"Largest buffers per sample: {largest}. " if largest else "")
               + "Give a smaller input_shape, batch_group=1, or fewer threads (num_threads=1)"
               + ("" if max_memory is None else ", or a larger max_memory"))
    if need > cap:
        raise CompileError(f"{graph.name} does not fit in memory: {message}")
    warnings.warn(f"{graph.name} needs {need / cap:.0%} of the memory it may use: {message}",
                  MemoryLimitWarning, stacklevel=3)
    return cap, whence


def refuse_batch(prefix, batch, sample_bytes, cap, whence):
    """The MemoryError of a call whose outputs (and converted inputs) cannot fit."""
    return MemoryError(f"{prefix}: a batch of {batch:,} needs {human(batch * sample_bytes)} for "
                       f"its outputs and converted inputs ({human(sample_bytes)} per sample); "
                       f"{whence} is {human(cap)}: call it on smaller batches")

