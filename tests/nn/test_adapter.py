"""TTAdapter (LoRETTA_adp): exact identity at init, gradients, presets, dtypes, robustness."""

import io

import pytest
import torch

from ttnet_nn import TTAdapter


@pytest.mark.parametrize(
    ("hidden", "bottleneck", "shapes"),
    [(768, 64, "paper"), (768, 64, None), (384, 16, None), (4099, 8, None), (576, 64, "paper")],
)
def test_identity_at_init_bit_for_bit(hidden, bottleneck, shapes):
    torch.manual_seed(0)
    adapter = TTAdapter(hidden, bottleneck, shapes=shapes, dropout=0.1)
    x = torch.randn(2, 3, hidden)
    for mode in (adapter.train, adapter.eval):
        mode()
        assert torch.equal(adapter(x).view(torch.int32), x.view(torch.int32))  # same bits
    assert torch.equal(adapter.to(torch.bfloat16)(x.bfloat16()), x.bfloat16())


def test_gradients_reach_every_parameter_after_one_step():
    torch.manual_seed(0)
    adapter = TTAdapter(96, 16, tt_rank=3)
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=1e-2)
    x, target = torch.randn(8, 96), torch.randn(8, 96)

    def step():
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(adapter(x), target).backward()
        return {name: p.grad.abs().max().item() for name, p in adapter.named_parameters()}

    first = step()
    last_up = f"up.cores.{len(adapter.up.cores) - 1}"
    # First step: only up's zero-initialised last core and up's bias can move.
    assert {n for n, g in first.items() if g > 0} == {last_up, "up.bias"}
    optimizer.step()
    second = step()
    assert all(g > 0 for g in second.values()), second


@pytest.mark.parametrize(
    ("hidden", "bottleneck", "params"), [(768, 64, 2 * 780 + 64 + 768), (4096, 64, 6360)]
)
def test_paper_parameter_counts(hidden, bottleneck, params):
    adapter = TTAdapter(hidden, bottleneck, tt_rank=5, shapes="paper")
    assert sum(p.numel() for p in adapter.parameters()) == params


def test_forward_formula_with_nonzero_up():
    torch.manual_seed(0)
    adapter = TTAdapter(48, 8, non_linearity="gelu", scaling=0.5, dtype=torch.float64)
    with torch.no_grad():
        adapter.up.cores[-1].normal_()
    x = torch.randn(4, 48, dtype=torch.float64)
    expected = x + 0.5 * adapter.up(torch.nn.functional.gelu(adapter.down(x)))
    torch.testing.assert_close(adapter(x), expected)


def test_gradcheck_float64(gradcheck_module):
    torch.manual_seed(0)
    adapter = TTAdapter(8, 4, tt_rank=2, non_linearity="tanh", dtype=torch.float64)
    with torch.no_grad():
        for p in adapter.parameters():
            p.normal_()
    assert gradcheck_module(adapter, torch.randn(3, 8, dtype=torch.float64))


def test_state_dict_round_trip_and_dtype_move():
    torch.manual_seed(0)
    adapter = TTAdapter(64, 8)
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(0.1)
    buffer = io.BytesIO()
    torch.save(adapter.state_dict(), buffer)
    buffer.seek(0)
    fresh = TTAdapter(64, 8)
    fresh.load_state_dict(torch.load(buffer))
    x = torch.randn(3, 64)
    assert torch.equal(fresh(x), adapter(x))
    assert all(t.dtype == torch.float64 for t in fresh.double().state_dict().values())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_size": 0}, "hidden_size"),
        ({"bottleneck_size": -1}, "bottleneck_size"),
        ({"tt_rank": 0}, "tt_rank"),
        ({"non_linearity": "swishy"}, "non_linearity"),
        ({"dropout": 1.0}, "dropout"),
        ({"scaling": float("nan")}, "scaling"),
        ({"shapes": 3}, "shapes"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    args = {"hidden_size": 32, "bottleneck_size": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        TTAdapter(args.pop("hidden_size"), args.pop("bottleneck_size"), **args)


def test_wrong_input_size():
    with pytest.raises(ValueError, match="input"):
        TTAdapter(32, 8)(torch.randn(2, 31))
