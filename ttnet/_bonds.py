"""Rank decisions of TT-SVD for a run of bonds, from one small summary of the data.

A *group* is the run of bonds after the modes ``(n_1, ..., n_k)`` of an unfolding ``C``
(``m = n_1 ... n_k`` rows; ``n_1`` may include a rank carried from an earlier step). One
pass over the data gives an ``m x m`` summary of ``C``, and every bond of the group is
then decided in memory, exactly as the textbook left-to-right sweep would decide it on
the data: bond ``j`` sees the Gram of the ``j``-th unfolding of the data projected onto
the frames already chosen for bonds ``1..j-1``, which is a partial trace of the projected
summary. The errors of the bonds are orthogonal, so they add in quadrature.

Two summaries:

- :func:`decide_gram` — the Gram ``G = C C^H`` (fast). Its eigenvalues are known only to
  an absolute ``resolution`` (a bound on ``||G_computed - G||_F`` from the rounding of the
  pass). A rank is *certified* when the upper bound of its discarded tail is within the
  bond's budget ``tau_sq`` and the lower bound of the tail of one rank less is not.
  Otherwise the rank that only the unresolved part would allow is proposed and marked
  unverified: the caller measures the residual of the projection (fused into its pass)
  and, if it exceeds the budget, asks a more accurate summary.
- :func:`decide_factor` — a factor ``M`` with ``M M^H = C C^H`` (``R^H`` of a TSQR),
  decided with SVDs: backward stable, the plain rule of :func:`ttnet.ranks.truncation_rank`.

Example:
    >>> import numpy as np
    >>> c = np.kron(np.eye(2), np.ones((2, 8)))          # modes (2, 2), rank 2 at bond 2
    >>> group = decide_gram(c @ c.T, (2, 2), tau_sq=1e-6, caps=(None, None),
    ...                     resolution=1e-14, noise=1e-14)
    >>> group.ranks, group.unverified
    ((2, 2), (False, False))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ttnet import ranks as rank_rules

__all__ = ["Group", "decide_factor", "decide_gram"]


@dataclass(frozen=True)
class Group:
    """Decisions for consecutive bonds: cores ``(r_{j-1}, n_j, r_j)`` (numpy) and, per bond,
    the estimated discarded squared norm ``tails``, its uncertainty ``slack``, what the
    bond may discard under the error contract (``allowance``: the budget, or the tail
    itself where a rank cap wins) and whether the rank still needs verifying."""

    cores: tuple[np.ndarray, ...]
    tails: tuple[float, ...]
    slack: tuple[float, ...]
    allowance: tuple[float, ...]
    unverified: tuple[bool, ...]

    @property
    def ranks(self) -> tuple[int, ...]:
        """Rank after each bond of the group."""
        return tuple(int(c.shape[2]) for c in self.cores)

    def frame(self, bonds: int) -> np.ndarray:
        """The composite orthonormal frame of the first ``bonds`` bonds, ``(n_1...n_j, r_j)``."""
        f = self.cores[0].reshape(-1, self.cores[0].shape[2])
        for core in self.cores[1:bonds]:
            r0, n, r1 = core.shape
            f = (f @ core.reshape(r0, n * r1)).reshape(-1, r1)
        return f

    def best_split(self) -> int:
        """How many bonds to project at once: the bond whose projection shrinks the data
        most (rank over rows smallest; the later bond on ties); 0 when none shrinks it."""
        best, best_ratio, rows = 0, 1.0, 1
        for j, core in enumerate(self.cores, start=1):
            rows *= int(core.shape[1])
            ratio = int(core.shape[2]) / rows
            if ratio <= best_ratio and ratio < 1.0:
                best, best_ratio = j, ratio
        return best


def _suffix_sums(values: np.ndarray) -> np.ndarray:
    """``out[r] = sum(values[r:])`` for ``r = 0..len``."""
    return np.append(np.cumsum(values[::-1])[::-1], 0.0)


def _gram_rank(
    lam: np.ndarray, tau_sq: float, cap: int | None, resolution: float, noise: float
) -> tuple[int, float, float, float, bool]:
    """Rank, tail, slack, allowance and 'unverified' for one bond from Gram eigenvalues."""
    m = lam.shape[0]
    tails = _suffix_sums(np.clip(lam, 0.0, None))
    kept = np.arange(m + 1)
    hi = tails + np.sqrt(m - kept) * resolution  # |tr((I - P) dG)| <= ||I - P||_F ||dG||_F
    lo = tails - (m - kept) * resolution  # Weyl, eigenvalue by eigenvalue
    hi[0] = lo[0] = math.inf  # rank >= 1
    certified = int(np.argmax(hi <= tau_sq))  # rank m always qualifies (hi[m] = 0)
    if tau_sq > 0.0:
        possible = int(np.argmax(lo <= tau_sq))
        above_noise = int(np.count_nonzero(lam > noise))
        rank = min(max(possible, above_noise, 1), certified)
    else:  # no tolerance: only what is provably zero is dropped
        rank = certified
    if cap is not None and cap < rank:
        return cap, float(tails[cap]), float(hi[cap] - tails[cap]), float(hi[cap]), False
    return rank, float(tails[rank]), float(hi[rank] - tails[rank]), tau_sq, rank < certified


def decide_gram(
    gram: np.ndarray,
    modes: Sequence[int],
    tau_sq: float,
    caps: Sequence[int | None],
    resolution: float,
    noise: float,
) -> Group:
    """Decide the bonds after each of ``modes`` from the Gram of their unfolding.

    Args:
        gram: ``C C^H`` as computed, ``(m, m)`` with ``m = prod(modes)`` (row-major
            multi-index over ``modes``).
        modes: mode sizes of the rows (the first may include a carried rank).
        tau_sq: squared norm each bond may discard (0: drop only provable zeros).
        caps: rank cap per bond (``None``: none).
        resolution: bound on the Frobenius norm of the Gram's rounding error.
        noise: eigenvalues at or below this (or 16 times the most negative
            eigenvalue, if larger) are taken for rounding noise when a rank has to be
            proposed for verification.
    """
    gram = np.asarray(gram)
    rows = 1
    cores, tails, slack, allowance, unverified = [], [], [], [], []
    for j, n in enumerate(modes):
        rest = math.prod(modes[j + 1 :])
        block = gram.reshape(rows * n, rest, rows * n, rest)
        h = np.einsum("iaja->ij", block)
        lam, vecs = np.linalg.eigh((h + h.conj().T) / 2)
        lam, vecs = lam[::-1], vecs[:, ::-1]
        # rounding noise spreads the zero eigenvalues of a PSD matrix to both signs
        floor = max(noise, 16.0 * max(-float(lam[-1]), 0.0))
        rank, tail, sl, allow, unv = _gram_rank(lam, tau_sq, caps[j], resolution, floor)
        if rank == rows * n:  # nothing discarded: keep the coordinates (no rotation)
            basis = np.eye(rank, dtype=vecs.dtype)
        else:
            basis = vecs[:, :rank]
        cores.append(basis.reshape(rows, n, rank))
        tails.append(tail)
        slack.append(sl)
        allowance.append(allow)
        unverified.append(unv)
        if j + 1 < len(modes):
            gram = np.einsum("ip,iajb,jq->paqb", basis.conj(), block, basis, optimize=True)
            gram = gram.reshape(rank * rest, rank * rest)
        rows = rank
    return Group(tuple(cores), tuple(tails), tuple(slack), tuple(allowance), tuple(unverified))


def decide_factor(
    factor: np.ndarray, modes: Sequence[int], tau_sq: float, caps: Sequence[int | None]
) -> Group:
    """Decide the bonds after each of ``modes`` from ``M`` with ``M M^H = C C^H`` (SVDs).

    Example:
        >>> import numpy as np
        >>> m = np.diag([3.0, 2.0, 1e-9, 0.0])                # modes (2, 2)
        >>> decide_factor(m, (2, 2), tau_sq=1e-16, caps=(None, None)).ranks
        (1, 2)
        >>> decide_factor(m, (2, 2), tau_sq=0.0, caps=(None, None)).ranks
        (2, 3)
    """
    carry = np.asarray(factor)
    rows = 1
    cores, tails, allowance = [], [], []
    for j, n in enumerate(modes):
        u, s, vh = np.linalg.svd(carry.reshape(rows * n, -1), full_matrices=False)
        rank = rank_rules.truncation_rank(s, math.sqrt(tau_sq), caps[j])
        tail = rank_rules.tail_norm(s, rank) ** 2
        capped = caps[j] is not None and rank == caps[j] and tail > tau_sq
        if rank == rows * n:  # nothing discarded: keep the coordinates
            basis, carry = np.eye(rank, dtype=u.dtype), carry.reshape(rank, -1)
        else:
            basis, carry = u[:, :rank], s[:rank, None] * vh[:rank]
        cores.append(basis.reshape(rows, n, rank))
        tails.append(tail)
        allowance.append(tail if capped else tau_sq)
        rows = rank
    zeros = (0.0,) * len(cores)
    return Group(tuple(cores), tuple(tails), zeros, tuple(allowance), (False,) * len(cores))
