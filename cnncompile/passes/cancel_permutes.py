"""Cancel a permute against its inverse across the layers between them, so that a model
written channels-last between permutes runs in its own layout without moving its data.

ConvNeXt's block reads ``x.permute(0, 2, 3, 1)``, a LayerNorm over the channels, Linear,
GELU, Linear and ``permute(0, 3, 1, 2)``; a Linear over the last dimension is already a 1x1
convolution between two permutes (nn/functional.py: linear), so the graph holds six permutes,
each a full pass over a large map. The rules, applied until none fires:

- a permute that leaves every dimension in place goes;
- a permute whose only user is a permute becomes one permute (the two composed);
- a permute P whose value flows, each layer its value's only user, through layers that do
  not see the order of the dimensions (elementwise activations; a LayerNorm over the last
  dimension when P put the channels there) into a permute Q that undoes P: P and Q go, the
  layers between read P's input, and each such LayerNorm becomes a channel_norm (LayerNorm
  over dim 1). Their values are the same numbers in the un-permuted order.
"""
from .. import ops


def _compose(first, then):
    """The permutation of x.permute(first).permute(then)."""
    return tuple(first[d] for d in then)


def _is_identity(perm):
    return tuple(perm) == tuple(range(len(perm)))


def _only_user(graph, name):
    users = graph.users(name)
    if len(users) != 1 or name in graph.outputs:
        return None
    return graph.node(users[0])


def _sinks_through(node, perm):
    """Whether ``node`` computes the same numbers on the input before ``perm``."""
    if ops.REGISTRY[node.op].activation is not None:
        return True
    if node.op == "layer_norm":
        # the LayerNorm's row is the last dimension, the channels before the permute
        return len(node.attrs["normalized_shape"]) == 1 and len(perm) >= 3 and perm[-1] == 1
    return False


def _cancel_across(graph, first):
    """Remove ``first`` and the permute that undoes it beyond a chain of layers that do not
    see the order; False when no such permute follows."""
    perm, chain, node = tuple(first.attrs["perm"]), [], _only_user(graph, first.name)
    while node is not None and node.op != "permute" and _sinks_through(node, perm):
        chain.append(node)
        node = _only_user(graph, node.name)
    if node is None or node.op != "permute" or not _is_identity(_compose(perm, node.attrs["perm"])):
        return False
    (src,) = graph.input_names(first.name)
    shape = graph.node(src).meta.get("shape")
    for layer in chain:
        if layer.op == "layer_norm":
            layer.op, layer.attrs = "channel_norm", {"eps": layer.attrs["eps"]}
        layer.meta["shape"] = shape
    if chain:
        graph.set_input(chain[0].name, 0, src)
    graph.replace_all_uses(node.name, chain[-1].name if chain else src)
    graph.remove(node.name)
    graph.remove(first.name)
    return True


def _rewrite_one(graph):
    for node in graph.nodes():
        if node.op != "permute":
            continue
        (src,) = graph.input_names(node.name)
        # an output stays a layer of its own when its source is an input or another output
        keeps = node.name in graph.outputs and (graph.node(src).op == "input" or src in graph.outputs)
        if _is_identity(node.attrs["perm"]) and not keeps:
            graph.replace_all_uses(node.name, src)
            graph.remove(node.name)
            return True
        user = _only_user(graph, node.name)
        if user is not None and user.op == "permute":
            user.attrs = dict(user.attrs, perm=_compose(node.attrs["perm"], user.attrs["perm"]))
            graph.set_input(user.name, 0, src)
            graph.remove(node.name)
            return True
        if _cancel_across(graph, node):
            return True
    return False


def cancel_permutes(graph):
    while _rewrite_one(graph):
        pass
    return graph
