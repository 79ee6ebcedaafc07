"""Half precision on every layer: bfloat16 and float16 build, initialise, forward and backward
(computed in float32, stored in the layer's dtype), and from_linear compresses half weights."""

import copy
import math

import pytest
import torch
from torch import nn

from ttnet import CostModel
from ttnet_nn import TTAdapter, TTLinear, TTLoRA, TTLoRAUpdate

HALF = [torch.bfloat16, torch.float16]
#: Route-forcing models: all routes cost 0 (ties go to the dense route), or FLOPs only (the TT
#: network of a thin factor on a few rows).
DENSE = CostModel("cpu", 0.0, 0.0, 0.0, source="test: ties, dense")
NETWORK = CostModel("cpu", 1.0, 0.0, 0.0, source="test: FLOPs only")


def _perturb(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.copy_(torch.randn_like(p, dtype=torch.float32) * 0.3)


def _set_model(module: nn.Module, model: CostModel) -> None:
    for layer in module.modules():
        if isinstance(layer, TTLinear):
            layer.cost_model = model


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


def _check_against_float32(half: nn.Module, x: torch.Tensor, dtype: torch.dtype) -> None:
    """Forward and backward of ``half`` vs a float32 copy holding the same (rounded) values.

    Each output entry of ``half`` must be the float32 result rounded once: a module computes
    in float32 from its input to its output (an adapter or LoRA update keeps its intermediate
    in float32 too); a TT product computed in half precision instead differs in 30-60 % of the
    entries.
    """
    wide = copy.deepcopy(half).float()
    xh = x.to(dtype).requires_grad_()
    xf = xh.detach().float().requires_grad_()
    yh, yf = half(xh), wide(xf)
    assert yh.dtype == dtype
    assert float((yh != yf.to(dtype)).float().mean()) <= 0.01  # ties may round either way
    grad = torch.randn_like(yf)
    yh.backward(grad.to(dtype))
    yf.backward(grad)
    assert xh.grad.dtype == dtype
    for ph, pf in zip(half.parameters(), wide.parameters()):
        if ph.requires_grad:
            assert ph.grad.dtype == dtype and bool(torch.isfinite(ph.grad).all())
            assert _relative(ph.grad, pf.grad) <= 4 * torch.finfo(dtype).eps
    assert _relative(xh.grad, xf.grad) <= 4 * torch.finfo(dtype).eps


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize(("model", "rows"), [(DENSE, 512), (NETWORK, 3)])
@pytest.mark.parametrize("shapes", [None, "paper"])
def test_tt_linear(dtype, model, rows, shapes):
    torch.manual_seed(0)
    layer = TTLinear(768, 64, tt_rank=5, shapes=shapes, dtype=dtype, cost_model=model)
    assert all(p.dtype == dtype for p in layer.parameters())
    variance = float(layer.dense_weight(torch.float64).detach().var())
    assert abs(variance * 3 * 768 - 1) < 0.1  # nn.Linear's variance, drawn in float32
    expected = "dense" if model is DENSE else "steps"
    assert layer.contraction_info(rows).executor == expected
    _check_against_float32(layer, torch.randn(rows, 768), dtype)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("model", [DENSE, NETWORK])
def test_tt_adapter(dtype, model):
    torch.manual_seed(0)
    adapter = TTAdapter(256, 16, tt_rank=4, dtype=dtype)
    _set_model(adapter, model)
    x = torch.randn(2, 5, 256).to(dtype)
    assert torch.equal(adapter(x), x)  # identity at initialisation, bit for bit
    _perturb(adapter)
    _check_against_float32(adapter, torch.randn(7, 256), dtype)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("model", [DENSE, NETWORK])
def test_tt_lora_update_and_tt_lora(dtype, model):
    torch.manual_seed(0)
    update = TTLoRAUpdate(256, 192, r=8, lora_alpha=16, tt_rank=4, dtype=dtype)
    _set_model(update, model)
    assert update(torch.randn(3, 256).to(dtype)).abs().max() == 0
    _perturb(update)
    _check_against_float32(update, torch.randn(6, 256), dtype)
    assert update.delta_weight().dtype == dtype
    base = nn.Linear(256, 192).to(dtype)
    lora = TTLoRA(base, r=8, lora_alpha=16, tt_rank=4)
    _set_model(lora, model)
    assert all(p.dtype == dtype for p in lora.parameters())
    x = torch.randn(4, 256).to(dtype)
    assert torch.equal(lora(x), base(x))
    _perturb(lora)
    y = lora(x.requires_grad_())
    assert y.dtype == dtype
    y.float().sum().backward()
    assert all(p.grad.dtype == dtype for p in lora.parameters() if p.requires_grad)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("shapes", [None, "paper"])
def test_from_linear_compresses_half_weights(dtype, shapes):
    torch.manual_seed(0)
    dense = nn.Linear(96, 64).to(dtype)
    exact = TTLinear.from_linear(dense, shapes=shapes)
    assert all(p.dtype == dtype for p in exact.parameters())
    # exact up to storing the cores in half precision (a few roundings per entry)
    assert exact.compression_error < 8 * torch.finfo(dtype).eps * math.sqrt(96)
    capped = TTLinear.from_linear(dense, max_rank=2, shapes=shapes)
    assert max(capped.tt_ranks) == 2 and 0 < capped.compression_error < 1
    x = torch.randn(5, 96).to(dtype)
    assert _relative(exact(x), dense(x)) < 0.05
