"""Choose every layer's kernel and the layout it reads and writes (cnncompile/kernels/).

Requires: shapes (infer_shapes), fusions done. Ensures: every layer of an op with kernels has
node.meta["kernel"]; node.meta["layout"] is "blocks" on the layers whose output is in
channel blocks (cnncompile/layout.py); node.meta["reads"] is "blocks" on a layer outside the
runs that reads a blocked value itself (pooling). select_layout then inserts the reorders
those layouts imply.

1. Each layer on its own: the first kernel in the registry's order that applies to it and
   prefers it (kernels/__init__.py), or the kernel graph.options.kernels names for it.
2. Runs on channel blocks. Depthwise convolutions gain on blocks (one 16-channel vector
   multiply-add per pixel and tap instead of short, strided rows), and so do the layers the
   shifted GEMM would run (nchw16c.direct). The layers around them run on blocks too, so the
   layout persists: a reorder costs a pass over the tensor, more than a layer saves. So the
   connected runs of layers that can compute on blocks are found, and those kept that
   contain a gaining layer and at least one other (or a lone direct layer whose inputs all
   come from entries, below). A 3x3 layer that would run nchw16c.direct takes Winograd on
   blocks instead where that gains (kernels/conv_winograd.py: gains_on_blocks).
3. Edges of the runs. A convolution read by runs alone, with small weights (a stem), writes
   blocks itself (nchw_to_nchw16c.shifted) instead of a reorder after it; a pooling layer
   that can read blocks (Op.reads_blocks) needs no reorder before it, and one that ends a
   run leaves it so.

A kernel override to a blocked kernel makes its layer's run blocked whatever its size; an
override to any other kernel keeps that layer on planes.
"""
import math

import networkx as nx

from .. import kernels, ops
from ..kernels.conv_nchw16c import ENTRY_MAX_TAPS, direct_gains
from ..kernels.conv_winograd import gains_on_blocks
from ..kernels.gemm import MR
from ..layout import BLOCK, blocks, fills_blocks
from ..ops.activations import VECTOR_ACTIVATIONS

CONV = kernels.for_op("conv2d")
BLOCKED = ("nchw16c.pointwise", "nchw16c.depthwise", "nchw16c.direct")  # in the order tried
ENTRY = "nchw_to_nchw16c.shifted"  # planes in, blocks out: a convolution feeding a run
WINOGRAD_ON_BLOCKS = {"nchw.winograd_f4x4": "nchw16c.winograd_f4x4",
                      "nchw.winograd_f2x2": "nchw16c.winograd_f2x2"}
# the kernels that make a run worth its reorders; the others keep the layout between them.
# Winograd stores its output tiles as vectors on blocks rather than pixel by pixel into
# planes. A layer whose Winograd only pays on blocks gains as a direct layer would, and may
# run alone on blocks as one.
GAINING = ("nchw16c.depthwise", "nchw16c.direct", "winograd", "nchw16c.winograd_f4x4")
LONE = ("nchw16c.direct", "nchw16c.winograd_f4x4")


def select_kernels(graph):
    overrides = dict(graph.options.kernels)
    for node in graph.nodes():
        choices = kernels.for_op(node.op)
        if not choices:
            continue
        ins = graph.input_values(node.name)
        node.meta["in_shapes"] = [tuple(v.shape) for v in ins]
        name = overrides.pop(node.name, None)
        if name is None:
            name = kernels.choose(node, ins).name
        elif name not in choices or not choices[name].applies(node):
            usable = [k for k, kernel in choices.items() if kernel.applies(node)]
            raise ValueError(f"{node.name}: kernel {name!r} cannot compute this {node.op}; "
                             f"choose from {', '.join(usable)}")
        node.meta["kernel"] = name
    if overrides:
        raise ValueError(f"kernel overrides name layers that have no kernel choice: "
                         f"{', '.join(overrides)}")
    _place_blocked_runs(graph, set(graph.options.kernels))
    return graph


def _place_blocked_runs(graph, overridden):
    order = graph.nodes()
    able = {n.name: k for n in order if (k := _blocked_kernel(graph, n, overridden))}
    runs = nx.Graph()
    runs.add_nodes_from(able)
    runs.add_edges_from((src, dst) for dst in able for src in graph.input_names(dst)
                        if src in able)
    chosen = set()
    for run in nx.connected_components(runs):
        forced = any(name in overridden for name in run)
        gains = any(able[name] in GAINING for name in run)
        lone = len(run) == 1 and all(able[name] in LONE for name in run)
        if forced or (gains and len(run) > 1) or (
                lone and _fed_by_entries(graph, run, overridden)):
            chosen |= run
    # a pooling layer that ends a run reads blocks and writes planes itself
    for name in list(chosen):
        if able[name] == "blocks" and all(
                u not in chosen for u in graph.users(name)) and _reads_blocks(graph, name):
            chosen.discard(name)
    for node in order:
        node.meta.pop("layout", None)
        node.meta.pop("reads", None)
        if node.name in chosen and able[node.name] == "winograd":
            node.meta["kernel"] = WINOGRAD_ON_BLOCKS[node.meta["kernel"]]
        elif node.name in chosen and able[node.name] != "blocks":
            node.meta["kernel"] = able[node.name]
    # a convolution that feeds only runs can write blocks itself, if its kernel is small
    runs_only = set(chosen)
    for node in order:
        if node.meta.get("kernel") == ENTRY or (
                node.name not in chosen and _entry(graph, node, runs_only, overridden)):
            node.meta["kernel"] = ENTRY
            chosen.add(node.name)
    for node in order:
        if node.name in chosen:  # writes blocks
            node.meta["layout"] = "blocks"
        elif any(src in chosen for src in graph.input_names(node.name)) and \
                _reads_blocks(graph, node.name):
            node.meta["reads"] = "blocks"


def _blocked_kernel(graph, node, overridden):
    """The blocked kernel ``node`` could run ("blocks" for a layer other than a convolution
    that runs on blocks as it is, "winograd" for a Winograd layer), or None."""
    if node.op != "conv2d":
        return ("blocks" if ops.REGISTRY[node.op].runs_on_blocks(
            node, graph.input_values(node.name)) else None)
    if node.meta.get("kernel") in BLOCKED + tuple(WINOGRAD_ON_BLOCKS.values()):
        return node.meta["kernel"]
    if node.name in overridden:
        return None
    kernel = next((k for k in BLOCKED if CONV[k].applies(node) and (
        k != "nchw16c.direct" or direct_gains(node))), None)
    on_blocks = node.meta.get("activation", {}).get("fn") in VECTOR_ACTIVATIONS
    if kernel is None and node.meta.get("kernel") in WINOGRAD_ON_BLOCKS and on_blocks:
        return "winograd"  # Winograd reads and writes blocks around its transforms
    if kernel == "nchw16c.direct" and on_blocks and gains_on_blocks(node):
        return "nchw16c.winograd_f4x4"
    return kernel


def _entry(graph, node, runs, overridden):
    """Whether ``node`` should write blocks for the runs, or the layers that read blocks
    (pooling), that alone read it. Without a run to save a reorder for, only when its output
    channels fill their blocks, or, in place of the shifted GEMM, when the blocks hold no
    more padding channels than the GEMM's panels of MR weight rows do: the GEMM then computes
    as many channels and still makes a pass over its result for the epilogue."""
    users = graph.users(node.name)
    if not (node.op == "conv2d" and node.name not in overridden and users
            and node.name not in graph.outputs and CONV[ENTRY].applies(node)
            and math.prod(node.params["weight"].shape[1:]) <= ENTRY_MAX_TAPS):
        return False
    k = node.attrs["out_channels"]
    as_many = node.meta.get("kernel") == "nchw.shifted_gemm" and \
        blocks(k) * BLOCK <= -(-k // MR) * MR
    return all(u in runs for u in users) or (
        (fills_blocks(k) or as_many)
        and all(u in runs or _reads_blocks(graph, u) for u in users))


def _fed_by_entries(graph, run, overridden):
    """Whether every input of the run comes from a convolution that would write blocks for
    it (_entry). A run of one direct layer then needs no reorder in, only one out, small
    against its 9 or more multiply-adds per input value and output channel (a lone
    depthwise layer's 9 per value would not pay for it)."""
    return all(_entry(graph, graph.node(src), run, overridden)
               for name in run for src in graph.input_names(name) if src not in run)


def _reads_blocks(graph, name):
    node = graph.node(name)
    return ops.REGISTRY[node.op].reads_blocks(node, graph.input_values(name))
