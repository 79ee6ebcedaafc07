"""TTLoRA / TTLoRAUpdate (LoRETTA_rep): no-op at init, merge/unmerge, any 2-D weight layout,
frozen base."""

import io

import pytest
import torch
from torch import nn

from ttnet_nn import TTLoRA, TTLoRAUpdate


def _perturb(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.normal_(0.0, 0.3)


@pytest.mark.parametrize(("in_features", "out_features"), [(768, 768), (768, 2304), (4099, 384)])
def test_output_equals_base_at_init(in_features, out_features):
    torch.manual_seed(0)
    base = nn.Linear(in_features, out_features)
    lora = TTLoRA(base, r=8, lora_alpha=16, dropout=0.05)
    x = torch.randn(2, 3, in_features)
    assert torch.equal(lora(x), base(x))
    assert lora.delta_weight().shape == (out_features, in_features)


def test_conv1d_at_init_and_merge(conv1d_class):
    torch.manual_seed(0)
    base = conv1d_class(96, 64)  # GPT-2 Conv1D(nf=out, nx=in): weight (in, out)
    lora = TTLoRA(base, r=4, lora_alpha=8, fan_in_fan_out=True)
    assert (lora.in_features, lora.out_features, lora.fan_in_fan_out) == (64, 96, True)
    x = torch.randn(5, 64)
    assert torch.equal(lora(x), base(x))
    _perturb(lora)
    expected = base(x) + x @ lora.delta_weight().T
    torch.testing.assert_close(lora(x), expected, rtol=1e-5, atol=1e-5)
    original = base.weight.detach().clone()
    lora.merge()
    torch.testing.assert_close(lora(x), expected, rtol=1e-5, atol=1e-5)
    lora.unmerge()
    torch.testing.assert_close(base.weight, original, rtol=0, atol=1e-6)


def test_the_weight_layout_comes_from_the_flag_not_the_class(conv1d_class):
    """No class is recognised: the flag says how the weight is stored, the shapes follow."""
    plain = TTLoRA(conv1d_class(12, 10), r=2, lora_alpha=2)  # (10, 12) read as (out, in)
    assert (plain.in_features, plain.out_features, plain.fan_in_fan_out) == (12, 10, False)
    with pytest.raises(ValueError, match="input: expected shape"):
        plain(torch.randn(3, 10))  # a Conv1D(12, 10) takes 10 inputs: the wrong flag is caught
    with pytest.raises(ValueError, match="fan_in_fan_out: expected False for a torch.nn.Linear"):
        TTLoRA(nn.Linear(10, 12), r=2, lora_alpha=2, fan_in_fan_out=True)


def test_update_merges_into_a_weight_of_either_layout():
    torch.manual_seed(0)
    update = TTLoRAUpdate(6, 4, r=2, lora_alpha=4, tt_rank=2, dtype=torch.float64)
    _perturb(update)
    delta = 2.0 * (update.lora_B.dense_weight() @ update.lora_A.dense_weight())  # (out, in)
    for fan_in_fan_out, weight in ((False, torch.zeros(4, 6, dtype=torch.float64)),
                                   (True, torch.zeros(6, 4, dtype=torch.float64))):
        update.merge_into(weight, fan_in_fan_out)
        torch.testing.assert_close(weight, delta.T if fan_in_fan_out else delta)
        update.unmerge_from(weight, fan_in_fan_out)
        assert weight.abs().max() < 1e-14
    with pytest.raises(ValueError, match=r"weight: expected shape \(4, 6\)"):
        update.merge_into(torch.zeros(6, 4))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_merge_rounds_once(dtype):
    """merge_into adds in float32 and rounds the sum once to the weight's dtype."""
    torch.manual_seed(0)
    base = nn.Linear(64, 48).to(dtype)
    original = base.weight.detach().clone()
    lora = TTLoRA(base, r=4, lora_alpha=8, tt_rank=3)
    _perturb(lora)
    delta32 = 2.0 * (lora.lora_B.dense_weight(torch.float32)
                     @ lora.lora_A.dense_weight(torch.float32))
    lora.merge()
    assert torch.equal(base.weight, (original.float() + delta32).to(dtype))
    lora.unmerge()  # one rounding of the sum and one of the difference
    bound = 2 * torch.finfo(dtype).eps * (original.float().abs() + delta32.abs())
    assert bool(((base.weight.float() - original.float()).abs() <= bound).all())


def test_merge_unmerge_float64_and_idempotence():
    torch.manual_seed(0)
    base = nn.Linear(48, 40, dtype=torch.float64)
    original = base.weight.detach().clone()
    lora = TTLoRA(base, r=4, lora_alpha=8)
    _perturb(lora)
    x = torch.randn(6, 48, dtype=torch.float64)
    unmerged = lora(x)
    torch.testing.assert_close(unmerged, base(x) + 2.0 * lora.lora_B(lora.lora_A(x)))
    lora.merge()
    lora.merge()  # no-op
    assert lora.merged
    torch.testing.assert_close(lora(x), unmerged, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(base.weight, original + lora.delta_weight())
    lora.unmerge()
    lora.unmerge()  # no-op
    assert not lora.merged
    torch.testing.assert_close(base.weight, original, rtol=0, atol=1e-14)
    torch.testing.assert_close(lora(x), unmerged, rtol=1e-12, atol=1e-12)


def test_base_is_frozen_and_only_the_update_trains():
    torch.manual_seed(0)
    base = nn.Linear(32, 16)
    lora = TTLoRA(base, r=4, lora_alpha=4)
    assert not any(p.requires_grad for p in base.parameters())
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("lora_A.", "lora_B.")) for n in trainable)
    optimizer = torch.optim.SGD([p for p in lora.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        lora(torch.randn(8, 32)).pow(2).sum().backward()
        optimizer.step()
    assert base.weight.grad is None
    assert all(lora.get_parameter(n).grad.abs().max() > 0 for n in trainable)


def test_update_module_and_paper_counts():
    torch.manual_seed(0)
    update = TTLoRAUpdate(768, 2304, r=8, lora_alpha=16, shapes="paper", tt_rank=5)
    assert sum(p.numel() for p in update.parameters()) == 580 + 585
    x = torch.randn(3, 768)
    assert torch.equal(update(x), torch.zeros(3, 2304))
    _perturb(update)
    torch.testing.assert_close(update(x), x @ update.delta_weight().T, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("module", ["lora", "update"])
def test_gradcheck_float64(module, gradcheck_module):
    torch.manual_seed(0)
    if module == "lora":
        layer = TTLoRA(nn.Linear(6, 5, dtype=torch.float64), r=2, lora_alpha=4, tt_rank=2)
    else:
        layer = TTLoRAUpdate(6, 5, r=2, lora_alpha=4, tt_rank=2, dtype=torch.float64)
    _perturb(layer)
    assert gradcheck_module(layer, torch.randn(3, 6, dtype=torch.float64))


@pytest.mark.parametrize("input_dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtypes_follow_the_base_layer(input_dtype):
    torch.manual_seed(0)
    lora = TTLoRA(nn.Linear(64, 32), r=4, lora_alpha=8).to(input_dtype)
    _perturb(lora)
    x = torch.randn(4, 64, dtype=input_dtype)
    assert lora(x).dtype == input_dtype
    assert all(t.dtype == input_dtype for t in lora.state_dict().values())


def test_state_dict_round_trip_is_exact():
    torch.manual_seed(0)
    lora = TTLoRA(nn.Linear(64, 48), r=4, lora_alpha=8)
    _perturb(lora)
    buffer = io.BytesIO()
    torch.save(lora.state_dict(), buffer)
    buffer.seek(0)
    fresh = TTLoRA(nn.Linear(64, 48), r=4, lora_alpha=8)
    fresh.load_state_dict(torch.load(buffer))
    x = torch.randn(3, 64)
    assert torch.equal(fresh(x), lora(x))


def test_bad_arguments_name_the_argument():
    with pytest.raises(TypeError, match="base_layer: expected a module with a 2-D weight"):
        TTLoRA(nn.Conv2d(3, 3, 1), r=2, lora_alpha=2)
    with pytest.raises(TypeError, match="base_layer: expected a module with a 2-D weight"):
        TTLoRA(nn.ReLU(), r=2, lora_alpha=2)
    with pytest.raises(ValueError, match="r:"):
        TTLoRA(nn.Linear(8, 8), r=0, lora_alpha=2)
    with pytest.raises(ValueError, match="lora_alpha"):
        TTLoRA(nn.Linear(8, 8), r=2, lora_alpha=None)
    with pytest.raises(ValueError, match="dropout"):
        TTLoRA(nn.Linear(8, 8), r=2, lora_alpha=2, dropout=-0.1)
    with pytest.raises(ValueError, match="tt_rank"):
        TTLoRAUpdate(8, 8, r=2, lora_alpha=2, tt_rank=0)
    with pytest.raises(ValueError, match="input"):
        TTLoRA(nn.Linear(8, 8), r=2, lora_alpha=2)(torch.randn(3, 9))
