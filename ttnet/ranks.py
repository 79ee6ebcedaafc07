"""Rank selection: every rule that decides TT ranks, in one place.

Used by TT-SVD (:mod:`ttnet.decomposition`), rounding (:mod:`ttnet.rounding`) and the
layers. Conventions: a TT with ``d`` cores has ``d - 1`` bonds; ``ranks`` tuples include
the boundary ones, ``(1, r_1, ..., r_{d-1}, 1)``. For a TT matrix pass the products
``m_k * n_k`` as the mode sizes.

Rules:

- **eps** (relative Frobenius error of the whole result): each bond may discard
  singular values whose squares sum to at most ``(eps / sqrt(d - 1) * ||A||)**2``
  (:func:`bond_threshold`, Oseledets 2011). The bond errors add in quadrature, so the
  whole result is within ``eps``.
- **max_rank**: an int for every bond or one int per bond (:func:`normalize_max_rank`).
  When both are given the smaller rank wins, so ``max_rank`` may break the ``eps`` bound;
  the error actually reached is always reported.
- **largest useful rank**: ``r_k <= min(n_1...n_k, n_{k+1}...n_d)`` (:func:`bond_max_ranks`).
- **parameter budget** ``max_params``: with the singular values of every bond known,
  :func:`ranks_for_budget` lowers ranks one at a time, each time on the bond whose next
  discarded singular value costs the least squared error per parameter saved, until
  ``num_params <= max_params``; without singular values it picks the largest uniform
  rank that fits.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ttnet._backend import to_numpy

__all__ = [
    "bond_max_ranks",
    "bond_threshold",
    "budget_rank_caps",
    "check_eps",
    "check_max_params",
    "count_params",
    "normalize_max_rank",
    "ranks_for_budget",
    "tail_norm",
    "truncation_rank",
    "useful_ranks",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_eps(eps: float | None) -> float | None:
    """Validate a relative tolerance: ``None`` or a finite real number ``>= 0``.

    Example:
        >>> check_eps(1e-3)
        0.001
        >>> check_eps(-1.0)
        Traceback (most recent call last):
        ...
        ValueError: eps: expected a finite number >= 0, got -1.0
    """
    if eps is None:
        return None
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps: expected a float >= 0 or None, got {type(eps).__name__}")
    value = float(eps)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"eps: expected a finite number >= 0, got {eps!r}")
    return value


def check_max_params(max_params: int | None) -> int | None:
    """Validate a parameter budget: ``None`` or an int ``>= 1``.

    Example:
        >>> check_max_params(100)
        100
    """
    if max_params is None:
        return None
    if not _is_int(max_params):
        raise TypeError(f"max_params: expected an int or None, got {type(max_params).__name__}")
    if max_params < 1:
        raise ValueError(f"max_params: expected an int >= 1, got {max_params}")
    return int(max_params)


def normalize_max_rank(
    max_rank: int | Sequence[int] | None, num_bonds: int
) -> tuple[int | None, ...]:
    """One rank cap per bond (``None`` = no cap) from an int, a per-bond list, or ``None``.

    Args:
        max_rank: ``None``, an int ``>= 1`` for every bond, or ``num_bonds`` ints ``>= 1``.
        num_bonds: number of bonds (``d - 1``).

    Raises:
        TypeError: for a non-int value. ValueError: for a value ``< 1`` or a list of
        the wrong length.

    Example:
        >>> normalize_max_rank(4, 3)
        (4, 4, 4)
        >>> normalize_max_rank([2, 3], 2)
        (2, 3)
        >>> normalize_max_rank(None, 2)
        (None, None)
    """
    if max_rank is None:
        return (None,) * num_bonds
    if _is_int(max_rank):
        if max_rank < 1:
            raise ValueError(f"max_rank: expected an int >= 1, got {max_rank}")
        return (int(max_rank),) * num_bonds
    if isinstance(max_rank, (str, bytes)) or not isinstance(max_rank, Sequence):
        raise TypeError(
            f"max_rank: expected an int, a list of ints or None, got {type(max_rank).__name__}"
        )
    values = tuple(max_rank)
    if len(values) != num_bonds:
        raise ValueError(
            f"max_rank: expected {num_bonds} per-bond ranks, got {len(values)}: {values}"
        )
    for k, value in enumerate(values):
        if not _is_int(value):
            raise TypeError(f"max_rank[{k}]: expected an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"max_rank[{k}]: expected an int >= 1, got {value}")
    return tuple(int(v) for v in values)


def bond_max_ranks(shape: Sequence[int]) -> tuple[int, ...]:
    """The largest useful rank of each bond: ``min(n_1...n_k, n_{k+1}...n_d)``.

    Example:
        >>> bond_max_ranks((2, 3, 4))
        (2, 4)
    """
    sizes = [int(n) for n in shape]
    total = math.prod(sizes)
    result = []
    left = 1
    for n in sizes[:-1]:
        left *= n
        result.append(min(left, total // left))
    return tuple(result)


def useful_ranks(shape: Sequence[int], ranks: Sequence[int]) -> tuple[int, ...]:
    """``ranks`` (with boundary ones) lowered to what the mode sizes can carry.

    A bond rank never needs to exceed ``r_{k-1} * n_k`` nor ``n_{k+1} * r_{k+1}``.

    Example:
        >>> useful_ranks((2, 2, 2), (1, 5, 5, 1))
        (1, 2, 2, 1)
    """
    sizes = [int(n) for n in shape]
    r = [int(v) for v in ranks]
    for k in range(1, len(r) - 1):
        r[k] = min(r[k], r[k - 1] * sizes[k - 1])
    for k in range(len(r) - 2, 0, -1):
        r[k] = min(r[k], r[k + 1] * sizes[k])
    return tuple(r)


def count_params(shape: Sequence[int], ranks: Sequence[int]) -> int:
    """Number of entries in TT cores of mode sizes ``shape`` and ``ranks`` (with boundary ones).

    Example:
        >>> count_params((4, 4, 4), (1, 2, 2, 1))
        32
    """
    return sum(int(ranks[k]) * int(n) * int(ranks[k + 1]) for k, n in enumerate(shape))


def bond_threshold(eps: float, norm: float, num_bonds: int) -> float:
    """Largest Frobenius norm each bond may discard for a relative error ``eps`` overall.

    ``eps / sqrt(num_bonds) * norm`` (Oseledets 2011).

    Example:
        >>> bond_threshold(0.1, 2.0, 4)
        0.1
    """
    return eps / math.sqrt(max(num_bonds, 1)) * norm


def truncation_rank(
    singular_values: Any, threshold: float = 0.0, max_rank: int | None = None
) -> int:
    """Smallest rank whose discarded singular values have norm ``<= threshold``, capped.

    Args:
        singular_values: 1-D, descending (numpy or torch).
        threshold: largest allowed norm of the discarded tail (``0`` keeps every
            non-zero value).
        max_rank: cap (``None`` = no cap).

    Returns:
        A rank in ``[1, len(singular_values)]``.

    Example:
        >>> truncation_rank([3.0, 2.0, 0.1, 0.01], threshold=0.2)
        2
        >>> truncation_rank([3.0, 2.0, 0.1], max_rank=1)
        1
    """
    s = np.abs(np.asarray(to_numpy(singular_values), dtype=np.float64))
    n = s.shape[0]
    top = float(s.max()) if n else 0.0
    if top > 0.0:  # scaled, so squares neither overflow nor underflow (1e-200 .. 1e200)
        s, threshold = s / top, threshold / top
    # tail[i] = norm of s[i:]**2 summed; keep the smallest r with tail[r] <= threshold.
    tail = np.sqrt(np.cumsum((s * s)[::-1])[::-1])
    tail = np.append(tail, 0.0)
    rank = int(np.argmax(tail <= threshold)) if n else 0
    rank = max(rank, 1)
    if max_rank is not None:
        rank = min(rank, int(max_rank))
    return min(rank, max(n, 1))


def tail_norm(singular_values: Any, rank: int) -> float:
    """Norm of the singular values discarded by keeping ``rank``: ``||s[rank:]||``.

    Computed with scaling, so it neither overflows nor underflows where the values
    themselves are representable.

    Example:
        >>> tail_norm([5.0, 3.0, 4.0], 1)
        5.0
        >>> f"{tail_norm([3e200, 4e200], 0):.6g}"
        '5e+200'
    """
    s = np.abs(np.asarray(to_numpy(singular_values), dtype=np.float64))[rank:]
    top = float(s.max()) if s.size else 0.0
    if top == 0.0:
        return 0.0
    return top * float(np.sqrt(np.sum((s / top) ** 2)))


def budget_rank_caps(shape: Sequence[int], max_params: int) -> tuple[int, ...]:
    """Per-bond rank caps that no rank choice within ``max_params`` can exceed.

    With useful ranks, bond ``k`` costs at least ``2 r_k**2`` and at least
    ``r_k (n_k + n_{k+1})`` parameters. Used to keep the first pass of a budgeted
    TT-SVD small.

    Example:
        >>> budget_rank_caps((4, 4, 4, 4), 200)
        (4, 10, 4)
    """
    sizes = [int(n) for n in shape]
    maxima = bond_max_ranks(sizes)
    caps = []
    for k, top in enumerate(maxima):
        cap = min(top, math.isqrt(max_params // 2), max_params // (sizes[k] + sizes[k + 1]))
        caps.append(max(cap, 1))
    return tuple(caps)


def ranks_for_budget(
    shape: Sequence[int],
    max_params: int,
    singular_values: Sequence[Any] | None = None,
    max_rank: int | Sequence[int] | None = None,
) -> tuple[int, ...]:
    """Ranks (with boundary ones) whose TT has at most ``max_params`` parameters.

    Args:
        shape: mode sizes (``m_k * n_k`` for a TT matrix).
        max_params: the budget.
        singular_values: optional, one descending 1-D array per bond (e.g. the bond
            spectra of a TT in canonical form). When given, ranks start at the number
            of values per bond and are lowered greedily: each step lowers the bond whose
            next discarded singular value adds the least squared error per parameter
            saved. When omitted, the largest uniform rank (capped per bond by
            :func:`bond_max_ranks`) that fits is returned.
        max_rank: optional extra cap (int or per bond).

    Raises:
        ValueError: when even all ranks 1 exceed ``max_params`` (the message gives the
            minimum).

    Example:
        >>> ranks_for_budget((4, 4, 4, 4), 100)
        (1, 3, 3, 3, 1)
        >>> import numpy as np
        >>> s = [np.array([1.0, 0.5]), np.array([1.0, 1e-3, 1e-4]), np.array([1.0])]
        >>> ranks_for_budget((2, 3, 3, 2), 20, singular_values=s)
        (1, 2, 1, 1, 1)
    """
    sizes = [int(n) for n in shape]
    d = len(sizes)
    max_params = check_max_params(max_params)
    minimum = count_params(sizes, (1,) * (d + 1))
    if max_params < minimum:
        raise ValueError(
            f"max_params: a TT of shape {tuple(sizes)} needs at least {minimum} parameters "
            f"(all ranks 1), got {max_params}"
        )
    maxima = bond_max_ranks(sizes)
    requested = normalize_max_rank(max_rank, d - 1)
    caps = [t if c is None else min(c, t) for c, t in zip(requested, maxima)]
    if singular_values is None:
        best = (1,) * (d + 1)
        for r in range(1, max(caps, default=1) + 1):
            ranks = useful_ranks(sizes, (1, *(min(r, c) for c in caps), 1))
            if count_params(sizes, ranks) > max_params:
                break
            best = ranks
        return best
    if len(singular_values) != d - 1:
        raise ValueError(
            f"singular_values: expected {d - 1} arrays (one per bond), got {len(singular_values)}"
        )
    spectra = [np.abs(np.asarray(to_numpy(s), dtype=np.float64)) for s in singular_values]
    top = max((float(s.max()) for s in spectra if s.size), default=0.0)
    spectra = [(s / top) ** 2 if top > 0.0 else s for s in spectra]  # only ratios matter
    ranks = [1] + [min(len(s), c) for s, c in zip(spectra, caps)] + [1]
    ranks = list(useful_ranks(sizes, ranks))
    while count_params(sizes, ranks) > max_params:
        best_bond, best_cost = -1, math.inf
        for b in range(1, d):
            if ranks[b] <= 1:
                continue
            lowered = list(ranks)
            lowered[b] -= 1
            saved = count_params(sizes, ranks) - count_params(sizes, useful_ranks(sizes, lowered))
            s2 = spectra[b - 1]
            err = s2[ranks[b] - 1] if ranks[b] - 1 < len(s2) else 0.0
            cost = err / max(saved, 1)
            if cost < best_cost:
                best_bond, best_cost = b, cost
        ranks[best_bond] -= 1
        ranks = list(useful_ranks(sizes, ranks))
    return tuple(ranks)
