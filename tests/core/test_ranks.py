"""ttnet.ranks: truncation rule, rank caps, parameter budgets."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttnet import ranks as R


@pytest.mark.parametrize(
    ("values", "threshold", "cap", "expected"),
    [
        ([3.0, 2.0, 0.1, 0.01], 0.2, None, 2),
        ([3.0, 2.0, 0.1, 0.01], 0.0, None, 4),
        ([3.0, 2.0, 0.0, 0.0], 0.0, None, 2),
        ([3.0, 2.0, 0.1], 10.0, None, 1),
        ([3.0, 2.0, 0.1], 0.0, 2, 2),
        ([0.0, 0.0], 0.0, None, 1),
    ],
)
def test_truncation_rank_table(values, threshold, cap, expected):
    assert R.truncation_rank(np.array(values), threshold, cap) == expected


@given(st.lists(st.floats(0, 10), min_size=1, max_size=12), st.floats(0, 20))
def test_truncation_rank_is_minimal(values, threshold):
    s = np.sort(np.array(values))[::-1]
    r = R.truncation_rank(s, threshold)
    assert math.sqrt(float(np.sum(s[r:] ** 2))) <= threshold or r == len(s)
    if r > 1:
        assert math.sqrt(float(np.sum(s[r - 1 :] ** 2))) > threshold


def test_truncation_rank_accepts_torch():
    torch = pytest.importorskip("torch")
    assert R.truncation_rank(torch.tensor([2.0, 1.0, 1e-9]), 1e-6) == 2


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (0, ValueError, r"max_rank: expected an int >= 1, got 0"),
        (-3, ValueError, r"max_rank: expected an int >= 1, got -3"),
        (2.5, TypeError, r"max_rank: expected an int, a list of ints or None, got float"),
        (True, TypeError, r"max_rank: expected an int, a list of ints or None, got bool"),
        ([1, 2], ValueError, r"max_rank: expected 3 per-bond ranks, got 2"),
        ([1, 0, 2], ValueError, r"max_rank\[1\]: expected an int >= 1, got 0"),
        ([1, 2.0, 2], TypeError, r"max_rank\[1\]: expected an int, got float"),
    ],
)
def test_normalize_max_rank_errors(value, error, match):
    with pytest.raises(error, match=match):
        R.normalize_max_rank(value, 3)


def test_normalize_max_rank_values():
    assert R.normalize_max_rank(np.int64(3), 2) == (3, 3)
    assert R.normalize_max_rank((4, 5), 2) == (4, 5)
    assert R.normalize_max_rank(None, 0) == ()


@pytest.mark.parametrize(
    ("eps", "error"), [(-1e-3, ValueError), (float("nan"), ValueError), ("1e-3", TypeError)]
)
def test_check_eps_errors(eps, error):
    with pytest.raises(error, match="eps"):
        R.check_eps(eps)


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (1.5, TypeError), (-1, ValueError)])
def test_check_max_params_errors(value, error):
    with pytest.raises(error, match="max_params"):
        R.check_max_params(value)


def test_bond_and_useful_ranks():
    assert R.bond_max_ranks((4, 4, 4, 4)) == (4, 16, 4)
    assert R.bond_max_ranks((5,)) == ()
    assert R.useful_ranks((2, 3, 2), (1, 9, 9, 1)) == (1, 2, 2, 1)
    assert R.count_params((2, 3), (1, 2, 1)) == 10
    assert R.bond_threshold(0.3, 2.0, 9) == pytest.approx(0.2)


def test_budget_too_small_names_max_params():
    with pytest.raises(ValueError, match=r"max_params: a TT of shape \(4, 4\) needs at least 8"):
        R.ranks_for_budget((4, 4), 7)


def test_budget_greedy_drops_zero_singular_values_first():
    spectra = [np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.9, 0.8])]
    assert R.ranks_for_budget((3, 3, 3), 40, singular_values=spectra) == (1, 2, 3, 1)


shapes = st.lists(st.integers(1, 5), min_size=2, max_size=6)


@given(shapes, st.integers(1, 400), st.integers(0, 2**32 - 1))
def test_budget_fits_and_respects_caps(shape, budget, seed):
    minimum = sum(shape)
    if budget < minimum:
        with pytest.raises(ValueError, match="max_params"):
            R.ranks_for_budget(shape, budget)
        return
    uniform = R.ranks_for_budget(shape, budget)
    assert R.count_params(shape, uniform) <= budget
    rng = np.random.default_rng(seed)
    spectra = [np.sort(rng.random(m))[::-1] for m in R.bond_max_ranks(shape)]
    greedy = R.ranks_for_budget(shape, budget, singular_values=spectra)
    assert R.count_params(shape, greedy) <= budget
    assert greedy == R.useful_ranks(shape, greedy)
    caps = R.budget_rank_caps(shape, budget)
    assert all(g <= c for g, c in zip(greedy[1:-1], caps))


def test_budget_caps_bound_every_feasible_choice():
    shape = (3, 2, 4)
    budget = 40
    caps = R.budget_rank_caps(shape, budget)
    for r1, r2 in itertools.product(range(1, 4), range(1, 5)):
        ranks = R.useful_ranks(shape, (1, r1, r2, 1))
        if R.count_params(shape, ranks) <= budget:
            assert ranks[1] <= caps[0] and ranks[2] <= caps[1]
