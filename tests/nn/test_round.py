"""TTLinear.round_: rank rounding in place, with the error it reports being the true one."""

import pytest
import torch

from ttnet_nn import TTLinear


def _padded_to_rank(layer: TTLinear, rank: int) -> None:
    """Embed the cores into larger ranks with zero blocks: same weight, redundant ranks."""
    old = [c.detach() for c in layer.cores]
    new = []
    for k, core in enumerate(old):
        left = 1 if k == 0 else rank
        right = 1 if k == len(old) - 1 else rank
        big = core.new_zeros((left, *core.shape[1:-1], right))
        big[: core.shape[0], ..., : core.shape[-1]] = core
        new.append(big)
    layer.cores = torch.nn.ParameterList(torch.nn.Parameter(c) for c in new)


@pytest.mark.parametrize("shapes", [None, "paper"])
def test_round_recovers_redundant_ranks_exactly(shapes):
    torch.manual_seed(0)
    layer = TTLinear(96, 64, tt_rank=2, shapes=shapes, dtype=torch.float64)
    weight = layer.dense_weight().detach().clone()
    _padded_to_rank(layer, 6)
    assert max(layer.tt_ranks) == 6
    torch.testing.assert_close(layer.dense_weight(), weight)
    error = layer.round_(eps=1e-12)
    assert max(layer.tt_ranks) == 2 and error < 1e-12
    torch.testing.assert_close(layer.dense_weight(), weight, rtol=1e-10, atol=1e-12)


def test_round_reports_the_true_error_and_trains_on():
    torch.manual_seed(0)
    layer = TTLinear(256, 256, tt_rank=8, dtype=torch.float64)
    before = layer.dense_weight().detach().clone()
    error = layer.round_(max_rank=3)
    after = layer.dense_weight().detach()
    assert layer.tt_ranks == (1, 3, 3, 1)
    true_error = float(torch.linalg.matrix_norm(after - before) / torch.linalg.matrix_norm(before))
    assert error == pytest.approx(true_error, rel=1e-8) and 0 < error < 1
    assert all(p.requires_grad for p in layer.cores)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)  # a new optimizer, new parameters
    layer(torch.randn(4, 256, dtype=torch.float64)).square().sum().backward()
    optimizer.step()
    assert all(c.grad is not None and c.grad.shape == c.shape for c in layer.cores)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_round_keeps_half_precision(dtype):
    torch.manual_seed(0)
    layer = TTLinear(512, 512, tt_rank=6, dtype=dtype)
    error = layer.round_(max_rank=2)
    assert layer.tt_ranks == (1, 2, 2, 1) and 0 < error < 1
    assert all(c.dtype == dtype for c in layer.cores)


def test_round_with_neither_argument_keeps_the_weight():
    torch.manual_seed(0)
    layer = TTLinear(512, 512, tt_rank=16, dtype=torch.float64)
    weight = layer.dense_weight().detach().clone()
    assert layer.round_() < 1e-12
    torch.testing.assert_close(layer.dense_weight(), weight, rtol=1e-10, atol=1e-12)


def test_round_bad_arguments_name_them():
    layer = TTLinear(512, 512)
    with pytest.raises(ValueError, match="eps"):
        layer.round_(eps=-0.5)
    with pytest.raises(ValueError, match="max_rank"):
        layer.round_(max_rank=0)
    assert layer.tt_ranks == (1, 8, 8, 1)  # nothing changed
