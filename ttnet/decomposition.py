"""TT-SVD: dense tensor or matrix -> TT with a guaranteed relative error.

:func:`tt_svd` sweeps left to right. At each bond the current unfolding ``C`` (rows x
cols) is split into an orthonormal core ``U`` and the carry ``U^H C``; the discarded parts
of the sweep are orthogonal to each other, so ``||A - TT||^2`` is exactly the sum of the
discarded squared norms and the reported :attr:`~ttnet.TensorTrain.error` is exact.

Two ways to find ``U`` for a wide unfolding, chosen automatically per bond:

- **Gram path** (fast): eigen-decompose ``C C^H`` (rows x rows). Its eigenvalues are the
  squared singular values, but only to about ``rows * machine_eps * ||C||^2``: values
  below that (relative singular values under ~1e-7 in float64) are unresolved. The Gram
  path is used when the truncation falls among resolved values, or when the error it
  causes, measured exactly as ``||C - U U^H C||``, is within the bond's budget. For a
  tensor of exact low TT rank this finds the exact ranks with an error at round-off level.
- **QR path** (accurate): the singular values from a blocked QR of ``C^H`` followed by an
  SVD of the small ``r`` factor — backward stable, used when the Gram path cannot decide
  (tight ``eps`` on a tensor whose small singular values are not exactly zero).

Tall unfoldings (rows > cols, near the end of the sweep) use a thin SVD directly.
Rank rules are those of :mod:`ttnet.ranks`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np

from ttnet import ranks as rank_rules
from ttnet._backend import (
    as_float_array,
    check_finite,
    check_nonempty,
    conj_t,
    eigh,
    finfo_eps,
    get_namespace,
    norm,
    qr_r,
    svd,
    to_numpy,
    upcast_half,
)
from ttnet.rounding import round_cores
from ttnet.tensor_train import TensorTrain
from ttnet.tt_matrix import TTMatrix

__all__ = ["tt_matrix_svd", "tt_svd"]

Array = Any

# Gram eigenvalues below this many ``rows * machine_eps * ||C||^2`` count as unresolved.
_RESOLVE_FACTOR = 100.0
# Fraction of a bond's squared budget that the Gram path may use (its estimates carry a
# relative error far below 1% for resolved values).
_GRAM_MARGIN = 0.98
# Entries per block when the exact residual of a Gram-path truncation is measured.
_BLOCK_ENTRIES = 1 << 18


def _sq(values: np.ndarray) -> float:
    return float(np.sum(values * values))


def _project(c: Array, basis: Array) -> tuple[Array, float]:
    """Carry ``basis^H c`` and the exact squared residual ``||c - basis basis^H c||^2``.

    The residual is formed in column blocks of about ``_BLOCK_ENTRIES`` entries, so no
    copy of ``c`` is allocated.
    """
    carry = conj_t(basis) @ c
    rows, cols = int(c.shape[0]), int(c.shape[1])
    step = max(_BLOCK_ENTRIES // rows, 1)
    residual = 0.0
    for j in range(0, cols, step):
        block = c[:, j : j + step] - basis @ carry[:, j : j + step]
        residual += float(to_numpy(_frob_sq(block)))
    return carry, residual


def _frob_sq(x: Array) -> Array:
    value = norm(x)
    return value * value


def _wide_step(c: Array, threshold: float, cap: int | None) -> tuple[Array, Array, float]:
    """Core basis ``U`` (rows x r), carry ``U^H C`` and discarded squared norm for a wide ``C``."""
    xp = get_namespace(c)
    rows = int(c.shape[0])
    w, v = eigh(c @ conj_t(c))
    lam = np.clip(to_numpy(w)[::-1].astype(np.float64), 0.0, None)
    vecs = xp.flip(v, axis=1)
    total = float(lam.sum())
    tol = _RESOLVE_FACTOR * rows * finfo_eps(c) * total
    resolved = max(int(np.count_nonzero(lam > tol)), 1)
    sv = np.sqrt(lam)
    rank_eps = rank_rules.truncation_rank(sv, threshold * math.sqrt(_GRAM_MARGIN))
    rank = rank_eps if cap is None else min(rank_eps, cap)
    cap_governed = cap is not None and rank_eps > cap
    candidates = [rank]
    if threshold > 0 and rank > resolved:
        candidates.insert(0, resolved)  # try discarding every unresolved direction first
    for cand in candidates:
        if cand == rows:  # nothing discarded: any orthonormal basis will do
            return xp.eye(rows, dtype=c.dtype, device=array_api_compat.device(c)), c, 0.0
        basis = vecs[:, :cand]
        tail = float(lam[cand:].sum())
        if cand <= resolved and tail >= tol:
            return basis, conj_t(basis) @ c, tail
        carry, residual = _project(c, basis)
        if residual <= threshold * threshold or (cap_governed and cand == rank):
            return basis, carry, residual
    return _accurate_step(c, threshold, cap)


def _accurate_step(c: Array, threshold: float, cap: int | None) -> tuple[Array, Array, float]:
    """Like :func:`_wide_step` but with singular values from a backward-stable QR."""
    r = qr_r(conj_t(c))
    u, s, _ = svd(conj_t(r))
    s_np = to_numpy(s).astype(np.float64)
    rank = rank_rules.truncation_rank(s_np, threshold, cap)
    basis = u[:, :rank]
    return basis, conj_t(basis) @ c, _sq(s_np[rank:])


def _tall_step(c: Array, threshold: float, cap: int | None) -> tuple[Array, Array, float]:
    xp = get_namespace(c)
    u, s, vh = svd(c)
    s_np = to_numpy(s).astype(np.float64)
    rank = rank_rules.truncation_rank(s_np, threshold, cap)
    carry = xp.astype(s[:rank, None], vh.dtype) * vh[:rank, :]
    return u[:, :rank], carry, _sq(s_np[rank:])


def _tt_svd_cores(
    a: Array, eps: float | None, caps: Sequence[int | None]
) -> tuple[list[Array], float, float]:
    """Cores, discarded squared norm and squared norm of ``a`` (already checked)."""
    xp = get_namespace(a)
    shape = tuple(int(n) for n in a.shape)
    d = len(shape)
    norm_sq = float(to_numpy(_frob_sq(a)))
    if d == 1:
        return [xp.reshape(a, (1, shape[0], 1))], 0.0, norm_sq
    threshold = rank_rules.bond_threshold(eps or 0.0, math.sqrt(norm_sq), d - 1)
    size = math.prod(shape)
    cores = []
    discarded = 0.0
    c = a
    r_prev = 1
    for k in range(d - 1):
        rows = r_prev * shape[k]
        c = xp.reshape(c, (rows, size // rows))
        step = _tall_step if rows > size // rows else _wide_step
        basis, c, lost = step(c, threshold, caps[k])
        rank = int(basis.shape[1])
        cores.append(xp.reshape(basis, (r_prev, shape[k], rank)))
        discarded += lost
        size = (size // rows) * rank
        r_prev = rank
    cores.append(xp.reshape(c, (r_prev, shape[-1], 1)))
    return cores, discarded, norm_sq


def _checked_tensor(tensor: Array, name: str) -> Array:
    a = as_float_array(tensor, name)
    get_namespace(a, names=[name])
    if a.ndim == 0:
        raise ValueError(f"{name}: expected at least one axis, got a 0-d array")
    check_nonempty(a, name)
    check_finite(a, name)
    return a


def _decompose(
    a: Array,
    eps: float | None,
    max_rank: int | Sequence[int] | None,
    max_params: int | None,
) -> tuple[list[Array], float]:
    eps = rank_rules.check_eps(eps)
    max_params = rank_rules.check_max_params(max_params)
    a, half = upcast_half(a)
    if half is not None:
        xp = get_namespace(a)
        cores, error = _decompose(a, eps, max_rank, max_params)
        return [xp.astype(c, half) for c in cores], error
    shape = tuple(int(n) for n in a.shape)
    caps = list(rank_rules.normalize_max_rank(max_rank, len(shape) - 1))
    if max_params is not None:
        budget_caps = rank_rules.budget_rank_caps(shape, max_params)
        caps = [b if c is None else min(c, b) for c, b in zip(caps, budget_caps)]
    cores, discarded, norm_sq = _tt_svd_cores(a, eps, caps)
    if norm_sq == 0.0:
        return cores, 0.0
    ranks = (1, *(int(c.shape[2]) for c in cores))
    if max_params is not None and rank_rules.count_params(shape, ranks) > max_params:
        # The rounding error is orthogonal to the TT-SVD error (see module docstring of
        # ttnet.rounding), so the two add in quadrature.
        cores, rel = round_cores(cores, max_params=max_params)
        discarded += rel * rel * max(norm_sq - discarded, 0.0)
    return cores, min(math.sqrt(max(discarded, 0.0) / norm_sq), 1.0)


def tt_svd(
    tensor: Array,
    eps: float | None = None,
    max_rank: int | Sequence[int] | None = None,
    max_params: int | None = None,
) -> TensorTrain:
    """Decompose a dense tensor into a :class:`~ttnet.TensorTrain` (TT-SVD).

    Args:
        tensor: dense array (numpy or torch), at least one axis. Integer and boolean
            arrays are converted to float (see :mod:`ttnet._backend`).
        eps: relative Frobenius error allowed for the whole result (``>= 0``); each bond
            may discard ``eps / sqrt(d - 1) * ||tensor||``.
        max_rank: rank cap, an int or one int per bond (``d - 1``); wins over ``eps``.
        max_params: parameter budget; wins over ``eps`` and ``max_rank``.
            With none of the three the decomposition is exact (full ranks, up to
            round-off).

    Returns:
        The TT, same library, dtype and device as ``tensor``; ``.error`` holds the
        relative error reached, ``||tensor - tt.full()|| / ||tensor||``.

    Raises:
        ValueError: ``eps < 0``, ``max_rank < 1``, ``max_params`` below the all-ranks-1
            size, an empty or non-finite ``tensor``. TypeError: non-numeric input.

    Example:
        >>> import numpy as np
        >>> x = np.linspace(0, 1, 4 ** 6).reshape((4,) * 6)
        >>> tt = tt_svd(np.sin(x), eps=1e-10)
        >>> tt.ranks, tt.error < 1e-10
        ((1, 2, 2, 2, 2, 2, 1), True)
    """
    a = _checked_tensor(tensor, "tensor")
    cores, error = _decompose(a, eps, max_rank, max_params)
    return TensorTrain._trusted(cores, error)


def tt_matrix_svd(
    matrix: Array,
    row_shape: Sequence[int],
    col_shape: Sequence[int],
    eps: float | None = None,
    max_rank: int | Sequence[int] | None = None,
    max_params: int | None = None,
) -> TTMatrix:
    """Decompose a dense matrix ``(M, N)`` into a :class:`~ttnet.TTMatrix`.

    The matrix is viewed as a tensor ``(m_1, ..., m_d, n_1, ..., n_d)`` (row-major
    multi-indices), its modes interleaved to ``(m_1 n_1, ..., m_d n_d)``, decomposed with
    :func:`tt_svd`, and each core reshaped to ``(r_{k-1}, m_k, n_k, r_k)``.

    Args:
        matrix: dense 2-D array ``(M, N)``.
        row_shape: ``(m_1, ..., m_d)`` with product ``M``.
        col_shape: ``(n_1, ..., n_d)`` with product ``N``, same length as ``row_shape``.
        eps, max_rank, max_params: as in :func:`tt_svd` (mode sizes ``m_k * n_k``).

    Example:
        >>> import numpy as np
        >>> w = np.kron(np.eye(4), np.ones((2, 3)))
        >>> ttm = tt_matrix_svd(w, (4, 2), (4, 3), eps=1e-12)
        >>> ttm.ranks, ttm.shape, bool(np.allclose(ttm.to_dense(), w))
        ((1, 1, 1), (8, 12), True)
    """
    a = _checked_tensor(matrix, "matrix")
    if a.ndim != 2:
        raise ValueError(f"matrix: expected a 2-D array (M, N), got shape {tuple(a.shape)}")
    rows = _checked_modes(row_shape, "row_shape")
    cols = _checked_modes(col_shape, "col_shape")
    if len(rows) != len(cols):
        raise ValueError(
            f"col_shape: expected {len(rows)} modes like row_shape {rows}, got {cols}"
        )
    m, n = int(a.shape[0]), int(a.shape[1])
    if math.prod(rows) != m:
        raise ValueError(
            f"row_shape: product must be M = {m}, got {rows} (product {math.prod(rows)})"
        )
    if math.prod(cols) != n:
        raise ValueError(
            f"col_shape: product must be N = {n}, got {cols} (product {math.prod(cols)})"
        )
    xp = get_namespace(a)
    d = len(rows)
    order = [axis for k in range(d) for axis in (k, d + k)]
    t = xp.permute_dims(xp.reshape(a, rows + cols), tuple(order))
    t = xp.reshape(t, tuple(mk * nk for mk, nk in zip(rows, cols)))
    cores, error = _decompose(t, eps, max_rank, max_params)
    cores = [
        xp.reshape(c, (int(c.shape[0]), mk, nk, int(c.shape[2])))
        for c, mk, nk in zip(cores, rows, cols)
    ]
    return TTMatrix._trusted(cores, error)


def _checked_modes(modes: Sequence[int], name: str) -> tuple[int, ...]:
    if isinstance(modes, (str, bytes)) or not isinstance(modes, Sequence) or not modes:
        raise TypeError(f"{name}: expected a non-empty sequence of ints, got {modes!r}")
    values = []
    for k, mode in enumerate(modes):
        if isinstance(mode, bool) or not isinstance(mode, (int, np.integer)):
            raise TypeError(f"{name}[{k}]: expected an int, got {type(mode).__name__}")
        if mode < 1:
            raise ValueError(f"{name}[{k}]: expected a mode size >= 1, got {mode}")
        values.append(int(mode))
    return tuple(values)
