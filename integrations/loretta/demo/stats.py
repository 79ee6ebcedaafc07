"""Uncertainty of accuracies over seeds and sentences: bootstrap intervals and the Pareto front.

An accuracy here is the mean over training seeds of the accuracy on a fixed evaluation set.
Both sources of chance are resampled: the seeds (another initialisation and batch order) and the
sentences (another draw of the evaluation set from the same distribution). For a *paired*
difference both methods are resampled with the same seeds and the same sentences, so what they
share (a hard sentence, a lucky order) cancels.

Example:
    >>> import numpy as np
    >>> from loretta.demo.stats import bootstrap_interval
    >>> a = np.array([[1, 1, 0, 1], [1, 0, 1, 1]])  # 2 seeds x 4 sentences, 1 = correct
    >>> mean, low, high = bootstrap_interval(a, resamples=200)
    >>> mean, low <= mean <= high
    (0.75, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bootstrap_interval", "mean_sd", "pareto_front"]


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value).

    Example:
        >>> mean_sd([0.7, 0.8, 0.9])
        (0.8, 0.1)
    """
    array = np.asarray(values, dtype=float)
    sd = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return round(float(array.mean()), 12), round(sd, 12)


def bootstrap_interval(
    correct: np.ndarray,
    reference: np.ndarray | None = None,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean accuracy (or paired difference) with a two-level bootstrap interval.

    Each resample draws the seeds with replacement and, independently, the sentences with
    replacement, and takes the mean over the drawn seeds of the accuracy on the drawn sentences.

    Args:
        correct: ``(seeds, sentences)`` array of 0/1 (1 = the prediction was right).
        reference: Same shape, the method to subtract (same seeds, same sentences), or None.
        resamples: Number of bootstrap resamples.
        level: Coverage of the interval (percentile method).
        seed: Seed of the resampling.

    Returns:
        ``(estimate, low, high)``: the observed mean (or mean difference) and the interval.

    Raises:
        ValueError: The arrays are empty or their shapes differ.

    Example:
        >>> import numpy as np
        >>> a = np.ones((3, 50)); b = np.zeros((3, 50))
        >>> bootstrap_interval(a, b, resamples=100)
        (1.0, 1.0, 1.0)
    """
    values = np.asarray(correct, dtype=float)
    if reference is not None:
        other = np.asarray(reference, dtype=float)
        if other.shape != values.shape:
            raise ValueError(f"reference: expected shape {values.shape}, received {other.shape}")
        values = values - other
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"correct: expected a non-empty (seeds, sentences) array, received "
                         f"shape {values.shape}")
    seeds, sentences = values.shape
    rng = np.random.default_rng(seed)
    estimates = np.empty(resamples)
    for b in range(resamples):
        rows = rng.integers(0, seeds, seeds)
        cols = rng.integers(0, sentences, sentences)
        estimates[b] = values[np.ix_(rows, cols)].mean()
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(estimates, [tail, 1.0 - tail])
    return float(values.mean()), float(low), float(high)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: none has fewer-or-equal parameters and a
    higher-or-equal accuracy with one of the two strictly better. Sorted by parameters.

    Args:
        points: ``(parameters, accuracy)`` pairs.

    Example:
        >>> pareto_front([(10, 0.7), (20, 0.6), (30, 0.8), (5, 0.5)])
        [3, 0, 2]
    """
    front = []
    for i, (params, acc) in enumerate(points):
        beaten = any(
            p <= params and a >= acc and (p < params or a > acc)
            for j, (p, a) in enumerate(points) if j != i
        )
        if not beaten:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])
