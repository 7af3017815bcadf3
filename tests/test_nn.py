"""cnncompile.nn behaves as torch.nn for everything an inference model definition touches."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

import cnncompile
import cnncompile.nn as nn
from helpers import load_example


def test_sequential_forms_and_indexing():
    a, b, c = nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c and list(seq) == [a, b, c]
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:]) == [b, c]
    named = nn.Sequential(OrderedDict([("conv", a), ("act", b)]))
    assert [n for n, _ in named.named_children()] == ["conv", "act"] and named.conv is a
    empty = nn.Sequential()
    empty.add_module("Conv1", a)
    empty.append(b)
    assert [n for n, _ in empty.named_children()] == ["Conv1", "1"]
    with pytest.raises(IndexError):
        seq[3]
    with pytest.raises(KeyError):
        empty.add_module("a.b", c)


def test_state_dict_round_trip_with_torch():
    ns, tns = load_example("lenet5"), load_example("lenet5", "torch")
    model, twin = ns["model"], tns["model"]
    assert list(model.state_dict()) == list(twin.state_dict())
    # a torch state_dict loads as is, and the numbers arrive exactly
    model.load_state_dict(twin.state_dict())
    for k, v in twin.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v.numpy())
    # and a state dict with requires_grad tensors (named_parameters) too
    model.load_state_dict(dict(twin.named_parameters()))


def test_load_state_dict_errors_like_torch():
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "0.bias"'):
        model.load_state_dict({"0.weight": np.zeros((3, 4))})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra"'):
        model.load_state_dict({"0.weight": np.zeros((3, 4)), "0.bias": np.zeros(3),
                               "extra": np.zeros(1)})
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: .*\(4, 3\).*\(3, 4\)"):
        model.load_state_dict({"0.weight": np.zeros((4, 3)), "0.bias": np.zeros(3)})
    result = model.load_state_dict({"0.weight": np.ones((3, 4))}, strict=False)
    assert result.missing_keys == ["0.bias"] and model[0].weight.sum() == 12


def test_module_iterators_match_torch():
    model, twin = load_example("seed_sequential")["model"], load_example("seed_sequential", "torch")["model"]
    assert [n for n, _ in model.named_modules()] == [n for n, _ in twin.named_modules()]
    assert [n for n, _ in model.named_children()] == [n for n, _ in twin.named_children()]
    assert len(list(model.modules())) == len(list(twin.modules()))
    assert model.training and not model.eval().training and not model.features[0].training
    assert model.train().features[0].training


def test_initialisation_is_seeded_and_torch_like():
    cnncompile.manual_seed(0)
    a = nn.Conv2d(16, 32, 3)
    cnncompile.manual_seed(0)
    b = nn.Conv2d(16, 32, 3)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, nn.Conv2d(16, 32, 3).weight)
    bound = 1 / np.sqrt(16 * 9)  # kaiming_uniform(a=sqrt(5)) works out to 1/sqrt(fan_in)
    assert np.abs(a.weight).max() <= bound and np.abs(a.weight).max() > 0.95 * bound
    assert abs(a.weight.std() - bound / np.sqrt(3)) < 0.05 * bound
    assert a.weight.dtype == np.float32 and a.bias.shape == (32,)
    torch_w = torch.nn.Conv2d(16, 32, 3).weight.detach().numpy()
    assert abs(torch_w.std() - a.weight.std()) < 0.05 * bound


def test_layer_argument_checks():
    with pytest.raises(ValueError, match="in_channels .* divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(3, 6, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="invalid padding string"):
        nn.Conv2d(3, 6, 3, padding="full")
    assert nn.Conv2d(3, 6, (3, 5), bias=False).bias is None
    assert [n for n, _ in nn.Conv2d(3, 6, 3, bias=False).named_parameters()] == ["weight"]


def test_layers_run_eagerly_on_numpy():
    """Layers called on numpy arrays run the reference: handy for checking by hand."""
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    t = torch.nn.Conv2d(3, 4, 3, padding=1)
    t.load_state_dict({k: torch.from_numpy(v) for k, v in conv.state_dict().items()})
    np.testing.assert_allclose(conv(x), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert nn.ReLU()(np.array([-1.0, 2.0], np.float32)).tolist() == [0.0, 2.0]


def test_parameter_is_a_float32_array():
    p = nn.Parameter(np.arange(6).reshape(2, 3))
    assert p.dtype == np.float32 and p.numel() == 6 and p.requires_grad and p.data is p
    m = nn.Module()
    m.w = p
    assert list(m.state_dict()) == ["w"]
    with pytest.raises(AttributeError, match="before Module.__init__"):
        class Bad(nn.Module):
            def __init__(self):
                self.conv = nn.Conv2d(1, 1, 1)
        Bad()
