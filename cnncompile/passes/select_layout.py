"""Choose where tensors are stored in channel blocks rather than planes (ops/blocked.py).

Depthwise convolutions gain: on blocks they do one 16-channel vector multiply-add per pixel
and tap, on planes they work along rows, short and strided ones in small late layers. So do
the convolutions the shifted GEMM would run (direct_nchwc: one broadcast input value against
the weight vectors of two output blocks, no offset table). The layers around them run on
blocks too, so that the layout persists: a reorder costs a pass over the tensor, more than a
layer saves (runtime/cnn_nchw16c_reorder.h). So the pass finds the connected runs of layers that can
compute on blocks (depthwise, 1x1 stride-1 and direct convolutions, Winograd layers and max
pooling, with ReLU/ReLU6 or nothing fused), keeps those that contain a depthwise, direct or
Winograd layer and at least one other layer (or a lone direct layer whose inputs all come from
convolutions that write blocks for it), and puts a reorder at each edge of a run: into blocks
where a run reads a value computed on planes, back to planes where a layer outside the run,
or the model's output, reads a value computed on blocks. A convolution read by runs alone,
with small weights (a stem), writes blocks itself (shifted_nchwc) instead of a reorder after
it; a layer that can read blocks itself (Op.reads_blocks: global average pooling, max
pooling) needs no reorder before it, and a pooling layer that ends a run leaves it so. A
3x3 layer that would run direct_nchwc in a run takes Winograd F(4x4, 3x3) instead where that
gains on blocks (ops/winograd.py: gains_on_blocks); outside a run it keeps its planes kernel.

A kernel override to a blocked kernel makes its layer's run blocked whatever its size; an
override to any other kernel keeps that layer on planes. node.meta["layout"] is "blocks" on
the layers whose output is blocked; memory planning sizes their buffers from it.
"""
import math

import networkx as nx

from .. import ir, ops
from ..ops import blocked, winograd
from ..ops.conv import GEMM_ACTIVATIONS, MR

# the kernels that make a run worth its reorders; the others keep the layout between them.
# Winograd stores its output tiles as vectors on blocks, not pixel by pixel into planes:
# VGG-11's stem, pools and three Winograd layers on blocks took 0.93-0.97x the time.
# A layer whose Winograd only pays on blocks (ops/winograd.py: gains_on_blocks) is named by
# its kernel, which it takes when its run is blocked; it gains as a direct layer would, and
# may run alone on blocks as one.
GAINING = ("depthwise_nchwc", "direct_nchwc", "winograd", winograd.ON_BLOCKS)
LONE = ("direct_nchwc", winograd.ON_BLOCKS)


def _blocked_kernel(node, overridden):
    """The blocked kernel ``node`` could run ("blocks" for a layer other than a convolution
    that runs on blocks as it is, "winograd" for a Winograd layer), or None."""
    op = ops.REGISTRY[node.op]
    if node.op != "conv2d":
        return "blocks" if op.runs_on_blocks(node) else None
    if node.meta.get("kernel") in blocked.KERNELS:
        return node.meta["kernel"]
    if node.name in overridden:
        return None
    kernel = next((k for k in blocked.KERNELS if op.supports(node, k) and (
        k != "direct_nchwc" or blocked.direct_gains(node))), None)
    on_blocks = node.meta.get("activation", {}).get("fn") in GEMM_ACTIVATIONS
    if kernel is None and node.meta.get("kernel") in winograd.VARIANTS and on_blocks:
        return "winograd"  # Winograd reads and writes blocks around its transforms
    if kernel == "direct_nchwc" and on_blocks and winograd.gains_on_blocks(node):
        return winograd.ON_BLOCKS
    return kernel


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
        gains = any(able[name] in GAINING for name in run)
        lone = len(run) == 1 and all(able[name] in LONE for name in run)
        if forced or (gains and len(run) > 1) or (
                lone and _fed_by_entries(graph, run, overridden)):
            chosen |= run
    # a pooling layer that ends a run reads blocks and writes planes itself: no reorder after
    for name in list(chosen):
        if able[name] == "blocks" and all(
                u not in chosen for u in graph.users(name)) and _reads_blocks(graph, name):
            chosen.discard(name)
    for node in order:
        node.meta.pop("layout", None)
        node.meta.pop("reads", None)
        if node.name in chosen and able[node.name] not in ("blocks", "winograd"):
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
                if _reads_blocks(graph, node.name):
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
    """Whether ``node`` should write blocks for the runs, or the layers that read blocks
    (pooling), that alone read it. Without a run to save a reorder for, only when its output
    channels fill their blocks (LeNet-5's 6-channel layers did 16 channels' work, 1.3x slower
    in all with the pooling after them), or, in place of the shifted GEMM, when the blocks
    hold no more padding channels than the GEMM's panels of MR weight rows do: the GEMM then
    computes as many channels and still makes a pass over its result for the epilogue
    (seed_quiz's 3 -> 10 channel layer on 128x128 and its pooling 0.85x the time of the
    model at one thread, 0.74-0.78x at two; seed_network's 6 -> 12 layer 0.89x; its 1 -> 6
    layer, 16 channels' work against 8, 1.06x: it stays)."""
    users = graph.users(node.name)
    op = ops.REGISTRY[node.op]
    if not (node.op == "conv2d" and node.name not in overridden and users
            and node.name not in graph.outputs and op.supports(node, blocked.ENTRY)
            and math.prod(node.params["weight"].shape[1:]) <= blocked.ENTRY_MAX_TAPS):
        return False
    k = node.attrs["out_channels"]
    as_many = node.meta.get("kernel") == "shifted_gemm" and \
        blocked.blocks(k) * blocked.BLOCK <= -(-k // MR) * MR
    return all(u in runs for u in users) or (
        (blocked.fills_blocks(k) or as_many)
        and all(u in runs or _reads_blocks(graph, u) for u in users))


def _fed_by_entries(graph, run, overridden):
    """Whether every input of the run comes from a convolution that would write blocks for it
    (_entry). A run of one direct layer then needs no reorder in, only one out, small against
    its work (9 or more multiply-adds per input value and output channel; a lone depthwise
    layer's 9 per value would not pay for it): the autoencoder's 16 -> 32 3x3 stride-2 layer
    on 7x7, after its 1 -> 16 stem, took the whole model to 0.81x the time."""
    return all(_entry(graph, graph.node(src), run, overridden)
               for name in run for src in graph.input_names(name) if src not in run)


def _reads_blocks(graph, name):
    node = graph.node(name)
    return ops.REGISTRY[node.op].reads_blocks(node, graph.input_values(name))


def _reorder(graph, src, to):
    shape = graph.node(src).meta["shape"]
    node = ir.Node(graph.unique_name(f"{src}.to_{to}"), "reorder", attrs={"to": to},
                   meta={"shape": shape, "flops": 0})
    if to == "blocks":
        node.meta["layout"] = "blocks"
    graph.add(node, [src])
    return node.name
