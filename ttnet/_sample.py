"""One pass instead of two for data of low rank: the first frame proposed by a sample.

The sweep of :mod:`ttnet._sweep` reads the data twice for its first group: once for the Gram
that decides the bonds, once to project. When a few slabs spread over the data
(:data:`ttnet._sources.SAMPLE_SLABS`) show the group's unfolding to be of low rank at the
tolerance — the tail they would discard at their rounding-noise level, or below 1% of the
budget — their Gram proposes the frame, and the data is read once: projected, with the
exact squared residual ``||C - F F^H C||^2`` and ``||F^H C||^2`` measured in the same pass
(their sum is ``||C||^2``, which fixes the budget). The residual decides: within what the
projected bonds may discard, the frame is kept and the residual is their reported error
(exact); otherwise the caller falls back to the two-pass sweep. The result is correct
whatever the sample; only the speed depends on it (a direction that lives only in slabs the
sample missed shows up in the residual).

Used for the first group of a decomposition with a tolerance and no rank caps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ttnet._backend import conj_t, to_numpy
from ttnet._bonds import decide_gram
from ttnet._kernels import Scale
from ttnet._sources import MappedSource
from ttnet._sweep import Context, Side, gram_bounds, project_left

__all__ = ["sample_left"]


def _scale_of(top: float, xp: Any, work: Any) -> float:
    """1.0 when squares of values up to ``top`` are safe in ``work``, else a power of two."""
    info = xp.finfo(work)
    low, high = float(info.smallest_normal) ** 0.25, float(info.max) ** 0.25
    return 1.0 if low <= top <= high else 2.0 ** -math.floor(math.log2(top))


def sample_left(
    src: Any, modes: Sequence[int], k: int, eps_sq: float, ctx: Context
) -> tuple[Side, Any, float, float] | None:
    """The first group decided from a sample and projected in one pass.

    Args:
        src: the data.
        modes: its modes; the group is bonds ``1..k``.
        eps_sq: squared relative error allowed per bond (``eps**2 / (d - 1)``).
        ctx: settings (``tau_sq`` is not used: the budget comes from the pass).

    Returns:
        ``(side, source, norm_sq, scale)`` — the projected group, the source the rest of the
        sweep reads (scaled when the data's magnitude needs it), ``||C||^2`` in its units
        and the scale — or ``None`` when the sample does not look low-rank or the residual
        rejects its frame.
    """
    xp = src.xp
    rows_k = math.prod(modes[:k])
    sample = src.sample(rows_k)
    top = float(xp.max(xp.abs(sample)))
    if not 0.0 < top < math.inf:
        return None  # zeros or NaN/inf in the sample: the two-pass sweep handles (and names) it
    scale = _scale_of(top, xp, ctx.work)
    if scale != 1.0:
        src, sample = MappedSource(src, Scale(scale)), sample * scale
    wide = xp.astype(sample, xp.complex128 if xp.isdtype(sample.dtype, "complex floating")
                     else xp.float64)
    g = to_numpy(wide @ conj_t(wide))
    tau_s = eps_sq * float(np.trace(g).real)
    resolution, noise = gram_bounds((int(sample.shape[1]), 1), rows_k, 0, g, xp.float64, xp)
    group = decide_gram(g, modes[:k], tau_s, (None,) * k, resolution, noise)
    j = group.best_split()
    if j == 0 or 2 * group.ranks[j - 1] > math.prod(modes[:j]):
        return None
    if any(t > max(0.01 * tau_s, sl) for t, sl in zip(group.tails[:j], group.slack[:j])):
        return None  # the sample discards more than noise: not low rank at this tolerance
    side, rho, ysq = project_left(src, tuple(modes), group, j, ctx, residual=True, norm=True)
    if not (math.isfinite(rho) and math.isfinite(ysq)):
        return None
    tau_sq = eps_sq * (rho + ysq)
    floor_sq = (4 * math.prod(modes[:j]) * float(xp.finfo(ctx.work).eps) / 2) ** 2 * (rho + ysq)
    if rho > j * tau_sq + floor_sq:
        return None
    side.discarded = rho
    return side, src, rho + ysq, scale


def sample_applies(eps: float | None, caps: Sequence[int | None]) -> bool:
    """Whether a decomposition may take the one-pass first group: a tolerance and no caps.

    Example:
        >>> sample_applies(1e-6, [None, None]), sample_applies(1e-6, [4, None])
        (True, False)
    """
    return bool(eps) and all(c is None for c in caps)
