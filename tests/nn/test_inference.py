"""The eval-mode inference cache of TTLinear: used where it pays, and rebuilt whenever a core
changes (optimizer step, load_state_dict, .to(), round_), never stale."""

import copy

import pytest
import torch
from torch import nn

from ttnet import CostModel
from ttnet_nn import TTAdapter, TTLinear, TTLoRAUpdate

#: Charges only kernel calls: one product with the cached weight beats any TT network.
CALLS_ONLY = CostModel("cpu", 0.0, 0.0, 1.0, source="test: calls only")


def _reference(layer: TTLinear, x: torch.Tensor) -> torch.Tensor:
    """The layer's output computed from scratch (no cache: a fresh dense weight)."""
    with torch.no_grad():
        return x @ layer.dense_weight().T + layer.bias


def _assert_fresh(layer: TTLinear, x: torch.Tensor, tol: float = 1e-4) -> None:
    """The eval-mode output equals the output from a freshly built weight."""
    with torch.no_grad():
        torch.testing.assert_close(layer(x), _reference(layer, x), rtol=tol, atol=tol / 10)


def _count_builds(monkeypatch, layer: TTLinear) -> list[int]:
    """Count how often the layout builds the dense weight (the cache's miss path)."""
    builds: list[int] = []
    layout_type = type(layer.layout)
    original = layout_type.dense
    monkeypatch.setattr(layout_type, "dense",
                        lambda self, cores: builds.append(1) or original(self, cores))
    return builds


@pytest.fixture
def layer():
    torch.manual_seed(0)
    return TTLinear(384, 64, tt_rank=5, cost_model=CALLS_ONLY).eval()


def test_eval_without_grad_builds_once_and_matches(monkeypatch, layer):
    builds = _count_builds(monkeypatch, layer)
    x = torch.randn(32, 384)
    with torch.no_grad():
        first, second = layer(x), layer(x)
    assert builds == [1] and torch.equal(first, second)
    _assert_fresh(layer, x)
    assert set(layer.state_dict()) == {"cores.0", "cores.1", "cores.2", "bias"}


def test_no_cache_with_gradients_or_in_training(monkeypatch, layer):
    builds = _count_builds(monkeypatch, layer)
    x = torch.randn(32, 384)
    layer(x)  # eval mode, gradients on: the training path
    layer.train()
    with torch.no_grad():
        layer(x)
    assert builds == []


def test_rebuilt_after_an_optimizer_step(layer):
    x = torch.randn(32, 384)
    with torch.no_grad():
        before = layer(x)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.01)
    layer(x).square().sum().backward()  # eval mode with gradients: no cache involved
    optimizer.step()
    with torch.no_grad():
        assert not torch.allclose(layer(x), before)
    _assert_fresh(layer, x)


def test_rebuilt_after_load_state_dict(layer):
    x = torch.randn(32, 384)
    with torch.no_grad():
        layer(x)
    torch.manual_seed(1)
    other = TTLinear(384, 64, tt_rank=5)
    layer.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(layer(x), _reference(other, x), rtol=1e-4, atol=1e-5)
    _assert_fresh(layer, x)


def test_rebuilt_after_to_and_round_(layer):
    x = torch.randn(32, 384)
    with torch.no_grad():
        layer(x)
        layer.to(torch.float64)
    assert layer(x.double()).dtype == torch.float64
    _assert_fresh(layer, x.double(), tol=1e-12)
    with torch.no_grad():
        layer.to(torch.float32)(x)
    layer.round_(max_rank=2)
    _assert_fresh(layer, x)


def test_in_place_edit_and_a_freed_address_are_not_stale(layer):
    """A core edited in place bumps its version; a copy of the layer has its own storage."""
    x = torch.randn(32, 384)
    with torch.no_grad():
        layer(x)
        layer.cores[1].mul_(2.0)
    _assert_fresh(layer, x)
    with torch.no_grad():
        clone = copy.deepcopy(layer)
        clone.cores[0].zero_()
        assert torch.equal(clone(x), clone.bias.expand(32, 64))
    _assert_fresh(layer, x)


@pytest.mark.parametrize("module", ["adapter", "lora"])
def test_modules_in_eval_match_training_outputs(module):
    torch.manual_seed(0)
    layer = (TTAdapter(256, 16, tt_rank=3) if module == "adapter"
             else TTLoRAUpdate(256, 256, r=4, lora_alpha=8, tt_rank=3))
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0.0, 0.2)
    x = torch.randn(64, 256)
    expected = layer(x).detach()
    layer.eval()
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    assert isinstance(layer, nn.Module)


def test_no_cache_where_the_tt_network_is_cheaper(monkeypatch):
    """4096 x 4096 at rank 8: by FLOPs the network beats a product with the built weight."""
    layer = TTLinear(4096, 4096, tt_rank=8, cost_model=CostModel("cpu", 1.0, 0.0, 0.0)).eval()
    builds = _count_builds(monkeypatch, layer)
    with torch.no_grad():
        layer(torch.randn(8, 4096))
    assert builds == []
