"""From a source of dense data to TT cores with a guaranteed error: the policy around the sweep.

- **Precision.** float16/bfloat16 data is read as is and computed in float32 (slab by
  slab: no full-size copy); cores come back in the input dtype. The fast summaries are
  Grams in the working precision, then in float64 for lower-precision data, then TSQR
  ``R`` factors (:mod:`ttnet._sweep`).
- **Scale.** The first pass's Gram also gives ``||A||^2``. Where the data's squares would
  overflow or underflow (float64 beyond about ``1e77`` or below ``1e-77`` per entry on
  average, float32 beyond ``1e9`` / below ``1e-10``), every slab is multiplied by a
  power of two (exact) on the fly, so the ranks do not depend on the scale.
- **Budget.** Each of the ``d - 1`` bonds may discard ``eps**2 / (d - 1) * ||A||**2``
  (Oseledets 2011); a parameter budget is met by rounding afterwards, whose error is
  orthogonal to the sweep's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import array_api_compat
import numpy as np

from ttnet import ranks as rank_rules
from ttnet._backend import norm
from ttnet._kernels import MaxAbs, Scale, max_parts
from ttnet._sample import sample_applies, sample_left
from ttnet._sources import MappedSource
from ttnet._sweep import Context, dense_sweep, plan_group, summary_gram, sweep
from ttnet.rounding import round_cores

__all__ = ["decompose", "default_width"]

Array = Any

_HALF = ("float16", "bfloat16")


def default_width(caps: Sequence[int | None]) -> int:
    """Target rows of a group's unfolding: four times the largest rank cap, at least 16,
    at most 256; 64 without caps.

    Example:
        >>> default_width([16, 16]), default_width([None, 3]), default_width([2])
        (64, 64, 16)
    """
    if caps and all(c is not None for c in caps):
        return int(min(max(4 * max(caps), 16), 256))
    return 64


def _dtypes(xp: Any, dtype: Any) -> tuple[Any, tuple[Any, ...]]:
    """Working dtype and the summary tiers for data of ``dtype``."""
    name = str(dtype).rsplit(".", 1)[-1]
    if not xp.isdtype(dtype, ("real floating", "complex floating")) and name not in _HALF:
        return xp.float64, (xp.float64, "r")  # integer data (a memmap), converted per slab
    if name in _HALF or name == "float32":
        return xp.float32, (xp.float32, xp.float64, "r")
    if name == "complex64":
        return xp.complex64, (xp.complex64, xp.complex128, "r")
    return dtype, (dtype, "r")


def _fourth_root_range(xp: Any, dtype: Any) -> tuple[float, float]:
    info = xp.finfo(dtype)
    return float(info.smallest_normal) ** 0.25, float(info.max) ** 0.25


def decompose(
    src: Any,
    shape: Sequence[int],
    eps: float | None,
    max_rank: int | Sequence[int] | None,
    max_params: int | None,
    keep_bytes: int,
) -> tuple[list[Array], float]:
    """TT cores of the tensor of ``src`` (of ``shape``) and the relative error reached."""
    eps = rank_rules.check_eps(eps)
    max_params = rank_rules.check_max_params(max_params)
    shape = tuple(int(n) for n in shape)
    d = len(shape)
    caps = list(rank_rules.normalize_max_rank(max_rank, d - 1))
    if max_params is not None:
        budget_caps = rank_rules.budget_rank_caps(shape, max_params)
        caps = [b if c is None else min(c, b) for c, b in zip(caps, budget_caps)]
    xp = src.xp
    work, tiers = _dtypes(xp, src.dtype)
    ctx = Context(0.0, work, tiers, keep_bytes, default_width(caps), src.name)
    cores, discarded, norm_sq = _run(src, shape, eps, caps, ctx)
    if str(src.dtype).rsplit(".", 1)[-1] in _HALF:
        cores = [xp.astype(c, src.dtype) for c in cores]
    if norm_sq == 0.0:
        return cores, 0.0
    ranks = (1, *(int(c.shape[2]) for c in cores))
    if max_params is not None and rank_rules.count_params(shape, ranks) > max_params:
        # The rounding error is orthogonal to the sweep's (see ttnet.rounding).
        cores, rel = round_cores(cores, max_params=max_params)
        discarded += rel * rel * max(norm_sq - discarded, 0.0)
    return cores, min(math.sqrt(max(discarded, 0.0) / norm_sq), 1.0)


def _run(src: Any, shape: tuple[int, ...], eps: float | None, caps: list[int | None],
         ctx: Context) -> tuple[list[Array], float, float]:
    """Cores, discarded squared norm and squared norm (the last two in the units of the
    data the sweep saw: only their ratio matters)."""
    xp, d = src.xp, len(shape)
    k_left = plan_group(shape, ctx.width)
    k_right = 0 if k_left else plan_group(shape[::-1], ctx.width)
    if not k_left and not k_right:
        return _run_dense(src.dense(), shape, eps, caps, ctx)
    if k_left and sample_applies(eps, caps):
        attempt = sample_left(src, shape, k_left, eps**2 / (d - 1), ctx)
        if attempt is not None:
            side, src, norm_sq, scale = attempt
            ctx = replace(ctx, tau_sq=eps**2 / (d - 1) * norm_sq)
            return _finish(sweep(src, shape, caps, ctx, left=side), scale, norm_sq)
    rows, group = (math.prod(shape[:k_left]), 0) if k_left else (1, math.prod(shape[-k_right:]))
    first = summary_gram(src, rows, group, ctx.tiers[0], ctx)
    scale = _scale(first[0], src.size, ctx.tiers[0], ctx.work, xp)
    if scale is None:  # the squares overflowed or underflowed: find the magnitude first
        (top,) = src.run(1, 1, MaxAbs(), max_parts, desc="tt_svd: scale")
        if top == 0.0:
            zeros = [xp.zeros((1, n, 1), dtype=ctx.work, device=src.device) for n in shape]
            return zeros, 0.0, 0.0
        scale = 2.0 ** -math.floor(math.log2(top))
        src = MappedSource(src, Scale(scale))
        first = summary_gram(src, rows, group, ctx.tiers[0], ctx)
    elif scale != 1.0:
        src = MappedSource(src, Scale(scale))
        first = (first[0] * scale**2, first[1] * scale**2, first[2] * scale**2)
    norm_sq = float(np.trace(first[0]).real)
    ctx = replace(ctx, tau_sq=(eps or 0.0) ** 2 / (d - 1) * norm_sq)
    return _finish(sweep(src, shape, caps, ctx, first), scale, norm_sq)


def _finish(level: Any, scale: float, norm_sq: float) -> tuple[list[Array], float, float]:
    """The cores in the input's units (the norm-carrying core divided by the scale)."""
    cores = level.cores
    if scale != 1.0:
        cores[level.carry] = cores[level.carry] / scale
    return cores, level.discarded, norm_sq


def _scale(g: np.ndarray, size: int, gram_dtype: Any, work: Any, xp: Any) -> float | None:
    """1.0 for data of moderate magnitude, else a power of two bringing its root mean
    square to 1; ``None`` when the Gram itself over- or underflowed."""
    trace = float(np.trace(g).real)
    info = xp.finfo(gram_dtype)
    if not math.isfinite(trace) or not (
        float(info.smallest_normal) * 2.0**64 < trace < float(info.max) * 2.0**-64
    ):
        return None
    rms = math.sqrt(trace / size)
    low, high = _fourth_root_range(xp, work)
    return 1.0 if low <= rms <= high else 2.0 ** -round(math.log2(rms))


def _run_dense(a: Array, shape: tuple[int, ...], eps: float | None, caps: list[int | None],
               ctx: Context) -> tuple[list[Array], float, float]:
    """Tensors without a wide unfolding: the textbook sweep (after a finiteness check)."""
    xp = array_api_compat.array_namespace(a)
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{ctx.name}: expected finite values, got NaN or infinity")
    a = xp.astype(a, ctx.work) if a.dtype != ctx.work else a
    total = float(norm(a))
    scale = 1.0
    low, high = _fourth_root_range(xp, ctx.work)
    if total > 0.0 and not low**2 <= total <= high**2:
        scale = 2.0 ** -round(math.log2(total))
        a = a * scale
    norm_sq = (total * scale) ** 2
    ctx = replace(ctx, tau_sq=(eps or 0.0) ** 2 / max(len(shape) - 1, 1) * norm_sq)
    return _finish(dense_sweep(a, shape, caps, ctx), scale, norm_sq)
