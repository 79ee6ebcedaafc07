"""TT-cross: a tensor train from an entry oracle, for tensors far too large to form.

:func:`tt_cross` builds a TT from ``fn(indices) -> values`` by *tensor cross interpolation*
(TCI) in the nested form of Núñez Fernández et al., "Learning tensor networks with tensor
cross interpolation: new algorithms and libraries", SciPost Phys. 18, 104 (2025),
arXiv:2407.02454 (their TCI1 with rook pivot search), with a final SVD recompression:

- Each bond ``k`` has nested pivot sets: left prefixes ``I_k`` (each one a prefix of
  ``I_{k-1}`` extended by one index) and right suffixes ``J_k`` (likewise from ``J_{k+1}``).
  The fibers ``T_k = F(I_{k-1}, :, J_k)`` are the only entries the TT is made of:
  ``TT = T_1 P_1^{-1} T_2 P_2^{-1} ... T_d`` with pivot matrices ``P_k = F(I_k, J_k)``,
  computed stably as ``Q Q[I]^{-1}`` from a QR factor of ``T_k`` (the interpolation
  reproduces every fiber exactly).
- Ranks grow by adding pivots: at bond ``k`` the two-site matrix
  ``Pi_k = F(I_{k-1} x n_k, n_{k+1} x J_{k+1})`` is explored by rook search (evaluate a
  column, move to its largest interpolation error, evaluate that row, ...; Bebendorf's
  adaptive cross approximation is its first step). A pivot whose error is above the
  tolerance is added; the row and column evaluated to find it are exactly the new fiber
  entries of ``T_k`` and ``T_{k+1}``, so no evaluation is spent twice.
  A bond is done when fresh random probes (a column and a row) show no error above the
  tolerance, or when it has grown by half its rank in this visit (ranks grow evenly, so a
  run cut short by ``max_evals`` is balanced). Sweeps go left to right and back until no
  bond adds a pivot.
- The error is estimated on a held-out random sample (``n_check`` entries, never used to
  choose pivots); when it is above ``eps`` the tolerance is tightened and sweeps resume.
  Finally the TT is rounded (TT-SVD truncation, :func:`ttnet.round_cores`) to ``eps / 2``.

Evaluations are counted (:class:`CrossInfo`), batched (one call of ``fn`` per column or row
of a search, or per sample) and cached: no multi-index reaches ``fn`` twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttnet import ranks as rank_rules
from ttnet._backend import library_name
from ttnet._oracle import BudgetExhausted, Oracle
from ttnet._tci import Bonds, search_bond
from ttnet.decomposition import tt_svd
from ttnet.indexing import gather_cores
from ttnet.plans import check_shape
from ttnet.rounding import round_cores
from ttnet.tensor_train import TensorTrain

__all__ = ["CrossInfo", "tt_cross"]

Array = Any

# Random samples drawn to choose the first pivot (the one of largest |value|).
_N_START = 16
# Most pivots added at a bond per visit: max(_GROW_MIN, _GROW * rank). Ranks grow evenly
# over the sweeps, so a run stopped by max_evals is balanced, not rich on its first bonds.
_GROW = 0.5
_GROW_MIN = 2
# Tolerance floor, in units of machine epsilon times the largest |value| seen.
_FLOOR = 256.0


@dataclass(frozen=True)
class CrossInfo:
    """What a TT-cross run did (the ``info`` of its result).

    Attributes:
        evals: distinct multi-indices sent to ``fn`` (held-out sample included).
        calls: calls of ``fn`` (each one a batch).
        error: relative error ``||f - tt|| / ||f||`` on the held-out sample.
        n_check: size of the held-out sample.
        sweeps: half-sweeps done (one pass over the bonds, either direction).
        ranks: TT ranks of the result.
        stop: why it stopped: ``"eps"`` (error reached), ``"converged"`` (no pivot above
            round-off left), ``"max_rank"``, ``"max_evals"``, ``"max_sweeps"``, ``"dense"``
            (the tensor was small enough to evaluate whole) or ``"zero"`` (every sampled
            value was 0).
        history: ``(evals, held-out error before rounding)`` at each check.

    Example:
        >>> import numpy as np, ttnet
        >>> x = np.linspace(0, 1, 16)
        >>> info = ttnet.tt_cross(lambda i: np.exp(-x[i].sum(axis=1)), [16] * 6, eps=1e-10).info
        >>> info.stop, info.ranks, info.evals < 2000, info.error < 1e-10
        ('eps', (1, 1, 1, 1, 1, 1, 1), True, True)
    """

    evals: int
    calls: int
    error: float
    n_check: int
    sweeps: int
    ranks: tuple[int, ...]
    stop: str
    history: tuple[tuple[int, float], ...]




def _check_count(value: int | None, name: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int or None, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def _rel_error(values: np.ndarray, approx: np.ndarray) -> float:
    ref = float(np.linalg.norm(values))
    diff = float(np.linalg.norm(values - approx))
    return diff / ref if ref > 0 else diff


def _output(cores: Sequence[np.ndarray], oracle: Oracle) -> list[Array]:
    """The cores in the library and on the device of ``like``, in the float dtype of
    ``fn``'s answers (float64 / complex128 for integer answers)."""
    dtype = oracle.answer_dtype if oracle.answer_dtype.kind in "fc" else oracle.dtype
    cores = [np.asarray(c).astype(dtype) for c in cores]
    like = oracle.like
    if like is None or library_name(like) != "torch":
        return cores
    import torch  # already imported: ``like`` is a torch tensor

    return [torch.as_tensor(c, device=like.device) for c in cores]


def tt_cross(
    fn: Callable[[Array], Array],
    shape: Sequence[int],
    eps: float | None = None,
    max_rank: int | Sequence[int] | None = None,
    max_evals: int | None = None,
    seed: int = 0,
    *,
    like: Array | None = None,
    n_check: int = 1000,
    max_sweeps: int = 40,
    progress: bool | None = None,
) -> TensorTrain:
    """A :class:`~ttnet.TensorTrain` approximating the tensor whose entries ``fn`` returns.

    ``fn(indices)`` gets an int64 array ``(batch, d)`` of multi-indices (numpy, or torch on
    ``like``'s device when ``like`` is a torch tensor) and returns the ``(batch,)`` entries
    (float or complex). It is called in batches, never twice for one multi-index.
    Algorithm: tensor cross interpolation with rook pivoting (see :mod:`ttnet.cross`).

    Args:
        fn: the entry oracle.
        shape: mode sizes ``(n_1, ..., n_d)``.
        eps: target relative error ``||f - tt|| / ||f||``, estimated on a held-out sample
            (``None``: add pivots until the interpolation error is at round-off).
        max_rank: rank cap for every bond (an int, or one per bond).
        max_evals: most distinct entries ``fn`` may evaluate (held-out sample included).
            It stops at ``eps``, ``max_rank`` or ``max_evals``, whichever comes first.
        seed: seed of the random samples and probes (same seed, same result).
        like: ``None`` (numpy) or a torch tensor: the indices given to ``fn`` and the
            cores are torch tensors on its device.
        n_check: size of the held-out random sample that estimates the error.
        max_sweeps: most half-sweeps over the bonds.
        progress: a tqdm bar per sweep (``None``: only on a terminal; needs ``tqdm``).

    Returns:
        The TT (dtype of ``fn``'s values), with ``.error`` the held-out relative error and
        ``.info`` a :class:`CrossInfo` (evaluations, calls, sweeps, why it stopped).

    Raises:
        ValueError: ``fn`` answers with a wrong shape or dtype or a non-finite value (the
            message names ``fn`` and the batch shapes), a mode of size 0, or ``max_evals``
            below what one sweep at rank 1 needs.

    Example:
        >>> import numpy as np, ttnet
        >>> x = np.linspace(-1, 1, 32)
        >>> tt = ttnet.tt_cross(lambda i: 1 / (1 + (x[i] ** 2).sum(axis=1)), [32] * 8, eps=1e-8)
        >>> tt.error < 1e-8, tt.info.evals < 32**8 // 10**6
        (True, True)
    """
    shape = check_shape(shape)
    eps = rank_rules.check_eps(eps)
    caps = rank_rules.normalize_max_rank(max_rank, len(shape) - 1)
    max_evals = _check_count(max_evals, "max_evals", 1)
    n_check = _check_count(n_check, "n_check", 1)
    max_sweeps = _check_count(max_sweeps, "max_sweeps", 1)
    oracle = Oracle(fn, shape, max_evals, like)
    needed = _N_START + n_check + sum(shape)
    total = math.prod(shape)
    if total <= 2 * needed and (max_evals is None or max_evals >= total):
        return _dense(oracle, eps, max_rank)
    if max_evals is not None and max_evals < needed:
        raise ValueError(
            f"max_evals: one sweep at rank 1 needs {sum(shape)} evaluations plus {n_check} "
            f"held-out and {_N_START} start samples, {needed} in all; got {max_evals}"
        )
    rng = np.random.default_rng(seed)
    sample = np.stack([rng.integers(0, n, size=n_check + _N_START) for n in shape], axis=1)
    values = oracle(sample)
    check, check_values = sample[:n_check], values[:n_check]
    # The first pivot: the start sample of largest |value| (a held-out one if all are 0).
    pool = n_check if np.abs(values[n_check:]).max() > 0 else 0
    magnitude = np.abs(values[pool:])
    if magnitude.max() == 0:
        return _finish(oracle, [np.zeros((1, n, 1)) for n in shape], "zero", 0, [],
                       check, check_values, eps, max_rank)
    bonds = Bonds(oracle, sample[pool + int(np.argmax(magnitude))])
    scale = float(np.sqrt(np.mean(np.abs(check_values) ** 2))) or float(magnitude.max())
    floor = _FLOOR * np.finfo(np.float64).eps * float(np.abs(values).max())
    tol = max(0.5 * eps * scale, floor) if eps else floor
    target = 0.5 * eps if eps else 0.0
    history: list[tuple[int, float]] = []
    sweeps, stop = 0, None
    bar = _progress_factory(progress)
    d = len(shape)
    try:
        while stop is None:
            order = range(d - 1) if sweeps % 2 == 0 else range(d - 2, -1, -1)
            added = blocked = 0
            for k in bar(order, f"cross sweep {sweeps + 1}", oracle):
                cap = min(caps[k] or math.inf, bonds.cores[k].shape[0] * shape[k],
                          shape[k + 1] * bonds.cores[k + 1].shape[2])
                grow = len(bonds.rows[k]) + max(_GROW_MIN, int(_GROW * len(bonds.rows[k])))
                added += search_bond(bonds, k, tol, min(cap, grow), rng)
                blocked += len(bonds.rows[k]) >= (caps[k] or math.inf)
            sweeps += 1
            if added == 0:
                error = _rel_error(check_values, gather_cores(bonds.tt_cores(), check))
                history.append((oracle.evals, error))
                if eps is not None and error <= target:
                    stop = "eps"
                elif blocked == d - 1:
                    stop = "max_rank"
                elif tol <= floor:
                    stop = "converged"
                else:
                    tol = max(tol * min(0.25, 0.5 * target / error), floor)
            if stop is None and sweeps >= max_sweeps:
                stop = "max_sweeps"
    except BudgetExhausted:
        stop = "max_evals"
    return _finish(oracle, bonds.tt_cores(), stop, sweeps, history, check, check_values,
                   eps, max_rank)


def _progress_factory(progress: bool | None) -> Callable[..., Any]:
    """``bar(iterable, description, oracle)``: tqdm over the bonds of one sweep, showing
    the evaluations so far (a plain iterator when off or when tqdm is not installed)."""
    if progress is False:
        return lambda items, desc, oracle: items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return lambda items, desc, oracle: items

    def bar(items: Any, desc: str, oracle: Oracle) -> Any:
        with tqdm(items, desc=desc, disable=None if progress is None else not progress,
                  leave=False, unit="bond") as it:
            for item in it:
                yield item
                it.set_postfix(evals=oracle.evals, refresh=False)

    return bar


def _finish(
    oracle: Oracle,
    cores: list[np.ndarray],
    stop: str,
    sweeps: int,
    history: list[tuple[int, float]],
    check: np.ndarray,
    check_values: np.ndarray,
    eps: float | None,
    max_rank: int | Sequence[int] | None,
) -> TensorTrain:
    """Round, measure on the held-out sample, convert; the result with its info."""
    cores, _ = round_cores(cores, eps=None if eps is None else 0.5 * eps, max_rank=max_rank)
    error = _rel_error(check_values, gather_cores(cores, check))
    info = CrossInfo(
        evals=oracle.evals, calls=oracle.calls, error=error, n_check=len(check), sweeps=sweeps,
        ranks=(1, *(int(c.shape[2]) for c in cores)), stop=stop, history=tuple(history),
    )
    return TensorTrain._trusted(_output(cores, oracle), error, info)


def _dense(
    oracle: Oracle, eps: float | None, max_rank: int | Sequence[int] | None
) -> TensorTrain:
    """Small tensors: evaluate every entry (one call) and decompose by TT-SVD."""
    shape = oracle.shape
    grids = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    values = oracle(np.stack([g.reshape(-1) for g in grids], axis=1))
    tt = tt_svd(values.reshape(shape), eps=eps, max_rank=max_rank)
    info = CrossInfo(
        evals=oracle.evals, calls=oracle.calls, error=tt.error, n_check=0, sweeps=0,
        ranks=tt.ranks, stop="dense", history=(),
    )
    return TensorTrain._trusted(_output(list(tt.cores), oracle), tt.error, info)
