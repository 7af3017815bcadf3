"""The PyTorch frontend: real torch.nn modules compiled through torch.export, against torch."""
import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import cnncompile
from cnncompile.api import build_graph
from helpers import EXAMPLES, assert_close, random_input, run_torch
from models import pair


def _compare(compiled, torch_model, shape, batches=(1, 3)):
    for batch in batches:
        x = random_input((batch,) + tuple(shape[1:]), seed=batch)
        expected = run_torch(torch_model, x)
        rtol, atol = 1e-4, 1e-5  # the acceptance tolerance, Winograd layers included
        assert_close(compiled(x), expected, f"batch {batch} vs torch", rtol, atol)


@pytest.mark.parametrize("name", EXAMPLES)
def test_benchmark_model_from_torch(name):
    """The plain-PyTorch benchmark model compiles through from_torch, into the same graph the
    cnncompile.nn version traces to (same layer names, ops, attributes and weights), and its
    output matches torch's."""
    model, twin, shape = pair(name)
    native, converted = build_graph(model, shape), build_graph(twin, shape)
    assert list(native.nx.nodes) == list(converted.nx.nodes)
    for key in native.nx.nodes:
        a, b = native.node(key), converted.node(key)
        assert (a.op, a.attrs, a.meta.get("kernel")) == (b.op, b.attrs, b.meta.get("kernel")), key
        assert a.params.keys() == b.params.keys(), key
        for p in a.params:
            np.testing.assert_array_equal(a.params[p], b.params[p], err_msg=f"{key}.{p}")
    compiled = cnncompile.from_torch(twin, shape, werror=True)
    assert compiled.graph.name == type(twin).__name__
    _compare(compiled, twin, shape)


class Functional(tnn.Module):
    """Functional calls, parameters used directly, in-place adds and size arithmetic."""

    def __init__(self):
        super().__init__()
        self.weight = tnn.Parameter(torch.randn(6, 3, 3, 3) * 0.3)
        self.bias = tnn.Parameter(torch.randn(6) * 0.1)
        self.branch = tnn.Sequential(tnn.Conv2d(6, 6, 1), tnn.BatchNorm2d(6))
        self.fc = tnn.Linear(6 * 2 * 4 * 4, 5)

    def forward(self, x):
        x = TF.conv2d(x, self.weight, self.bias, padding=1)
        y = self.branch(x)
        y += x
        x = torch.relu(y)
        x = TF.max_pool2d(x, 2)
        x = torch.cat([x, torch.sigmoid(x) * 2.0 - 1.0], dim=1)
        x = x.view(x.size(0), -1)
        x = TF.dropout(x, 0.5, training=self.training)
        return TF.log_softmax(self.fc(x), dim=1)


def test_functional_calls_and_parameters():
    torch.manual_seed(0)
    model = Functional().eval()
    with torch.no_grad():
        model.branch[1].running_mean.uniform_(-0.5, 0.5)
        model.branch[1].running_var.uniform_(0.5, 1.5)
    compiled = cnncompile.compile(model, (1, 3, 8, 8), werror=True)
    names = list(compiled.graph.nx.nodes)
    assert "branch.0" in names and "fc" in names
    _compare(compiled, model, (1, 3, 8, 8))


class CumulativeSum(tnn.Module):
    def forward(self, x):
        return torch.cumsum(x, 1)


class Unsupported(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 8, 3)
        self.head = tnn.Sequential(CumulativeSum(), tnn.Conv2d(8, 8, 1))

    def forward(self, x):
        x = torch.flip(self.head(self.conv(x)), [3])
        x = TF.interpolate(x, scale_factor=2, mode="bicubic")
        return x.sort(dim=1)[0]


def test_every_unsupported_op_is_listed_with_its_module_path():
    """One error names every ATen op cnncompile lacks, in torch's words, where it is used."""
    with pytest.raises(cnncompile.UnsupportedError) as info:
        cnncompile.from_torch(Unsupported(), (1, 3, 8, 8))
    message = str(info.value)
    assert "4 unsupported layers" in message, message
    for fragment in ("head.0.cumsum: aten.cumsum.default", "flip: aten.flip.default",
                     "aten.upsample_bicubic2d.vec", "sort: aten.sort.default",
                     "test_frontend_torch.py:"):
        assert fragment in message, message


class Branchy(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x


def test_untraceable_module_gives_a_clear_error():
    with pytest.raises(cnncompile.TraceError, match="torch.export cannot capture Branchy") as info:
        cnncompile.from_torch(Branchy(), (1, 3, 8, 8))
    assert "torch.onnx.export" in str(info.value)


def test_training_mode_module_warns_and_compiles_for_inference():
    torch.manual_seed(1)
    model = tnn.Sequential(tnn.Conv2d(3, 4, 3), tnn.BatchNorm2d(4), tnn.Dropout(0.5), tnn.ReLU())
    with pytest.warns(UserWarning, match="training mode"):
        compiled = cnncompile.from_torch(model, (1, 3, 6, 6))
    _compare(compiled, model.eval(), (1, 3, 6, 6))


def test_batch_norm_without_running_statistics_is_refused():
    model = tnn.Sequential(tnn.Conv2d(3, 4, 3), tnn.BatchNorm2d(4, track_running_stats=False))
    with pytest.raises(cnncompile.UnsupportedError, match=r"1: .*track_running_stats=False"):
        cnncompile.from_torch(model.eval(), (1, 3, 6, 6))


def test_layer_options_are_carried_over():
    """Strides, dilations, groups, padding modes, ceil_mode, count_include_pad, no bias."""
    torch.manual_seed(2)
    model = tnn.Sequential(
        tnn.Conv2d(4, 8, 3, stride=2, padding=2, dilation=2, groups=2, bias=False,
                   padding_mode="reflect"),
        tnn.LeakyReLU(0.2),
        tnn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        tnn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1),
        tnn.Hardswish(),
        tnn.MaxPool2d(2, ceil_mode=True),
        tnn.ZeroPad2d((1, 0, 2, 1)),
        tnn.AdaptiveAvgPool2d((2, 3)),
        tnn.Flatten(),
        tnn.Linear(24, 3, bias=False),
        tnn.Softmax(dim=1)).eval()
    compiled = cnncompile.from_torch(model, (1, 4, 13, 11), werror=True)
    _compare(compiled, model, (1, 4, 13, 11))


def test_from_torch_rejects_other_models():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        cnncompile.from_torch(cnncompile.nn.ReLU(), (1, 3, 4, 4))



def test_cli_compiles_a_torch_model_file(tmp_path, capsys):
    from cnncompile.cli import main
    (tmp_path / "net.py").write_text(
        "import torch\nimport torch.nn as nn\n"
        "torch.manual_seed(0)\n"
        "model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n"
        "                      nn.Flatten(), nn.Linear(8 * 4 * 4, 10))\n"
        "INPUT_SHAPE = (1, 3, 8, 8)\n")
    assert main(["compile", str(tmp_path / "net.py"), "-o", str(tmp_path / "out")]) == 0
    assert "Check: max |compiled - numpy reference|" in capsys.readouterr().out
    torch.manual_seed(0)
    twin = tnn.Sequential(tnn.Conv2d(3, 8, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                          tnn.Flatten(), tnn.Linear(8 * 4 * 4, 10)).eval()
    x = random_input((2, 3, 8, 8))
    assert_close(cnncompile.load(tmp_path / "out")(x), run_torch(twin, x), "CLI build vs torch")


class Autocast(tnn.Module):
    """EfficientViT computes its attention under `torch.autocast(enabled=False)`."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        with torch.autocast(device_type="cpu", enabled=False):
            y = torch.relu(y.float()) * 2.0
        return y + 1.0


def test_a_wrapped_block_runs_inline():
    torch.manual_seed(3)
    model = Autocast().eval()
    _compare(cnncompile.from_torch(model, (1, 3, 5, 5), werror=True), model, (1, 3, 5, 5))


class Windows(tnn.Module):
    """Swin/EfficientViT window partition: windows folded into the batch dimension."""

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.view(b, c, 2, h // 2, 2, w // 2).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b * 4, c, h // 2, w // 2).relu()


def test_a_view_that_folds_into_the_batch_names_the_line():
    with pytest.raises(cnncompile.ShapeError, match="dimension 0 must stay the batch") as info:
        cnncompile.from_torch(Windows(), (1, 3, 4, 4))
    assert "test_frontend_torch.py" in str(info.value) and "x.reshape(b * 4" in str(info.value)
