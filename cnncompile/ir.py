"""The layer graph: a networkx DiGraph of Nodes.

A node has a unique ``name`` (module path such as ``features.3``, or ``relu_1`` for a
functional call), an ``op`` (registry key), ``attrs`` (plain ints, tuples, strings),
``params`` (numpy arrays) and ``meta`` (what passes found: ``shape``, ``flops``,
``activation``, ``buffer``...). Edges carry the input positions (``positions``, a list,
since one value may feed several inputs of the same node).
"""
import copy as _copy
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from .op_registry import REGISTRY
from .options import CompileOptions


# The fields of node.meta: who writes each (the tracer or a pass) for the passes after it to
# read. Graph.lint() refuses any other key, so a pass that adds a field declares it here.
META_FIELDS = {
    "source": "trace: the user's line that called the layer, for error messages",
    "shape": "trace, infer_shapes: the output shape",
    "flops": "infer_shapes: FLOPs per sample",
    "activation": "fuse_activation: the activation the layer applies as it stores",
    "residual": "fuse_residual: the operand the layer adds as it stores",
    "fused": "fold_batch_norm, fuse_*, pipeline_pointwise: the layers merged into it",
    "in_shapes": "select_kernels: the input shapes the kernels' rules read",
    "kernel": "select_kernels: the kernel's name (cnncompile/kernels/)",
    "layout": "select_kernels, select_layout: 'blocks' when the output is in channel blocks",
    "reads": "select_kernels: 'blocks' when a layer outside a run reads blocks itself",
    "pipelined_into": "pipeline_pointwise: the layer that computes this 1x1 layer's output",
    "reader": "pipeline_pointwise: 'depthwise' or 'pool', the kind of that layer",
    "pipelined_from": "pipeline_pointwise: the 1x1 layer this one computes",
    "inplace": "plan_memory: the output is written over the input",
    "buffer": "plan_memory: where the output lives (kind, offset)",
    "scratch": "plan_memory: where the layer's scratch lives (kind, offset)",
}


@dataclass
class Node:
    name: str
    op: str
    attrs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def shape(self):
        return self.meta.get("shape")


@dataclass(frozen=True)
class Value:
    """What a shape rule sees of one input: the producing node and its output shape."""
    name: str
    op: str
    shape: tuple
    origin: "Value" = None  # for a reshape: the value it reshapes (for error messages)


class Graph:
    def __init__(self, name="model"):
        self.name = name
        self.nx = nx.DiGraph()
        self.inputs = []   # names of input nodes, in call order
        self.outputs = []  # names of nodes whose values forward() returns
        self.meta = {}     # whole-graph pass results, e.g. workspace_floats
        self.options = CompileOptions()  # what compile() was asked for (options.py)

    # -- construction --------------------------------------------------------------------
    def add(self, node, inputs=()):
        if node.name in self.nx:
            raise ValueError(f"duplicate node name {node.name!r}")
        self.nx.add_node(node.name, node=node)
        for pos, src in enumerate(inputs):
            self._connect(src, node.name, pos)
        return node

    def connect(self, src, dst, pos):
        """Make ``src`` input ``pos`` of ``dst`` (a new input, or one more use of src)."""
        self._connect(src, dst, pos)

    def _connect(self, src, dst, pos):
        if self.nx.has_edge(src, dst):
            self.nx.edges[src, dst]["positions"].append(pos)
        else:
            self.nx.add_edge(src, dst, positions=[pos])

    def unique_name(self, base):
        if base not in self.nx:
            return base
        i = 1
        while f"{base}_{i}" in self.nx:
            i += 1
        return f"{base}_{i}"

    # -- queries -------------------------------------------------------------------------
    def node(self, name):
        return self.nx.nodes[name]["node"]

    def __contains__(self, name):
        return name in self.nx

    def __len__(self):
        return self.nx.number_of_nodes()

    def nodes(self):
        """Nodes in a deterministic topological order (ties broken by insertion order)."""
        order = {n: i for i, n in enumerate(self.nx.nodes)}
        return [self.node(n) for n in nx.lexicographical_topological_sort(self.nx, key=order.get)]

    def input_names(self, name):
        pairs = []
        for src in self.nx.predecessors(name):
            pairs += [(pos, src) for pos in self.nx.edges[src, name]["positions"]]
        return [src for _, src in sorted(pairs)]

    def input_values(self, name):
        return [self.value(src) for src in self.input_names(name)]

    def value(self, name):
        n = self.node(name)
        origin = None
        if n.op == "reshape" and self.input_names(name):
            origin = self.value(self.input_names(name)[0])
        return Value(n.name, n.op, n.meta.get("shape"), origin)

    def users(self, name):
        return list(self.nx.successors(name))

    # -- rewriting -------------------------------------------------------------------------
    def replace_all_uses(self, old, new):
        """Every consumer of ``old`` reads ``new`` instead; graph outputs follow."""
        for dst in list(self.nx.successors(old)):
            for pos in self.nx.edges[old, dst]["positions"]:
                self._connect(new, dst, pos)
            self.nx.remove_edge(old, dst)
        self.outputs = [new if o == old else o for o in self.outputs]

    def insert_before(self, name, new, position=0):
        """Put ``new`` on input ``position`` of node ``name``: src -> new -> name."""
        src = self.input_names(name)[position]
        positions = self.nx.edges[src, name]["positions"]
        positions.remove(position)
        if not positions:
            self.nx.remove_edge(src, name)
        self.add(new, [src])
        self._connect(new.name, name, position)

    def set_input(self, name, position, src):
        """Make ``src`` input ``position`` of node ``name``, in place of what was there."""
        old = self.input_names(name)[position]
        positions = self.nx.edges[old, name]["positions"]
        positions.remove(position)
        if not positions:
            self.nx.remove_edge(old, name)
        self._connect(src, name, position)

    def remove(self, name):
        if self.users(name) or name in self.outputs:
            raise ValueError(f"cannot remove {name!r}: it is still used")
        self.nx.remove_node(name)

    def copy(self):
        return _copy.deepcopy(self)

    # -- checks and display ------------------------------------------------------------------
    def lint(self):
        """Check the invariants every pass must keep; raise ValueError naming the first breach."""
        if not nx.is_directed_acyclic_graph(self.nx):
            raise ValueError("graph has a cycle")
        for name in self.nx.nodes:
            node = self.node(name)
            if node.name != name:
                raise ValueError(f"node stored as {name!r} is named {node.name!r}")
            unknown = set(node.meta) - set(META_FIELDS)
            if unknown:
                raise ValueError(f"{name}: undeclared meta field(s) {sorted(unknown)}; declare "
                                 "them in ir.META_FIELDS")
            if node.op not in REGISTRY:
                raise ValueError(f"{name}: unknown op {node.op!r}")
            positions = sorted(p for src in self.nx.predecessors(name)
                               for p in self.nx.edges[src, name]["positions"])
            if positions != list(range(len(positions))):
                raise ValueError(f"{name}: input positions {positions} are not 0..n-1")
            arity = REGISTRY[node.op].arity
            if arity is not None and len(positions) != arity:
                raise ValueError(f"{name}: {node.op} takes {arity} inputs, has {len(positions)}")
            for key, value in node.params.items():
                if not isinstance(value, np.ndarray):
                    raise ValueError(f"{name}: param {key!r} is not a numpy array")
        for name in self.inputs + self.outputs:
            if name not in self.nx:
                raise ValueError(f"graph input/output {name!r} is not a node")
        return self

    def summary(self):
        """A table: layer, op, output shape, params, FLOPs, kernel, and the layers fused into it."""
        rows = [("layer", "op", "output shape", "params", "FLOPs", "kernel", "fused")]
        total_params = total_flops = 0
        for node in self.nodes():
            op = REGISTRY[node.op]
            n_params = op.param_count(node)
            flops = node.meta.get("flops", 0)
            total_params += n_params
            total_flops += flops
            fused = ", ".join(f["layer"] if f["layer"] == f["op"] else f"{f['layer']} ({f['op']})"
                              for f in node.meta.get("fused", []))
            rows.append((node.name, node.op, _fmt_shape(node.meta.get("shape")),
                         f"{n_params:,}" if n_params else "-", f"{flops:,}" if flops else "-",
                         _kernel_label(node), fused or "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        sep = "  ".join("-" * w for w in widths)
        lines = [f"Model {self.name}", sep,
                 "  ".join(c.ljust(w) for c, w in zip(rows[0], widths)), sep]
        for r in rows[1:]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        lines.append(sep)
        lines.append(f"Total params: {total_params:,}    FLOPs per sample: {total_flops:,} "
                     f"({total_flops / 1e6:.2f} MFLOP)")
        return "\n".join(lines)

    def __str__(self):
        """One line per node: name = op(inputs) attrs -> shape."""
        lines = [f"graph {self.name}:"]
        for node in self.nodes():
            ins = ", ".join(self.input_names(node.name))
            attrs = ", ".join(f"{k}={v}" for k, v in node.attrs.items())
            extra = {k: v for k, v in node.meta.items() if k not in ("shape", "source")}
            line = f"  {node.name} = {node.op}({ins})"
            if attrs:
                line += f" [{attrs}]"
            line += f" -> {_fmt_shape(node.meta.get('shape'))}"
            if extra:
                line += f"  {extra}"
            lines.append(line)
        lines.append(f"  return {', '.join(self.outputs)}")
        return "\n".join(lines)

    def to_dot(self):
        lines = ["digraph model {", "  node [shape=box, fontname=monospace];"]
        ids = {name: f"n{i}" for i, name in enumerate(self.nx.nodes)}
        for node in self.nodes():
            label = f"{node.name}\\n{node.op} {_fmt_shape(node.meta.get('shape'))}"
            label = label.replace('"', "'")
            lines.append(f'  {ids[node.name]} [label="{label}"];')
        for src, dst in self.nx.edges:
            lines.append(f"  {ids[src]} -> {ids[dst]};")
        lines.append("}")
        return "\n".join(lines)


def _kernel_label(node):
    """The summary's kernel column; layers the layout pass set up say what they convert."""
    if "kernel" in node.meta:
        return node.meta["kernel"]
    if node.op == "reorder":
        return f"to_{node.attrs['to']}"
    return "reads_blocks" if node.meta.get("reads") == "blocks" else "-"


def _fmt_shape(shape):
    return "-" if shape is None else "(" + ", ".join(str(d) for d in shape) + ")"

