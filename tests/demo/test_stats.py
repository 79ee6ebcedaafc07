"""Bootstrap intervals (their coverage on simulated data) and the Pareto front."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from loretta.demo.stats import bootstrap_interval, mean_sd, pareto_front


def test_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    """Simulated study: 3 seeds x 300 sentences, each sentence right with probability 0.78 plus
    a seed effect; the two-level interval should contain 0.78 in roughly 95 % of studies."""
    rng = np.random.default_rng(1)
    hits = 0
    for trial in range(150):
        seed_effect = rng.normal(0, 0.01, size=(3, 1))
        correct = rng.random((3, 300)) < 0.78 + seed_effect
        _, low, high = bootstrap_interval(correct, resamples=400, seed=trial)
        hits += low <= 0.78 <= high
    assert 0.88 <= hits / 150 <= 0.995


def test_paired_difference_cancels_what_both_methods_share():
    rng = np.random.default_rng(0)
    hard = rng.random(500) < 0.3  # sentences both methods get wrong
    better = np.tile(~hard, (4, 1)).astype(int)
    worse = better.copy()
    worse[:, :25] = 0  # 25 sentences only the better method gets right
    diff, low, high = bootstrap_interval(better, worse, resamples=500)
    assert diff == pytest.approx(better[:, :25].mean() * 25 / 500)
    assert 0 < low <= diff <= high
    _, alone_low, alone_high = bootstrap_interval(better, resamples=500)
    assert high - low < alone_high - alone_low  # pairing removes the shared sentence noise


def test_identical_methods_differ_by_exactly_zero():
    a = (np.random.default_rng(3).random((5, 100)) < 0.7).astype(int)
    assert bootstrap_interval(a, a, resamples=200) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("shape", [(0, 10), (3,), (2, 0)])
def test_bad_shapes_are_rejected(shape):
    with pytest.raises(ValueError, match="expected a non-empty"):
        bootstrap_interval(np.zeros(shape))


def test_reference_of_another_shape_is_rejected():
    with pytest.raises(ValueError, match=r"reference: expected shape \(2, 3\), received \(3, 2\)"):
        bootstrap_interval(np.zeros((2, 3)), np.zeros((3, 2)))


def test_mean_sd():
    assert mean_sd([0.5]) == (0.5, 0.0)
    assert mean_sd([0.7, 0.9]) == (0.8, pytest.approx(0.1414213562))


@given(st.lists(st.tuples(st.integers(1, 50), st.integers(0, 20)), min_size=1, max_size=12))
def test_pareto_front_is_exactly_the_undominated_points(points):
    front = pareto_front(points)

    def dominates(a, b):
        return a[0] <= b[0] and a[1] >= b[1] and a != b

    for i, point in enumerate(points):
        beaten = any(dominates(other, point) for other in points)
        assert (i in front) == (not beaten)
    assert [points[i][0] for i in front] == sorted(points[i][0] for i in front)
