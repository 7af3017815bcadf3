"""Memory planning: one static per-sample workspace, buffers reused by liveness.

Each value is stored in a buffer: one of the caller's inputs, one of the caller's outputs,
or a slice of the workspace arena. Views (reshape) share their input's buffer; an
in-place-capable op (ReLU) writes over its input when nothing reads that input afterwards.
Arena slices are placed first fit by offset, a slice being free once the last layer reading
it has run.
"""
from .. import kernels, ops
from ..layout import floats

ALIGN_FLOATS = 16  # 64-byte alignment of every arena slice


def _align(n):
    return -(-n // ALIGN_FLOATS) * ALIGN_FLOATS


def plan_memory(graph):
    order = graph.nodes()
    index = {n.name: i for i, n in enumerate(order)}
    root = {}
    input_roots = set(graph.inputs)  # an input is its own root
    for node in order:
        op = ops.REGISTRY[node.op]
        ins = graph.input_names(node.name)
        node.meta.pop("inplace", None)
        if op.alias:
            root[node.name] = root[ins[0]]
        elif op.inplace and _can_overwrite(graph, root, index, input_roots, node, ins[0]):
            root[node.name] = root[ins[0]]
            node.meta["inplace"] = True
        else:
            root[node.name] = node.name
    last_use = {}
    for node in order:
        # a layer pipelined into a later one (passes/pipeline_pointwise.py) reads its inputs
        # while that one runs
        reads_at = index[node.meta.get("pipelined_into", node.name)]
        for src in graph.input_names(node.name):
            r = root[src]
            last_use[r] = max(last_use.get(r, -1), reads_at)
    # each value returned is stored in the caller's buffer of the first output that returns
    # it; outputs that return a value stored elsewhere (an input, or a value returned twice)
    # are copied there after the last layer (codegen: output_copies)
    out_roots = {}
    for k, o in enumerate(graph.outputs):
        if root[o] not in input_roots:
            out_roots.setdefault(root[o], k)

    placed = []  # (offset, size, last_use) of arena slices
    slices = []  # (layer, "output" or "scratch", floats): what the arena holds, for messages
    arena = 0

    def place(size, start, end):
        nonlocal arena
        live = sorted((o, s) for o, s, e in placed if e >= start)
        offset = 0
        for o, s in live:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, end))
        arena = max(arena, offset + size)
        return offset

    for node in order:
        op = ops.REGISTRY[node.op]
        r = root[node.name]
        impl = kernels.implementation(node)
        scratch = impl.scratch(node, graph.input_values(node.name), node.meta["shape"]) \
            if impl.template_for(node) else 0
        if scratch:  # live only while this layer runs, beside its inputs and output
            node.meta["scratch"] = ("arena", place(_align(scratch), index[node.name], index[node.name]))
            slices.append((node.name, "scratch", _align(scratch)))
        else:
            node.meta.pop("scratch", None)
        if r != node.name:
            continue
        if "pipelined_into" in node.meta:  # never stored whole: rows in its reader's scratch
            buf = None
        elif r in input_roots:
            buf = ("input", graph.inputs.index(r))
        elif r in out_roots:
            buf = ("output", out_roots[r])
        else:
            start = index[node.name]
            buf = ("arena", place(_align(_floats(node)), start, last_use.get(r, start)))
            slices.append((node.name, "output", _align(_floats(node))))
        node.meta["buffer"] = buf
    for node in order:
        node.meta["buffer"] = graph.node(root[node.name]).meta["buffer"]
    graph.meta["workspace_floats"] = arena
    graph.meta["arena_slices"] = slices
    graph.meta["output_is_input"] = any(root[o] in input_roots for o in graph.outputs)
    return graph


def _floats(node):
    """Floats per sample of a layer's output: channel blocks are padded to whole blocks."""
    if node.meta.get("layout") == "blocks":
        return floats(node.meta["shape"])
    return ops.numel(node.meta["shape"][1:])


def _can_overwrite(graph, root, index, input_roots, node, src):
    """True when ``node``'s output fits ``src``'s buffer and no later layer reads that buffer."""
    r = root[src]
    if ops.numel(graph.node(src).meta["shape"]) != ops.numel(node.meta["shape"]):
        return False
    if r in input_roots:
        return False
    for value, value_root in root.items():
        if value_root != r:
            continue
        if value in graph.outputs:
            return False
        if any(index[u] > index[node.name] for u in graph.users(value)):
            return False
    return True
