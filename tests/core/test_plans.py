"""Tests for ttnet.plans: balanced factorisation and padding plans."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttnet.plans import (
    MatrixPlan,
    factorize,
    padded_size,
    plan_matrix,
)


@given(n=st.integers(1, 200_000), d=st.integers(1, 7))
def test_factorize_exact_sorted_balanced(n, d):
    f = factorize(n, d)
    assert len(f) == d and math.prod(f) == n
    assert list(f) == sorted(f) and all(x >= 1 for x in f)
    assert f[-1] >= math.ceil(n ** (1 / d) - 1e-9)


def _smallest_max_factor(n, d):
    if d == 1:
        return n
    return min(max(k, _smallest_max_factor(n // k, d - 1)) for k in range(1, n + 1) if n % k == 0)


@given(n=st.integers(1, 3000), d=st.integers(1, 4))
def test_factorize_minimises_largest_factor(n, d):
    assert factorize(n, d)[-1] == _smallest_max_factor(n, d)


@pytest.mark.parametrize(
    ("n", "d", "expected"),
    [
        (768, 3, (8, 8, 12)),
        (4096, 4, (8, 8, 8, 8)),
        (4096, 3, (16, 16, 16)),
        (576, 3, (8, 8, 9)),
        (384, 3, (6, 8, 8)),
        (2560, 4, (5, 8, 8, 8)),
        (1, 3, (1, 1, 1)),
        (13, 2, (1, 13)),
        (4099, 4, (1, 1, 1, 4099)),
    ],
)
def test_factorize_known(n, d, expected):
    assert factorize(n, d) == expected


@pytest.mark.parametrize(
    ("args", "name"),
    [((0, 2), "n"), ((-3, 2), "n"), ((4.0, 2), "n"), ((4, 0), "d"), ((True, 2), "n")],
)
def test_factorize_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        factorize(*args)


@given(n=st.integers(1, 20_000), d=st.integers(1, 5))
def test_padded_size_is_nearest_acceptable(n, d):
    m = padded_size(n, d)
    bound = math.ceil(1.5 * n ** (1 / d) - 1e-9)
    assert m >= n and factorize(m, d)[-1] <= bound
    assert all(factorize(k, d)[-1] > bound for k in range(n, m))


@pytest.mark.parametrize("n", [576, 384, 768, 2560, 4096, 4099, 11008, 50257])
def test_plan_matrix_awkward_sizes(n):
    plan = plan_matrix(n, 64)
    assert math.prod(plan.row_shape) == plan.padded_rows >= n
    assert math.prod(plan.col_shape) == plan.padded_cols >= 64
    assert len(plan.row_shape) == len(plan.col_shape) == plan.d
    assert plan.padded_rows - n <= 0.01 * n + 1


def test_plan_matrix_prime_is_padded():
    plan = plan_matrix(4099, 4099)
    assert plan.is_padded and plan.row_shape == (7, 7, 7, 12) and plan.padded_rows == 4116
    assert not plan_matrix(768, 768).is_padded


@given(
    rows=st.integers(1, 300), cols=st.integers(1, 300), d=st.one_of(st.none(), st.integers(1, 4))
)
def test_plan_pad_unpad_round_trip_numpy(rows, cols, d):
    plan = plan_matrix(rows, cols, d)
    rng = np.random.default_rng(rows * 1000 + cols)
    x = rng.standard_normal((3, cols))
    xp = plan.pad_cols(x)
    assert xp.shape == (3, plan.padded_cols) and np.all(xp[:, cols:] == 0)
    np.testing.assert_array_equal(plan.unpad_cols(xp), x)
    y = rng.standard_normal((2, rows))
    np.testing.assert_array_equal(plan.unpad_rows(plan.pad_rows(y)), y)
    w = rng.standard_normal((rows, cols))
    wp = plan.pad_matrix(w)
    assert wp.shape == (plan.padded_rows, plan.padded_cols)
    assert np.all(wp[rows:] == 0) and np.all(wp[:, cols:] == 0)
    np.testing.assert_array_equal(plan.unpad_matrix(wp), w)
    # a padded weight applied to a padded input gives the true product after unpadding
    np.testing.assert_allclose(plan.unpad_rows(plan.pad_cols(x) @ wp.T), x @ w.T, atol=1e-12)


def test_plan_pad_unpad_torch_autograd():
    torch = pytest.importorskip("torch")
    plan = plan_matrix(4099, 37, d=2)
    x = torch.randn(2, 5, 37, dtype=torch.float64, requires_grad=True)
    xp = plan.pad_cols(x)
    assert isinstance(xp, torch.Tensor) and xp.shape == (2, 5, plan.padded_cols)
    assert xp.dtype == torch.float64
    xp.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    w = torch.randn(4099, 37)
    assert torch.equal(plan.unpad_matrix(plan.pad_matrix(w)), w)
    y = torch.randn(3, plan.padded_rows)
    assert plan.unpad_rows(y).shape == (3, 4099)


def test_plan_bad_input():
    plan = plan_matrix(10, 20, d=2)
    with pytest.raises(ValueError, match="x must have last axis 20"):
        plan.pad_cols(np.ones((2, 21)))
    with pytest.raises(ValueError, match="w must have shape"):
        plan.pad_matrix(np.ones((20, 10)))
    for kwargs, name in [({"rows": 0, "cols": 3}, "rows"), ({"rows": 3, "cols": -1}, "cols")]:
        with pytest.raises(ValueError, match=name):
            plan_matrix(**kwargs)
    with pytest.raises(ValueError, match="d must"):
        plan_matrix(3, 3, d=0)
    with pytest.raises(ValueError, match="slack"):
        plan_matrix(3, 3, slack=0.5)
    with pytest.raises(ValueError, match="same length"):
        MatrixPlan(4, 4, (2, 2), (4,))
    with pytest.raises(ValueError, match="row_shape"):
        MatrixPlan(5, 4, (2, 2), (2, 2))


def test_plan_is_frozen():
    plan = plan_matrix(8, 8)
    with pytest.raises(AttributeError):
        plan.rows = 3
