"""Choose where tensors are stored in channel blocks rather than planes (ops/blocked.py).

Depthwise convolutions are the layers that gain: on blocks they do one 16-channel vector
multiply-add per pixel and tap, on planes they work along rows, short and strided ones in
small late layers. The 1x1 convolutions around them run on blocks too, so that the layout
persists: a reorder costs a pass over the tensor, more than a depthwise layer saves
(runtime/cnn_nchwc.h). So the pass finds the connected runs of layers that can compute on
blocks (1x1 stride-1 and depthwise convolutions, with ReLU/ReLU6 or nothing fused), keeps
those that contain a depthwise layer and at least one other layer, and puts a reorder at
each edge of a run: into blocks where a run reads a value computed on planes, back to planes
where a layer outside the run, or the model's output, reads a value computed on blocks.
A convolution read by runs alone, with small weights (a stem), writes blocks itself
(shifted_nchwc) instead of a reorder after it; a layer that can read blocks itself
(Op.reads_blocks: global average pooling) needs no reorder before it.

A kernel override to a blocked kernel makes its layer's run blocked whatever its size; an
override to any other kernel keeps that layer on planes. node.meta["layout"] is "blocks" on
the layers whose output is blocked; memory planning sizes their buffers from it.
"""
import math

import networkx as nx

from .. import ir, ops
from ..ops import blocked


def _blocked_kernel(node, overridden):
    """The blocked kernel ``node`` could run, or None."""
    if node.op != "conv2d":
        return None
    if node.meta.get("kernel") in blocked.KERNELS:
        return node.meta["kernel"]
    if node.name in overridden:
        return None
    op = ops.REGISTRY[node.op]
    return next((k for k in blocked.KERNELS if op.supports(node, k)), None)


def select_layout(graph):
    overridden = set(graph.meta.get("kernel_overrides") or {})
    order = graph.nodes()
    able = {n.name: k for n in order if (k := _blocked_kernel(n, overridden))}
    runs = nx.Graph()
    runs.add_nodes_from(able)
    runs.add_edges_from((src, dst) for dst in able for src in graph.input_names(dst)
                        if src in able)
    chosen = set()
    for run in nx.connected_components(runs):
        forced = any(name in overridden for name in run)
        depthwise = any(able[name] == "depthwise_nchwc" for name in run)
        if forced or (depthwise and len(run) > 1):
            chosen |= run
    for node in order:
        node.meta.pop("layout", None)
        node.meta.pop("reads", None)
        if node.name in chosen:
            node.meta["kernel"] = able[node.name]
    # a convolution that feeds only runs can write blocks itself, if its kernel is small
    runs_only = set(chosen)
    for node in order:
        if node.meta.get("kernel") == blocked.ENTRY or (
                node.name not in chosen and _entry(graph, node, runs_only, overridden)):
            node.meta["kernel"] = blocked.ENTRY
            chosen.add(node.name)
    for name in chosen:  # the layers that write blocks
        graph.node(name).meta["layout"] = "blocks"
    into, out_of = {}, {}
    for node in order:
        for pos, src in enumerate(graph.input_names(node.name)):
            wants = node.name in runs_only  # reads blocks
            if wants and src not in chosen:
                if src not in into:
                    into[src] = _reorder(graph, src, "blocks")
                graph.set_input(node.name, pos, into[src])
            elif not wants and src in chosen:
                if ops.REGISTRY[node.op].reads_blocks(node, graph.input_values(node.name)):
                    node.meta["reads"] = "blocks"
                    continue
                if src not in out_of:
                    out_of[src] = _reorder(graph, src, "planes")
                graph.set_input(node.name, pos, out_of[src])
    for i, name in enumerate(graph.outputs):
        if name in chosen:
            if name not in out_of:
                out_of[name] = _reorder(graph, name, "planes")
            graph.outputs[i] = out_of[name]
    return graph


def _entry(graph, node, runs, overridden):
    """Whether ``node`` should write blocks for the runs that alone read it."""
    users = graph.users(node.name)
    op = ops.REGISTRY[node.op]
    return (node.op == "conv2d" and node.name not in overridden and users
            and all(u in runs for u in users) and node.name not in graph.outputs
            and op.supports(node, blocked.ENTRY)
            and math.prod(node.params["weight"].shape[1:]) <= blocked.ENTRY_MAX_TAPS)


def _reorder(graph, src, to):
    shape = graph.node(src).meta["shape"]
    node = ir.Node(graph.unique_name(f"{src}.to_{to}"), "reorder", attrs={"to": to},
                   meta={"shape": shape, "flops": 0})
    if to == "blocks":
        node.meta["layout"] = "blocks"
    graph.add(node, [src])
    return node.name
