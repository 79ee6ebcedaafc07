"""The TT-SVD sweep over a source: thick groups of bonds from both ends, the middle in memory.

One *level* of the sweep over a tensor with modes ``(n_1, ..., n_p)``:

1. **Left group.** One pass computes the Gram of the unfolding whose rows are the first
   modes ``n_1 ... n_k`` (at least ``Context.width`` rows: "thick boundary modes",
   Röhrig-Zöllner, Thies, Basermann 2022). Bonds ``1..k`` are all decided from it in
   memory (:mod:`ttnet._bonds`); the data is projected at the bond that shrinks it most.
2. **Projection pass.** ``Y = F^H C`` for that bond's frame ``F``. Fused into the same
   pass: the Gram of ``Y``'s right unfolding (the right group's summary) and, where the
   Gram could neither certify a rank nor give its error to a few percent, the exact squared
   residual ``||C - F Y||^2``. ``Y`` is kept when it fits ``Context.keep_bytes``, else
   recomputed from the data whenever it is read.
3. **Right group.** Decided from that Gram (the trailing modes read backwards form a left
   group); one pass over ``Y`` projects it, ``Z = Y_R W``, with its residual where needed.
4. **Middle.** ``Z`` is small; the same level runs on it in memory, recursively.

When a measured residual exceeds what the bonds may discard (the Gram could not see
singular values that mattered), the group is decided again from a more accurate summary —
the Gram accumulated in float64 for lower-precision data, then the ``R`` factor of a TSQR
(backward stable) — and projected again. All bond errors are orthogonal projections', so
their squares add up and the reported error is exact (measured, or from spectra known to a
few percent). Tensors without a wide unfolding (tall, tiny) take the textbook sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from ttnet import ranks as rank_rules
from ttnet._backend import conj_t, svd, to_numpy
from ttnet._bonds import Group, decide_factor, decide_gram
from ttnet._kernels import Gram, Project, ProjectRight, RFactor, stack_r
from ttnet._sources import LocalSource, MappedSource

__all__ = [
    "Context",
    "Level",
    "Side",
    "as_work",
    "check_group",
    "dense_sweep",
    "gram_bounds",
    "plan_group",
    "project_left",
    "rejected",
    "summary_gram",
    "sweep",
]

Array = Any


@dataclass(frozen=True)
class Context:
    """Settings of one decomposition: the per-bond budget ``tau_sq`` (squared, in the
    units of the data the sweep sees), the working dtype of projections and cores, the
    summaries tried in turn (Gram dtypes, then ``"r"``), the bytes a kept projection may
    take, the target rows of a group's unfolding and the input's name."""

    tau_sq: float
    work: Any
    tiers: tuple[Any, ...]
    keep_bytes: int
    width: int
    name: str = "tensor"


@dataclass
class Level:
    """Cores (working dtype, the source's library), the squared norm discarded and the
    index of the core that carries the norm (all others are orthonormal frames)."""

    cores: list[Array]
    discarded: float
    carry: int


def plan_group(modes: Sequence[int], width: int) -> int:
    """How many leading ``modes`` form a group: the fewest whose product reaches
    ``width``, while the unfolding stays wide (at least twice as many columns as rows)
    and has at most ``4 * width`` rows, leaving at least one mode out; 0 if none.

    Example:
        >>> plan_group((4,) * 6, 16), plan_group((100, 2, 2), 16)
        (2, 0)
    """
    size = math.prod(modes)
    rows, best = 1, 0
    for k in range(1, len(modes)):
        rows *= modes[k - 1]
        if rows > 4 * width or size // rows < 2 * rows:
            break
        best = k
        if rows >= width:
            break
    return best


def _unit(dtype: Any, xp: Any) -> float:
    return float(xp.finfo(dtype).eps) / 2


def _source_rows(src: Any) -> int:
    """Rows of a source's thinnest slabs (a projected tensor's: its rank)."""
    return src.rows if isinstance(src, MappedSource) else 1


def summary_gram(src: Any, rows: int, group: int, dtype: Any, ctx: Context) -> tuple:
    """``(G, resolution, noise)``: the Gram (numpy) of the ``(rows, ...)`` unfolding's rows
    (``group`` 0) or of its right unfolding's ``group`` columns, with the bound on its
    rounding error and its noise level (see :func:`ttnet._bonds.decide_gram`)."""
    (g,) = src.run(rows, max(group, 1), Gram(dtype, group, ctx.name), desc="tt_svd: Gram")
    g = to_numpy(g)
    stats = src.slab_stats(rows, max(group, 1))
    return (g, *gram_bounds(stats, rows, group, g, dtype, src.xp))


def gram_bounds(stats: tuple[int, int], rows: int, group: int, g: np.ndarray, dtype: Any,
                 xp: Any) -> tuple[float, float]:
    """Rounding bound (Frobenius) and noise floor of a Gram summed slab by slab: each slab's
    entries are sums of ``terms`` products in ``dtype``, and the slabs' Grams are summed in
    float64, so ``|dG| <= (gamma_terms + count u_64) |C| |C|^H`` entrywise."""
    width, count = stats
    terms = rows * width // group if group else width  # per slab, in ``dtype``
    u = _unit(dtype, xp)
    gamma = terms * u / max(1.0 - terms * u, 1e-3) + count * _unit(xp.float64, xp)
    trace = float(np.trace(g).real)
    m = int(g.shape[0])
    # noise floor: the slabs' rounding errors are independent, sqrt(terms) u each
    return (gamma + 4 * m * u) * trace, u * math.sqrt(terms / count) * trace


def _summary(src: Any, rows: int, group: int, tier: Any, ctx: Context) -> tuple:
    """A tier's summary of the rows (``group`` 0) or right unfolding of ``src``."""
    if tier != "r":
        return summary_gram(src, rows, group, tier, ctx)
    (r,) = src.run(rows, max(group, 1), RFactor(ctx.work, group), stack_r,
                   desc="tt_svd: TSQR")
    # left: C^H = Q R, so C C^H = R^H R; right (mirrored): conj(Y^H Y) = R^T conj(R)
    return (to_numpy(r).T if group else to_numpy(conj_t(r)),)


def _decide(summary: tuple, tier: Any, modes: Sequence[int], caps: Sequence[int | None],
            ctx: Context) -> Group:
    if tier == "r":
        return decide_factor(summary[0], modes, ctx.tau_sq, caps)
    g, resolution, noise = summary
    return decide_gram(g, modes, ctx.tau_sq, caps, resolution, noise)


def _norm_sq(summary: tuple, tier: Any) -> float:
    m = summary[0]
    return float(np.sum(np.abs(m) ** 2)) if tier == "r" else float(np.trace(m).real)


def _mirror(a: np.ndarray, modes: Sequence[int], both: bool) -> np.ndarray:
    """Reverse the row multi-index over ``modes`` (and the columns' when ``both``)."""
    k, m = len(modes), math.prod(modes)
    t = a.reshape(*modes, *(modes if both else (-1,)))
    axes = [*range(k - 1, -1, -1), *([2 * k - 1 - i for i in range(k)] if both else [k])]
    return np.transpose(t, axes).reshape(m, -1)


def check_group(group: Group, j: int, rows: int, norm_sq: float, ctx: Context,
           xp: Any) -> tuple[bool, float]:
    """Whether bonds ``1..j`` need their residual measured, and the residual's round-off."""
    floor_sq = (4 * rows * _unit(ctx.work, xp)) ** 2 * norm_sq
    slack, tails = sum(group.slack[:j]), sum(group.tails[:j])
    return any(group.unverified[:j]) or slack > max(0.05 * tails, floor_sq), floor_sq


def rejected(rho: float | None, group: Group, j: int, floor_sq: float) -> bool:
    return rho is not None and rho > sum(group.allowance[:j]) + floor_sq


def as_work(a: np.ndarray, src: Any, ctx: Context) -> Array:
    return src.xp.asarray(np.ascontiguousarray(a), dtype=ctx.work, device=src.device)


@dataclass
class Side:
    """Bonds decided at one end: their cores, the squared norm they discard, the rest of the
    tensor (a source) with its modes, and the Gram for the right group if already formed."""

    cores: list[Array]
    discarded: float
    source: Any
    modes: tuple[int, ...]
    right_gram: tuple | None = None


def sweep(src: Any, modes: Sequence[int], caps: Sequence[int | None], ctx: Context,
          first: tuple | None = None, left: Side | None = None) -> Level:
    """TT-SVD of the tensor of ``src`` with ``modes``; ``first`` is an already computed
    first-tier summary of the first group (the left one, or the right one if none), ``left``
    an already decided and projected left group."""
    modes = tuple(int(n) for n in modes)
    p = len(modes)
    if p == 1:
        return Level([src.xp.reshape(src.dense(), (1, modes[0], 1))], 0.0, 0)
    k_left = plan_group(modes, ctx.width)
    if not k_left and not plan_group(modes[::-1], ctx.width):
        return dense_sweep(src.dense(), modes, caps, ctx)
    if left is None and k_left:
        left, first = _left(src, modes, k_left, caps, ctx, first), None
    elif left is None:
        left = Side([], 0.0, src, modes)
    cores, ymodes = left.cores, left.modes
    if len(ymodes) == 1:  # the left group reached the last bond
        rank = int(cores[-1].shape[2])
        core = src.xp.reshape(left.source.dense(), (rank, modes[-1], 1))
        return Level([*cores, core], left.discarded, len(cores))
    k_right = plan_group(ymodes[::-1], ctx.width)
    if k_right:
        gram = left.right_gram if left.right_gram is not None else first
        right = _right(left.source, ymodes, k_right, caps[p - 1 - k_right :], ctx, gram)
    else:
        right = Side([], 0.0, left.source, ymodes)
    middle = sweep(right.source, right.modes, caps[len(cores) : p - 1 - len(right.cores)], ctx)
    inner = list(middle.cores)
    if cores:  # split the carried ranks back out of the first and last middle modes
        r0, n, r1 = (int(s) for s in inner[0].shape)
        rank = int(cores[-1].shape[2])
        inner[0] = src.xp.reshape(inner[0], (rank, n // rank, r1))
    if right.cores:
        r0, n, r1 = (int(s) for s in inner[-1].shape)
        rank = int(right.cores[0].shape[0])
        inner[-1] = src.xp.reshape(inner[-1], (r0, n // rank, rank))
    discarded = left.discarded + right.discarded + middle.discarded
    return Level([*cores, *inner, *right.cores], discarded, len(cores) + middle.carry)


def _left(src: Any, modes: tuple[int, ...], k: int, caps: Sequence[int | None], ctx: Context,
          first: tuple | None) -> Side:
    """Decide bonds ``1..k`` from one summary and project at the best of them."""
    rows_k, tier = math.prod(modes[:k]), 0
    summary = first if first is not None else _summary(src, rows_k, 0, ctx.tiers[0], ctx)
    while True:
        group = _decide(summary, ctx.tiers[tier], modes[:k], caps[:k], ctx)
        j = group.best_split() or k
        rows, rank = math.prod(modes[:j]), group.ranks[j - 1]
        if rank == rows:  # every bond full: identity frames, nothing to project
            cores = [as_work(c, src, ctx) for c in group.cores[:j]]
            return Side(cores, 0.0, src, (rank * modes[j], *modes[j + 1 :]))
        measure, floor_sq = check_group(group, j, rows, _norm_sq(summary, ctx.tiers[tier]), ctx,
                                   src.xp)
        side, rho, _ = project_left(src, modes, group, j, ctx, measure)
        if rejected(rho, group, j, floor_sq) and tier + 1 < len(ctx.tiers):
            tier += 1
            summary = _summary(src, rows_k, 0, ctx.tiers[tier], ctx)
            continue
        side.discarded = rho if measure else sum(group.tails[:j])
        return side


def project_left(src: Any, modes: tuple[int, ...], group: Group, j: int, ctx: Context,
                 residual: bool, norm: bool = False) -> tuple[Side, float | None, float | None]:
    """One pass projecting the data onto the frame of bonds ``1..j`` of ``group``: the rest
    as a new source (kept in memory if it fits), the right group's Gram, and optionally the
    exact squared residual and the projection's squared norm."""
    rows, rank = math.prod(modes[:j]), group.ranks[j - 1]
    ymodes = (rank * modes[j], *modes[j + 1 :])
    k_right = plan_group(ymodes[::-1], ctx.width)
    cols = math.prod(ymodes[len(ymodes) - k_right :]) if k_right else 0
    f = as_work(group.frame(j), src, ctx)
    keep = src.size // rows * rank * src.itemsize <= ctx.keep_bytes
    out = (src.xp.empty((rank, src.size // rows), dtype=ctx.work, device=src.device)
           if keep else None)
    project = Project(conj_t(f), f, residual, cols, ctx.tiers[0], keep, norm)
    parts = list(src.run(rows, max(cols, 1), project, out=out, desc="tt_svd: project"))
    rho = parts.pop(0) if residual else None
    ysq = parts.pop(0) if norm else None
    if keep:
        ysrc = LocalSource(out, progress=getattr(src, "progress", False), name=ctx.name)
    else:
        ysrc = MappedSource(src, Project(conj_t(f), f), rows)
    gram = None
    if cols:
        g = to_numpy(parts.pop(0))
        gram = (g, *gram_bounds(src.slab_stats(rows, cols), rank, cols, g, ctx.tiers[0], src.xp))
    cores = [as_work(c, src, ctx) for c in group.cores[:j]]
    return Side(cores, 0.0, ysrc, ymodes, gram), rho, ysq


def _right(src: Any, modes: tuple[int, ...], k: int, caps: Sequence[int | None], ctx: Context,
           gram: tuple | None) -> Side:
    """Decide the last ``k`` bonds (mirrored) from one summary and project at the best."""
    tail, q = modes[len(modes) - k :], len(modes)
    rows_src, tier = _source_rows(src), 0
    summary = gram if gram is not None else _summary(src, rows_src, math.prod(tail),
                                                     ctx.tiers[0], ctx)
    while True:
        if ctx.tiers[tier] == "r":
            mirrored = (_mirror(summary[0], tail, both=False),)
        else:
            mirrored = (_mirror(summary[0].conj(), tail, both=True), *summary[1:])
        group = _decide(mirrored, ctx.tiers[tier], tail[::-1], caps[::-1], ctx)
        j = group.best_split() or k
        cols, rank = math.prod(tail[k - j :]), group.ranks[j - 1]
        zmodes = (*modes[: q - j - 1], modes[q - j - 1] * rank)
        if rank == cols:  # every bond full: identity frames (in the modes' own order)
            sizes = [math.prod(tail[t:]) for t in range(k - j, k + 1)]
            cores = [as_work(np.eye(sizes[t]).reshape(sizes[t], n, sizes[t + 1]), src, ctx)
                     for t, n in enumerate(tail[k - j :])]
            return Side(cores, 0.0, src, zmodes)
        cores = [src.xp.permute_dims(as_work(c, src, ctx), (2, 1, 0)) for c in group.cores[:j]]
        cores.reverse()
        measure, floor_sq = check_group(group, j, cols, _norm_sq(summary, ctx.tiers[tier]), ctx,
                                   src.xp)
        frame = _mirror(group.frame(j), tail[k - j :][::-1], both=False)
        w = as_work(frame.conj(), src, ctx)
        out = src.xp.empty((rows_src, src.size // rows_src // cols * rank), dtype=ctx.work,
                           device=src.device)
        parts = src.run(rows_src, cols, ProjectRight(w, measure), out=out,
                        desc="tt_svd: project")
        rho = parts[0] if measure else None
        if rejected(rho, group, j, floor_sq) and tier + 1 < len(ctx.tiers):
            tier += 1
            summary = _summary(src, rows_src, math.prod(tail), ctx.tiers[tier], ctx)
            continue
        discarded = rho if measure else sum(group.tails[:j])
        return Side(cores, discarded, LocalSource(out, name=ctx.name), zmodes)


def dense_sweep(a: Array, modes: Sequence[int], caps: Sequence[int | None],
                ctx: Context) -> Level:
    """The textbook left-to-right sweep with SVDs (tensors without a wide unfolding)."""
    xp = array_api_compat.array_namespace(a)
    c = xp.astype(a, ctx.work) if a.dtype != ctx.work else a
    cores, discarded, rank = [], 0.0, 1
    threshold = math.sqrt(ctx.tau_sq)
    for k, n in enumerate(modes[:-1]):
        u, s, vh = svd(xp.reshape(c, (rank * n, -1)))
        s_np = to_numpy(s)
        new = rank_rules.truncation_rank(s_np, threshold, caps[k])
        discarded += rank_rules.tail_norm(s_np, new) ** 2
        cores.append(xp.reshape(u[:, :new], (rank, n, new)))
        c = xp.astype(s[:new, None], vh.dtype) * vh[:new, :]
        rank = new
    cores.append(xp.reshape(c, (rank, modes[-1], 1)))
    return Level(cores, discarded, len(cores) - 1)
