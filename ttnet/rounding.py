"""TT rounding: recompress a TT to lower ranks with a guaranteed error.

Algorithm (Oseledets 2011): orthogonalise right to left with QR, then sweep left to
right with truncated SVDs under the rank rules of :mod:`ttnet.ranks`. Each truncation is
an orthogonal projection, so the bond errors add in quadrature and the reported error is
exact: ``sqrt(sum of discarded squared singular values) / ||input||`` (summed relative to the
norm, so that no square over- or underflows at extreme scales). With a parameter
budget a second sweep (right to left) lowers the ranks chosen by
:func:`ttnet.ranks.ranks_for_budget` from the bond spectra of the first sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ttnet import ranks as rank_rules
from ttnet._backend import get_namespace, norm, svd, to_numpy, upcast_half
from ttnet._cores import orthogonalize_right

__all__ = ["round_cores"]

Array = Any


def round_cores(
    cores: Sequence[Array],
    eps: float | None = None,
    max_rank: int | Sequence[int] | None = None,
    max_params: int | None = None,
) -> tuple[list[Array], float]:
    """Round TT cores ``(r_{k-1}, n_k, r_k)``; return the new cores and the relative error.

    Args:
        cores: TT cores (numpy or torch, one library).
        eps: relative Frobenius error allowed for the whole result.
        max_rank: rank cap, an int or one per bond; wins over ``eps``.
        max_params: parameter budget; wins over ``eps`` and ``max_rank``.
            With none of the three the TT is recompressed to its exact ranks
            (discarding only zero singular values).

    Returns:
        ``(new_cores, error)`` with ``error = ||new - old|| / ||old||`` (0 when old is 0).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> cores = [rng.standard_normal((1, 3, 2)), rng.standard_normal((2, 3, 1))]
        >>> doubled = [np.concatenate([cores[0], cores[0]], axis=2),
        ...            np.concatenate([cores[1], cores[1]], axis=0)]
        >>> new, err = round_cores(doubled, eps=1e-12)
        >>> [c.shape for c in new], err < 1e-12
        ([(1, 3, 2), (2, 3, 1)], True)
    """
    eps = rank_rules.check_eps(eps)
    max_params = rank_rules.check_max_params(max_params)
    d = len(cores)
    caps = rank_rules.normalize_max_rank(max_rank, d - 1)
    xp = get_namespace(*cores, names=[f"cores[{k}]" for k in range(d)])
    half = upcast_half(cores[0])[1]
    if half is not None:
        new, error = round_cores([upcast_half(c)[0] for c in cores], eps, max_rank, max_params)
        return [xp.astype(c, half) for c in new], error
    sizes = [int(c.shape[1]) for c in cores]
    out = orthogonalize_right(cores)
    total = float(to_numpy(norm(out[0])))
    if d == 1 or total == 0.0:
        return out, 0.0
    threshold = rank_rules.bond_threshold(eps or 0.0, total, d - 1)
    discarded = 0.0
    spectra = []
    for k in range(d - 1):
        r0, n, r1 = (int(s) for s in out[k].shape)
        u, s, vh = svd(xp.reshape(out[k], (r0 * n, r1)))
        rank = rank_rules.truncation_rank(s, threshold, caps[k])
        spectra.append(to_numpy(s)[:rank])
        discarded += (rank_rules.tail_norm(s, rank) / total) ** 2
        out[k] = xp.reshape(u[:, :rank], (r0, n, rank))
        carry = s[:rank, None] * vh[:rank, :]
        out[k + 1] = xp.tensordot(xp.astype(carry, out[k + 1].dtype), out[k + 1], axes=([1], [0]))
    if max_params is not None and rank_rules.count_params(sizes, _ranks(out)) > max_params:
        target = rank_rules.ranks_for_budget(sizes, max_params, singular_values=spectra)
        for k in range(d - 1, 0, -1):
            r0, n, r1 = (int(s) for s in out[k].shape)
            u, s, vh = svd(xp.reshape(out[k], (r0, n * r1)))
            rank = min(target[k], int(s.shape[0]))
            discarded += (rank_rules.tail_norm(s, rank) / total) ** 2
            out[k] = xp.reshape(vh[:rank, :], (rank, n, r1))
            carry = u[:, :rank] * xp.astype(s[None, :rank], u.dtype)
            out[k - 1] = xp.tensordot(out[k - 1], carry, axes=([2], [0]))
    return out, math.sqrt(discarded)


def _ranks(cores: Sequence[Array]) -> tuple[int, ...]:
    return (1, *(int(c.shape[2]) for c in cores))
