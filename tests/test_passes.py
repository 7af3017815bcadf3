"""Each pass: the graph structure after it, and numbers unchanged by it."""
import numpy as np
import pytest

import cnncompile.nn as nn
import cnncompile.nn.functional as F
from cnncompile import ops, passes, reference
from cnncompile.ir import Graph, Node
from cnncompile.passes import eliminate_dead_code, fuse_activation, infer_shapes, plan_memory
from cnncompile.trace import trace
from helpers import EXAMPLES, assert_memory_plan_safe, load_example, random_input


def structure(graph):
    return [(n.name, n.op, graph.input_names(n.name)) for n in graph.nodes()]


def test_fuse_activation_into_conv_linear_and_pool():
    g = trace(load_example("seed_network")["model"], (1, 1, 28, 28))
    x = random_input((2, 1, 28, 28))
    before = reference.run(g, x)
    g = fuse_activation(infer_shapes(g)).lint()
    assert structure(g) == [
        ("input", "input", []), ("conv1", "conv2d", ["input"]),
        ("max_pool2d", "max_pool2d", ["conv1"]), ("conv2", "conv2d", ["max_pool2d"]),
        ("max_pool2d_1", "max_pool2d", ["conv2"]), ("reshape", "reshape", ["max_pool2d_1"]),
        ("fc1", "linear", ["reshape"]), ("fc2", "linear", ["fc1"]), ("out", "linear", ["fc2"])]
    assert g.node("conv1").meta["fused"] == [{"layer": "relu", "op": "relu"}]
    assert g.node("fc2").meta["activation"]["fn"] == "cnn_relu"
    assert "activation" not in g.node("out").meta
    np.testing.assert_array_equal(reference.run(g, x), before)


def test_no_fusion_when_the_producer_has_other_users_or_is_an_output():
    g = Graph("t")
    g.add(Node("x", "input", {"shape": (1, 2, 4, 4)}))
    conv = dict(in_channels=2, out_channels=2, kernel_size=(1, 1), stride=(1, 1),
                padding=(0, 0), dilation=(1, 1), groups=1, padding_mode="zeros")
    g.add(Node("c", "conv2d", conv, {"weight": np.ones((2, 2, 1, 1), np.float32)}), ["x"])
    g.add(Node("r", "relu"), ["c"])
    g.add(Node("p", "max_pool2d", dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0),
                                       dilation=(1, 1), ceil_mode=False, return_indices=False)), ["c"])
    g.inputs, g.outputs = ["x"], ["r"]
    fuse_activation(infer_shapes(g)).lint()
    assert "r" in g and "activation" not in g.node("c").meta  # c also feeds p
    eliminate_dead_code(g).lint()
    assert "p" not in g
    g.outputs = ["c"]
    g.add(Node("r2", "relu"), ["c"])
    fuse_activation(g)
    assert "r2" in g  # c is a model output: its users must see it un-activated


def test_dead_code_is_removed():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 3)

        def forward(self, x):
            self.unused(x)
            return F.relu(self.used(x))
    g = eliminate_dead_code(infer_shapes(trace(Net(), (1, 1, 5, 5))))
    assert [n.name for n in g.nodes()] == ["input", "used", "relu"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_memory_plan_never_overwrites_a_live_value(name):
    ns = load_example(name)
    g = passes.run(trace(ns["model"], ns["INPUT_SHAPE"]), lint=True)
    assert_memory_plan_safe(g)


def test_pipeline_can_stop_after_any_pass():
    model = load_example("lenet5")["model"]
    seen = []
    g = passes.run(trace(model, (1, 1, 28, 28)), after="fuse_activation",
                   on_pass=lambda name, graph: seen.append(name), lint=True)
    assert seen == passes.PASS_NAMES[:passes.PASS_NAMES.index("fuse_activation") + 1]
    assert seen[0] == "lower_padding_mode" and "fold_batch_norm" in seen
    assert "buffer" not in g.node("features.0").meta
    with pytest.raises(ValueError, match="unknown pass 'nope'; passes are: lower_padding_mode, infer_shapes"):
        passes.run(g, after="nope")
    assert plan_memory(g).meta["workspace_floats"] > 0


def test_batch_norm_folds_into_conv_and_linear_without_changing_numbers():
    import cnncompile.nn as cnn
    from helpers import randomise_batch_norm
    model = cnn.Sequential(cnn.Conv2d(3, 4, 3), cnn.BatchNorm2d(4), cnn.ReLU(), cnn.Flatten(),
                           cnn.Linear(64, 5), cnn.BatchNorm2d(5)).eval()
    randomise_batch_norm(model)
    weight_before = model[0].weight.copy()
    g = trace(model, (1, 3, 6, 6))
    x = random_input((2, 3, 6, 6))
    before = reference.run(passes.run(g.copy(), after="eliminate_identity"), x)
    after = passes.run(g, after="fuse_activation", lint=True)
    assert [n.op for n in after.nodes()] == ["input", "conv2d", "reshape", "linear"]
    assert after.node("0").meta["fused"] == [{"layer": "1", "op": "batch_norm"},
                                             {"layer": "2", "op": "relu"}]
    assert after.node("4").meta["fused"] == [{"layer": "5", "op": "batch_norm"}]
    np.testing.assert_allclose(reference.run(after, x), before, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model[0].weight, weight_before)  # the model is untouched


def test_residual_add_fuses_into_the_later_conv():
    model = load_example("resnet18")["model"].eval()
    g = trace(model, (1, 3, 64, 64))
    x = random_input((1, 3, 64, 64))
    before = reference.run(passes.run(g.copy(), after="fold_batch_norm"), x)
    after = passes.run(g, after="fuse_activation", lint=True)
    assert not [n for n in after.nodes() if n.op in ("add", "batch_norm", "relu")]
    conv2 = after.node("layer1.0.conv2")  # identity is the block input: computed before
    assert after.input_names("layer1.0.conv2") == ["layer1.0.conv1", "maxpool"]
    assert [f["op"] for f in conv2.meta["fused"]] == ["batch_norm", "add", "relu"]
    down = after.node("layer2.0.downsample.0")  # runs after conv2: it takes the add
    assert down.meta["residual"]["value"] == "layer2.0.conv2"
    np.testing.assert_allclose(reference.run(after, x), before, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["mobilenet_v2", "seed_separable", "vgg11_cifar"])
def test_select_kernels_chooses_layouts_and_select_layout_only_reorders(name):
    """select_kernels gives every layer its kernel and layout and adds no layer;
    select_layout then adds reorders only, after which every layer reads its inputs in the
    layout it expects and the model's outputs are on planes. Numbers unchanged."""
    from cnncompile import kernels
    from cnncompile.layout import PLANES
    ns = load_example(name)
    shape = ns["INPUT_SHAPE"]
    g = trace(ns["model"].eval(), shape)
    x = random_input((2,) + tuple(shape[1:]))
    g = passes.run(g, after="select_kernels", lint=True)
    before = reference.run(g, x)  # after BatchNorm folding, which rounds the weights
    chosen = structure(g)
    assert all("kernel" in n.meta for n in g.nodes() if kernels.for_op(n.op))
    assert not any(n.op == "reorder" for n in g.nodes())
    assert any(kernels.layouts(n)[1] != PLANES for n in g.nodes())  # some run on blocks
    g = passes.select_layout(g).lint()
    after = structure(g)
    assert {s[0] for s in chosen} == {s[0] for s in after if s[1] != "reorder"}
    for node in g.nodes():
        for src in g.input_names(node.name):
            assert kernels.layouts(g.node(src))[1] == kernels.layouts(node)[0], (src, node.name)
    assert all(kernels.layouts(g.node(o))[1] == PLANES for o in g.outputs)
    np.testing.assert_array_equal(reference.run(g, x), before)


def test_lint_refuses_undeclared_meta_fields():
    """Passes talk through the node.meta fields ir.META_FIELDS declares, nothing else."""
    g = trace(load_example("seed_network")["model"], (1, 1, 28, 28))
    g.node("conv1").meta["layuot"] = "blocks"
    with pytest.raises(ValueError, match="conv1: undeclared meta field.*layuot"):
        g.lint()
