"""Adapters and LoRA updates as one autograd node (ttnet_nn._branch): taken where the cost model
puts every factor on the dense route, equal to the factor-by-factor path, correct gradients
for every activation, option and layout, and an eval-mode cache that is never stale."""

import copy
import io
import pickle

import pytest
import torch
from torch import nn

from ttnet import CostModel
from ttnet_nn import TTAdapter, TTLinear, TTLoRA, TTLoRAUpdate
from ttnet_nn.activations import ACTIVATIONS

#: Every route costs 0: ties go to the dense route, and the branch runs as one node.
DENSE = CostModel("cpu", 0.0, 0.0, 0.0, source="test: ties, dense")
#: Only the dense route's calls cost: every factor runs its TT network on its own.
NETWORK = CostModel("cpu", 0.0, 0.0, 0.0, seconds_per_fused_call=1.0,
                    source="test: the dense route is dear")


def _set_model(module: nn.Module, model: CostModel) -> None:
    for layer in module.modules():
        if isinstance(layer, TTLinear):
            layer.cost_model = model


def _perturb(module: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.3)


def _one_node(y: torch.Tensor, module: nn.Module) -> bool:
    """Whether ``y`` comes from one Products node that takes every parameter of ``module``."""
    fn = y.grad_fn
    params = sum(1 for _ in module.parameters())
    return (fn is not None and fn.name() == "ProductsBackward"
            and len(fn.next_functions) == 1 + params)


def _modules(dtype=torch.float32):
    """One of each module and layout, small enough for float64 gradcheck."""
    return {
        "adapter": TTAdapter(24, 8, tt_rank=3, non_linearity="gelu", scaling=0.5, dtype=dtype),
        "adapter_paper": TTAdapter(24, 8, tt_rank=3, shapes=((2, 3, 4, 8), (8, 2, 3, 4)),
                                   dtype=dtype),
        "lora": TTLoRAUpdate(24, 20, r=4, lora_alpha=8, tt_rank=3, dtype=dtype),
        "lora_paper": TTLoRAUpdate(24, 24, r=4, lora_alpha=2, tt_rank=3, shapes="paper",
                                   dtype=dtype),
    }


@pytest.mark.parametrize("name", list(_modules()))
def test_one_node_equals_factor_by_factor(name):
    torch.manual_seed(0)
    module = _modules(torch.float64)[name]
    _perturb(module)
    x = torch.randn(5, 24, dtype=torch.float64, requires_grad=True)
    _set_model(module, DENSE)
    fused = module(x)
    assert _one_node(fused, module)
    grads = torch.autograd.grad(fused.square().sum(), [x, *module.parameters()])
    _set_model(module, NETWORK)
    apart = module(x)
    assert not _one_node(apart, module)
    expected = torch.autograd.grad(apart.square().sum(), [x, *module.parameters()])
    torch.testing.assert_close(fused, apart)
    for a, b in zip(grads, expected):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", list(_modules()))
def test_gradcheck_float64_of_the_node(name, gradcheck_module):
    torch.manual_seed(0)
    module = _modules(torch.float64)[name]
    _perturb(module)
    _set_model(module, DENSE)
    x = torch.randn(3, 24, dtype=torch.float64)
    assert _one_node(module(x.requires_grad_()), module)
    assert gradcheck_module(module, x.detach())


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_against_a_recorded_reference(activation):
    """The node's hand-written backward vs autograd of the written-out formula, in float64."""
    torch.manual_seed(0)
    adapter = TTAdapter(24, 8, tt_rank=3, non_linearity=activation, scaling=-1.5,
                        dtype=torch.float64)
    _perturb(adapter, seed=1)
    _set_model(adapter, DENSE)
    x = torch.randn(6, 24, dtype=torch.float64, requires_grad=True)
    y = adapter(x)
    assert _one_node(y, adapter)
    down, up = adapter.down.dense_weight(), adapter.up.dense_weight()
    h = ACTIVATIONS[activation].fn(x @ down.T + adapter.down.bias)
    expected = x + -1.5 * (h @ up.T + adapter.up.bias)
    torch.testing.assert_close(y, expected)
    params = [x, *adapter.parameters()]
    for a, b in zip(torch.autograd.grad(y.square().sum(), params),
                    torch.autograd.grad(expected.square().sum(), params)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["adapter", "lora_paper"])
def test_low_precision_against_float64(dtype, name):
    """Forward and backward through the node in ``dtype`` (computed in float32) against the
    float64 module holding the same values: the error of rounding the result once."""
    torch.manual_seed(0)
    module = _modules(dtype)[name]
    _perturb(module)
    _set_model(module, DENSE)
    wide = copy.deepcopy(module).double()
    x = torch.randn(16, 24).to(dtype)
    xl, xw = x.clone().requires_grad_(), x.double().requires_grad_()
    yl, yw = module(xl), wide(xw)
    node = yl.grad_fn if dtype == torch.float32 else yl.grad_fn.next_functions[0][0]
    assert node.name() == "ProductsBackward"
    eps = torch.finfo(dtype).eps
    scale = yw.abs().max()
    assert yl.dtype == dtype
    assert float((yl.detach().double() - yw.detach()).abs().max()) <= 2 * eps * scale
    grad = torch.randn(yw.shape, dtype=torch.float64)
    yl.backward(grad.to(dtype))
    yw.backward(grad)
    for low, ref in zip([xl, *module.parameters()], [xw, *wide.parameters()]):
        assert low.grad.dtype == dtype
        error = float((low.grad.double() - ref.grad).norm() / ref.grad.norm())
        assert error <= 8 * max(eps, 2.0**-23)


def test_dropout_and_frozen_cores():
    torch.manual_seed(0)
    adapter = TTAdapter(24, 8, tt_rank=3, dropout=0.5)
    _perturb(adapter)
    _set_model(adapter, DENSE)
    adapter.down.cores[0].requires_grad_(False)
    x = torch.randn(64, 24, requires_grad=True)
    torch.manual_seed(5)
    y = adapter(x)
    y.sum().backward()
    assert adapter.down.cores[0].grad is None
    assert all(p.grad is not None for p in adapter.parameters() if p.requires_grad)
    torch.manual_seed(5)
    dropped = adapter.dropout(x)  # the same mask: the branch reads it, the residual x
    down, up = adapter.down.dense_weight(), adapter.up.dense_weight()
    expected = x + torch.relu(dropped @ down.T + adapter.down.bias) @ up.T + adapter.up.bias
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad, torch.autograd.grad(expected.sum(), x)[0],
                               rtol=1e-5, atol=1e-5)


def test_hooks_on_a_factor_are_called():
    torch.manual_seed(0)
    lora = TTLoRA(nn.Linear(24, 20), r=4, lora_alpha=8, tt_rank=3)
    _perturb(lora)
    _set_model(lora, DENSE)
    x = torch.randn(4, 24, requires_grad=True)
    plain = lora(x)
    seen = []
    handle = lora.lora_A.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    hooked = lora(x)
    handle.remove()
    assert seen == [torch.Size([4, 4])]
    torch.testing.assert_close(hooked, plain)


def test_eval_cache_is_rebuilt_when_the_cores_change():
    torch.manual_seed(0)
    lora = TTLoRAUpdate(24, 20, r=4, lora_alpha=8, tt_rank=3)
    _perturb(lora)
    _set_model(lora, DENSE)
    x = torch.randn(5, 24)

    def check():
        lora.eval()
        with torch.no_grad():
            expected = x @ lora.delta_weight().T  # from scratch, no cache
            torch.testing.assert_close(lora(x), expected, rtol=1e-4,
                                       atol=1e-5 * float(expected.abs().max()))

    check()
    optimizer = torch.optim.SGD(lora.parameters(), lr=0.05)
    lora.train()
    lora(x).square().sum().backward()
    optimizer.step()
    check()
    other = TTLoRAUpdate(24, 20, r=4, lora_alpha=8, tt_rank=3)
    _perturb(other, seed=3)
    lora.load_state_dict(other.state_dict())
    check()
    lora.double()
    x = x.double()
    check()
    lora.lora_A.round_(max_rank=2)
    check()
    with torch.no_grad():
        lora.lora_B.cores[-1].mul_(-2.0)
    check()


def test_copies_and_pickles_plan_afresh():
    torch.manual_seed(0)
    adapter = TTAdapter(24, 8, tt_rank=3)
    _perturb(adapter)
    _set_model(adapter, DENSE)
    x = torch.randn(5, 24)
    expected = adapter(x)
    clone = copy.deepcopy(adapter)
    with torch.no_grad():
        clone.up.cores[-1].zero_()
        clone.up.bias.zero_()
    assert torch.equal(clone(x), x)  # its own parameters, not the original's views
    torch.testing.assert_close(adapter(x), expected)
    buffer = io.BytesIO()
    torch.save(adapter, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(loaded(x), expected)
    assert not pickle.loads(pickle.dumps(adapter._branch))._plans
