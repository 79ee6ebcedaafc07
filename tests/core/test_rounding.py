"""ttnet.rounding: error bound, exact error report, rank caps and budgets."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttnet import TensorTrain
from ttnet.rounding import round_cores


def random_tt(seed, shape, ranks):
    rng = np.random.default_rng(seed)
    shapes = [(ranks[k], n, ranks[k + 1]) for k, n in enumerate(shape)]
    return TensorTrain([rng.standard_normal(s) for s in shapes])


@st.composite
def sums(draw):
    d = draw(st.integers(2, 8))
    shape = tuple(draw(st.integers(1, 3)) for _ in range(d))
    seed = draw(st.integers(0, 2**31))
    ranks = (1, *(draw(st.integers(1, 3)) for _ in range(d - 1)), 1)
    return random_tt(seed, shape, ranks) + random_tt(seed + 1, shape, ranks)


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@given(sums(), st.sampled_from([1e-1, 1e-2, 1e-6, 1e-12]))
def test_round_respects_eps_and_reports_exact_error(tt, eps):
    rounded = tt.round(eps=eps)
    measured = rel(rounded.full(), tt.full())
    assert measured <= eps * (1 + 1e-9) + 1e-13
    assert abs(rounded.error - measured) <= 1e-6 * measured + 1e-13
    assert all(r <= s for r, s in zip(rounded.ranks, tt.ranks))


@given(sums(), st.integers(1, 3))
def test_round_max_rank(tt, cap):
    rounded = tt.round(max_rank=cap)
    assert max(rounded.ranks) <= cap
    assert abs(rounded.error - rel(rounded.full(), tt.full())) <= 1e-9


@given(sums(), st.integers(0, 40))
def test_round_max_params(tt, extra):
    budget = sum(tt.shape) + extra
    rounded = tt.round(max_params=budget)
    assert rounded.num_params <= budget
    measured = rel(rounded.full(), tt.full())
    assert abs(rounded.error - measured) <= 1e-6 * max(measured, 1e-6)


def test_round_sum_back_to_original_ranks():
    a = random_tt(0, (4,) * 8, (1, 4, 6, 6, 6, 6, 6, 4, 1))
    rounded = (a + a).round(eps=1e-12)
    assert rounded.ranks == a.ranks
    assert rel(rounded.full(), 2 * a.full()) <= 1e-12


def test_round_zero_and_single_core():
    zero = random_tt(0, (2, 2), (1, 2, 1)) * 0.0
    assert zero.round(eps=0.1).error == 0.0
    single = TensorTrain([np.ones((1, 3, 1))])
    assert single.round(eps=0.5).error == 0.0


def test_round_cores_bad_arguments():
    cores = list(random_tt(0, (2, 2, 2), (1, 2, 2, 1)).cores)
    with pytest.raises(ValueError, match="eps: expected a finite number >= 0"):
        round_cores(cores, eps=-0.1)
    with pytest.raises(ValueError, match="max_rank: expected an int >= 1, got 0"):
        round_cores(cores, max_rank=0)
    with pytest.raises(ValueError, match="max_params: a TT of shape"):
        round_cores(cores, max_params=3)


def test_round_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    tt = random_tt(0, (3, 3, 3, 3), (1, 3, 3, 3, 1))
    ttt = TensorTrain([torch.from_numpy(c) for c in tt.cores])
    a, b = tt.round(max_rank=2), ttt.round(max_rank=2)
    assert a.ranks == b.ranks and abs(a.error - b.error) < 1e-10
    assert np.allclose(a.full(), b.full().numpy())
