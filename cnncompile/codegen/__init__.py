"""Code generation: a planned Graph -> model.c + model.h through the Jinja templates.

Python decides everything (names, shapes, offsets, loop bounds); templates only place the
values they are given. One C function per layer, named after the layer, with a comment
giving its op, attributes, shapes and FLOPs.
"""
import functools
import hashlib
import re
import warnings
from pathlib import Path
from dataclasses import dataclass

import jinja2
import numpy as np

from .. import kernels, ops
from ..version import __version__
from ..resources import templates_dir
from ..literals import c_floats
from .names import Namer, model_prefix, readable, sanitize

HEADER_NAME = "model.h"
# Up to this many weights are written into model.c as literals (readable, one file). Beyond
# it, parsing them is what a build spends its time on (about 6 us per value with gcc 12), so
# they go into weights.bin, which weights.S pulls into the object file with .incbin.
WEIGHTS_IN_C_MAX = 200_000
# weights="c" writes about 16 characters per value: above this many values they go to the blob
# all the same, so that model.c stays tens of MB and the compiler's memory bounded
WEIGHTS_IN_C_LIMIT = 4_000_000
BLOB_ALIGN_FLOATS = 16  # 64-byte alignment of every weight tensor in the blob
_COMMENT_SAFE = re.compile(r"[^A-Za-z0-9_ ,.()=+\-x>:]")


@dataclass
class CSource:
    prefix: str           # exported functions are <prefix>_forward and <prefix>_workspace_size
    c_source: str
    header: str
    cdef: str             # the declarations, for cffi
    input_shape: tuple    # per sample (of the first input)
    output_shape: tuple   # per sample (of the first output)
    workspace_bytes: int  # per sample
    weights_asm: str = None    # blob mode: the assembler file that links weights.bin
    layers: list = None        # the layer of each call in forward(), in order
    weights_key: str = None    # blob mode: digest of the unpacked weights and the packing code
    pack_weights: object = None  # blob mode: returns weights.bin's bytes, packing on demand
    inputs: list = None        # per input: dict(name, param, shape), in the C argument order
    outputs: list = None       # per output: the same, after the inputs
    io: dict = None            # graph.meta["io"]: names and returned structure (None: one of each)

    @property
    def weights_bin(self):
        """Blob mode: the packed weights (computed on each access: a cached build needs only
        weights_key)."""
        return None if self.pack_weights is None else self.pack_weights()


@functools.lru_cache(maxsize=None)
def environment():
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                              undefined=jinja2.StrictUndefined, autoescape=False,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def comment(text):
    """Text safe inside a C block comment: no '*/', no newline, nothing but plain characters."""
    return _COMMENT_SAFE.sub("?", text)


def _shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _describe(graph, node, ins):
    attrs = ", ".join(f"{k}={v}" for k, v in node.attrs.items()
                      if k not in ("in_channels", "out_channels", "in_features", "out_features",
                                   "call"))
    lines = [f"{readable(node.name)}: {node.op}" + (f" {attrs}" if attrs else ""),
             " + ".join(_shape(v.shape[1:]) for v in ins) + f" -> {_shape(node.meta['shape'][1:])}"
             + f", {node.meta.get('flops', 0):,} FLOPs per sample"]
    fused = node.meta.get("fused")
    if fused:
        lines.append("fused: " + ", ".join(f"{readable(f['layer'])} ({f['op']})" for f in fused))
    if node.meta.get("kernel"):
        lines.append(f"kernel: {node.meta['kernel']}")
    if node.meta.get("inplace"):
        lines.append("in place: writes over its input")
    return [comment(line) for line in lines]


def _pointer(buf, ports):
    kind, offset = buf
    if kind == "arena":
        return f"ws + {offset}" if offset else "ws"
    return ports[kind][offset]["local"]


def _ports(graph, namer, macro):
    """The model's inputs and outputs as C sees them: {"input": [...], "output": [...]}, each a
    dict of label (the model's name for it), param (the forward() parameter), local (its
    per-sample pointer in run_sample), size (floats per sample), shape, dims and the macro of
    its size. One input and one output keep the names they have always had: input/x and
    output/y; several are named after the model's names (input_x, output_aux) and numbered
    inside (x0, x1, y0...)."""
    io = graph.meta.get("io")
    ports, macros = {}, set()
    for kind, local in (("input", "x"), ("output", "y")):
        names = getattr(graph, kind + "s")
        labels = [kind] if io is None else io[kind + "s"]
        ports[kind] = []
        for i, (name, label) in enumerate(zip(names, labels)):
            shape = tuple(graph.node(name).meta["shape"][1:])
            if io is None:
                param, here = kind, local
            else:
                given = sanitize(label)
                param = namer.mangle(label, "" if given.startswith(kind) else kind + "_")
                here = namer.mangle(f"{local}{i}", "")
            size_macro = f"{macro}_{param.upper()}_SIZE"
            while size_macro in macros:  # names that differ only in case
                size_macro = size_macro[:-len("_SIZE")] + "_X_SIZE"
            macros.add(size_macro)
            ports[kind].append(dict(name=label, label=comment(readable(label)), param=param,
                                    local=here, shape=shape, dims=", ".join(map(str, shape)),
                                    size=int(np.prod(shape)), macro=size_macro))
    return ports


def _sample_params(ports):
    """The parameters of run_sample() and run_group(): a pointer per input and output."""
    return ", ".join([f"const float *restrict {p['local']}" for p in ports["input"]]
                     + [f"float *restrict {p['local']}" for p in ports["output"]])


def _batch_pointers(ports, step):
    """The arguments of run_sample/run_group for the sample(s) at ``step``: each caller
    pointer advanced by ``step`` samples."""
    return ", ".join(f"{p['param']} + (size_t){step} * {p['size']}"
                     for p in ports["input"] + ports["output"])


def _output_copies(graph, ports):
    """Outputs whose value is stored elsewhere (an input, or another output returning the same
    value): copied into the caller's buffer after the last layer."""
    copies = []
    for k, name in enumerate(graph.outputs):
        buf = graph.node(name).meta["buffer"]
        if buf != ("output", k):
            assert buf[0] != "arena", f"output {name} planned in the workspace"
            out = ports["output"][k]
            copies.append(dict(dst=out["local"], src=_pointer(buf, ports), size=out["size"]))
    return copies


class _BufferNames:
    """The names run_sample() and its variants give the workspace: one ``float *const`` per
    (offset, layer that writes it), named after that layer (conv1_out, conv1_scratch). Two
    layers that reuse one slice each have their own name for it; inputs and outputs keep their
    per-sample names (x, y)."""

    def __init__(self, namer, ports):
        self.namer, self.ports = namer, ports
        self.names, self.decls = {}, []  # decls: in order of first use

    def __call__(self, buf, layer, role="out"):
        if buf[0] != "arena":
            return _pointer(buf, self.ports)
        key = (buf[1], layer, role)
        if key not in self.names:
            self.names[key] = self.namer.local(layer, role)
            self.decls.append(dict(name=self.names[key], pointer=_pointer(buf, self.ports)))
        return self.names[key]


def _writer(graph, name):
    """The layer that stores a value: a view's (reshape, identity) is its input's."""
    while ops.REGISTRY[graph.node(name).op].alias:
        name = graph.input_names(name)[0]
    return name


# Batches run in groups of samples per thread when the model has layers that can compute a
# group at once (Kernel.group_layout: small images with large weights, which a group reads once
# instead of once per sample). Each sample of a group has its own copy of the workspace, so
# the group size is bounded by the memory that takes; models whose per-sample workspace
# allows fewer than GROUP_MIN samples (large activations, for which the weights are a
# smaller share of the traffic) keep running sample by sample.
GROUP_MAX = 16
GROUP_MIN = 8
GROUP_LIMIT = 256  # the largest batch_group a user may ask for
# A group's workspaces within half the L3 of the machines measured (32 MB, shared by the two
# threads' slots): larger groups ran slower than samples one by one (benchmarks/RESULTS.md).
GROUP_WORKSPACE_BYTES = 16 << 20


def group_size(graph, requested=None):
    """Samples per group: 1 (every layer per sample) unless some layer computes groups and
    their weights outweigh a sample's workspace (what a group saves against what it costs);
    then ``requested`` (compile's batch_group) or as many as fit the workspace budget."""
    def computes_groups(node):
        impl = kernels.implementation(node)
        return impl.template_for(node) and impl.group_layout(
            node, graph.input_values(node.name), node.meta["shape"], 2)
    grouped = [n for n in graph.nodes() if computes_groups(n)]
    if not grouped:
        return 1
    if requested is not None:
        return requested
    per_sample = 4 * max(graph.meta["workspace_floats"], 1)
    if 4 * sum(int(a.size) for n in grouped for a in n.params.values()) < per_sample:
        return 1
    group = min(GROUP_MAX, GROUP_WORKSPACE_BYTES // per_sample)
    return group if group >= GROUP_MIN else 1


def _group_pointers(buf, sizes, base):
    """(pointer to sample 0, C expression for sample s, stride between samples) of a buffer
    whose name (its pointer to sample 0) is base; sizes: the ports and the workspace floats."""
    stride = sizes["arena"] if buf[0] == "arena" else sizes[buf[0]][buf[1]]["size"]
    return base, f"{base} + (size_t)s * {stride}", stride


def generate(graph, name=None, weights="auto", profile=False, slots=1, group=None):
    """C source and header for a graph that has been through the whole pass pipeline.

    weights: "c" (literals in model.c), "blob" (weights.bin + weights.S), or "auto" (C up to
    WEIGHTS_IN_C_MAX values). profile: also emit <prefix>_profile(), which times each layer.
    slots: workspace slots, so that up to that many samples of a batch run at once.
    group: samples per group for the layers that compute groups (None: group_size's choice).
    """
    if weights not in ("auto", "c", "blob"):
        raise ValueError(f"weights={weights!r}: use 'auto', 'c' or 'blob'")
    env = environment()
    prefix = model_prefix(name or graph.name)
    namer = Namer()
    ports = _ports(graph, namer, prefix.upper())
    buffer_name = _BufferNames(namer, ports)
    total = sum(int(a.size) for n in graph.nodes() for a in n.params.values())
    if weights == "c" and total > WEIGHTS_IN_C_LIMIT:
        warnings.warn(f"weights='c': {total:,} weights would make model.c about "
                      f"{16 * total >> 20:,} MiB; they go to weights.bin instead (weights='c' "
                      f"takes up to {WEIGHTS_IN_C_LIMIT:,})", stacklevel=3)
        weights = "blob"
    use_blob = weights == "blob" or (weights == "auto" and total > WEIGHTS_IN_C_MAX)
    layers, calls, weights, chunks, offset = [], [], [], [], 0
    pipelined = {}  # 1x1 layers' template values, for the depthwise layer that runs them
    if group is not None and (not isinstance(group, int) or isinstance(group, bool)
                              or not 1 <= group <= GROUP_LIMIT):
        raise ValueError(f"batch_group={group!r}: use None (automatic) or a whole number "
                         f"from 1 (every sample on its own) to {GROUP_LIMIT}")
    group = group_size(graph, group)
    sizes = dict(ports, arena=graph.meta["workspace_floats"])
    group_scratch = 0
    for node in graph.nodes():
        op = ops.REGISTRY[node.op]
        impl = kernels.implementation(node)  # the layer's kernel, or its op
        template = impl.template_for(node)
        if template is None:
            continue
        ins = graph.input_values(node.name)
        fn = namer.mangle(node.name, "layer_")
        symbols = {}
        arrays = impl.packed_shapes(node) if use_blob else impl.pack(node)
        for pname, array in arrays.items():
            sym = namer.mangle(f"{node.name}_{pname}", "w_")
            symbols[pname] = sym
            shape = array if use_blob else array.shape
            size = int(np.prod(shape))
            entry = dict(symbol=sym, size=size, shape=_shape(shape))
            if use_blob:
                entry["offset"] = offset
                chunks.append((offset, node, pname, size))
                offset += -(-size // BLOB_ALIGN_FLOATS) * BLOB_ALIGN_FLOATS
            else:
                entry["data"] = c_floats(array)
            weights.append(entry)
        act = node.meta.get("activation")
        act_ctx = None
        if act is not None:
            act_ctx = dict(fn=act["fn"], args="".join(f", {a}" for a in act["args"]))
        elif op.activation is not None:
            act_ctx = dict(fn=op.activation, args="".join(f", {a}" for a in op.activation_args(node)))
        ctx = dict(fn=fn, doc=_describe(graph, node, ins), act=act_ctx,
                   p=symbols,
                   inplace=bool(node.meta.get("inplace")))
        ctx.update(impl.lower(node, ins, node.meta["shape"]))
        ctx["group"] = impl.group_layout(node, ins, node.meta["shape"], group) if group > 1 else None
        if "pipelined_into" in node.meta:  # its work is done by the layer that reads it
            pipelined[node.name] = ctx
            continue
        srcs = graph.input_names(node.name)
        if "pipelined_from" in node.meta:  # ... here: it reads the 1x1 layer's input instead
            producer = node.meta["pipelined_from"]
            ctx["pw"] = pipelined.pop(producer)
            ctx["parallel"] = max(ctx["parallel"], ctx["pw"]["parallel"])
            srcs = graph.input_names(producer)[:1] + srcs[1:]
        bufs = [graph.node(src).meta["buffer"] for src in srcs]
        layers.append(env.get_template("ops/" + template).render(ctx))
        bufs.append(node.meta["buffer"])
        names = [buffer_name(b, _writer(graph, s)) for b, s in zip(bufs, srcs + [node.name])]
        args = list(names)
        sample_args = [_group_pointers(b, sizes, n)[1] for b, n in zip(bufs, names)]
        if "scratch" in node.meta:
            args.append(buffer_name(node.meta["scratch"], node.name, "scratch"))
            sample_args.append(_group_pointers(node.meta["scratch"], sizes, args[-1])[1])
        call = dict(fn=fn, args=args, sample_args=sample_args, layer=node.name)
        if ctx["group"]:
            group_scratch = max(group_scratch, ctx["group"]["scratch"])
            call["group_args"] = [a for b, n in zip(bufs, names)
                                  for a in _group_pointers(b, sizes, n)[::2]] + ["gs", "count"]
        calls.append(call)

    in_group = {a for c in calls for a in c.get("group_args", c["args"])}
    group_buffers = [d for d in buffer_name.decls if d["name"] in in_group]
    in_shape, out_shape = ports["input"][0]["shape"], ports["output"][0]["shape"]
    workspace_floats = graph.meta["workspace_floats"]
    # a slot: one sample's workspace, or a group's: one per sample, then the group layers' scratch
    slot_floats = workspace_floats if group == 1 else \
        -(-(group * workspace_floats + group_scratch) // 16) * 16
    workspace_bytes = 4 * slot_floats * slots
    blob = None
    if use_blob:
        blob = dict(symbol=f"{prefix}_weights", count=f"{offset:,}", bytes=f"{4 * offset:,}",
                    version=__version__)
    total_params = sum(ops.REGISTRY[n.op].param_count(n) for n in graph.nodes())
    copies = _output_copies(graph, ports)
    read = {a for c in calls for a in c["args"]} | {c["src"] for c in copies}
    unused = [p["local"] for p in ports["input"] if p["local"] not in read]  # forward() ignores it
    total_flops = sum(n.meta.get("flops", 0) for n in graph.nodes())
    ctx = dict(version=__version__, model=comment(readable(graph.name)), prefix=prefix,
               macro=prefix.upper(), header_name=HEADER_NAME,
               in_shape=_shape(in_shape), out_shape=_shape(out_shape),
               in_dims=", ".join(map(str, in_shape)), out_dims=", ".join(map(str, out_shape)),
               in_size=int(np.prod(in_shape)), out_size=int(np.prod(out_shape)),
               workspace_bytes=workspace_bytes, workspace_floats=workspace_floats, slots=slots,
               group=group, slot_floats=slot_floats, group_scratch_offset=group * workspace_floats,
               params=f"{total_params:,}",
               flops=f"{total_flops:,}", layers=layers, calls=calls, weights=weights,
               buffers=buffer_name.decls, group_buffers=group_buffers,
               blob=blob, profile=profile,
               several="io" in graph.meta, inputs=ports["input"], outputs=ports["output"],
               ports=ports["input"] + ports["output"], copies=copies, unused=unused,
               signature=forward_params(ports["input"], ports["output"]),
               sample_params=_sample_params(ports),
               any_null=" || ".join(f"!{p['param']}" for p in ports["input"] + ports["output"]),
               at_n=_batch_pointers(ports, "n"), at_g=_batch_pointers(ports, "g * per"))
    c_source = env.get_template("model.c.j2").render(ctx)
    header = env.get_template("model.h.j2").render(ctx)
    params = ctx["signature"]
    cdef = (f"size_t {prefix}_workspace_size(void);\n"
            f"void {prefix}_set_num_threads(int num_threads);\n"
            f"int {prefix}_forward({params});\n")
    if profile:
        cdef += f"int {prefix}_profile({params}, double *seconds);\n"
    weights_asm = weights_key = pack_weights = None
    if use_blob:
        weights_asm = env.get_template("weights.S.j2").render(blob)
        weights_key = _weights_digest(graph)
        pack_weights = functools.partial(_pack_blob, chunks, offset)
    return CSource(prefix, c_source, header, cdef, in_shape, out_shape, workspace_bytes,
                   weights_asm, [c["layer"] for c in calls], weights_key, pack_weights,
                   inputs=[_port_info(p) for p in ports["input"]],
                   outputs=[_port_info(p) for p in ports["output"]], io=graph.meta.get("io"))


def forward_params(inputs, outputs):
    """The parameters of <prefix>_forward(): one pointer per input, then one per output (in
    the order graph.outputs lists them), the batch size and the workspace."""
    return ", ".join([f"const float *{p['param']}" for p in inputs]
                     + [f"float *{p['param']}" for p in outputs]
                     + ["int batch", "void *workspace"])


def _port_info(port):
    return dict(name=port["name"], param=port["param"], shape=list(port["shape"]))


def _pack_blob(chunks, floats):
    """weights.bin: each layer's packed arrays at their offsets, zeros between them; a float32
    array (bytes-like). A layer's arrays are consecutive: it is packed once, and its packed
    copy dropped before the next, so packing holds one layer's copy at a time."""
    data = np.zeros(floats, "<f4")
    last = packed = None
    for start, node, pname, size in chunks:
        if node is not last:
            last, packed = node, kernels.implementation(node).pack(node)
        array = packed[pname]
        assert array.size == size, f"{node.name}.{pname}: packed {array.size}, declared {size}"
        data[start:start + size] = array.ravel()
    return data


def _weights_digest(graph):
    """What the packed weights are a function of: every layer's parameters as given, its
    kernel (also in the C source), and the code that packs them."""
    h = hashlib.blake2b(digest_size=32)
    h.update(_packing_code())
    for node in graph.nodes():
        for pname, array in node.params.items():
            h.update(f"{node.name}\0{pname}\0{array.dtype}\0{array.shape}\0".encode())
            h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _packing_code():
    package = Path(ops.__file__).parent.parent
    files = sorted(package.glob("ops/*.py")) + sorted(package.glob("kernels/*.py"))
    return "\0".join(p.read_text() for p in files + [package / "layout.py"]).encode()
