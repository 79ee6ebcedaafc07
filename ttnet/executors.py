"""Executors: the three ways a planned TT-matrix product runs.

- ``"steps"``: the TT network along the cached ``opt_einsum`` path as precompiled pairwise
  ``tensordot`` steps (:func:`compile_steps`, :func:`run_steps`). Follows the path like
  ``opt_einsum``'s own executor, with two differences that matter for speed: the index strings
  are worked out once, and each intermediate keeps the axis order that ``tensordot`` produces
  (no permutation between steps). The larger operand goes on the left with its contracted axes
  in its own order, so the big input is copied only where ``tensordot`` cannot view it as a
  matrix (and :func:`compile_steps` counts that copy in the route's :class:`~ttnet.cost.Cost`).
- ``"einsum"``: the same network as one einsum call with the cached path, where the array
  library offers that (torch: ``torch._VF.einsum(..., path=...)``, what ``torch.einsum`` runs
  after its own path search). Elsewhere, and under ``torch.compile``, the steps run instead.
- ``"dense"``: build ``W`` from the cores (:mod:`ttnet.dense`) and one matrix product. Torch
  runs it as one autograd node whose backward is written out (two matrix products per core).

The array library's operations come from the backend door, :func:`ttnet._backend.array_ops`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ttnet._backend import array_ops
from ttnet.cost import NARROW_WIDTH, NO_COST, Cost, copy_cost, matmul_cost

Array = Any
#: One pairwise step: (operand positions, tensordot axes or None, swap the two, einsum equation).
Step = tuple[tuple[int, ...], Any, bool, str]


def mergeable(term: str, groups: Sequence[str], sizes: dict[str, int]) -> bool:
    """Whether a contiguous array indexed by ``term`` reshapes to ``groups`` without a copy.

    True when, ignoring axes of length 1, the axes of each group are adjacent in ``term`` and in
    the same order (``reshape`` of the permuted view is then a view).

    Example:
        >>> sizes = {"a": 64, "b": 8, "c": 8, "d": 8}
        >>> mergeable("abcd", ("ab", "cd"), sizes), mergeable("abcd", ("acd", "b"), sizes)
        (True, False)
        >>> mergeable("abcd", ("acd", "b"), {**sizes, "c": 1, "d": 1})
        True
    """
    position = {c: i for i, c in enumerate(c for c in term if sizes[c] > 1)}
    for group in groups:
        places = [position[c] for c in group if sizes[c] > 1]
        if places and places != list(range(places[0], places[0] + len(places))):
            return False
    return True


def compile_steps(
    path: Any, terms: list[str], output: str, sizes: dict[str, int]
) -> tuple[tuple[tuple[Step, ...], tuple[int, ...] | None], Cost]:
    """Pairwise steps and the final permutation for ``path``, and the :class:`Cost` of them.

    Example:
        >>> sizes = {"a": 4, "b": 3, "c": 2}
        >>> (steps, perm), cost = compile_steps([(0, 1)], ["ab", "bc"], "ac", sizes)
        >>> steps, perm, cost.flops
        ((((0, 1), ((1,), (0,)), False, ''),), None, 48)
    """
    terms = list(terms)
    steps: list[Step] = []
    cost = NO_COST

    def size(term: str) -> int:
        return math.prod(sizes[c] for c in term)

    for inds in path:
        picked = [terms[i] for i in inds]
        for i in sorted(inds, reverse=True):
            del terms[i]
        needed = set(output).union(*terms)
        if len(picked) == 2:
            left, right = sorted(picked, key=lambda t: -size(t))
            shared = set(left) & set(right)
            if not shared & needed:
                contracted = "".join(c for c in left if c in shared)
                axes = (
                    tuple(left.index(c) for c in contracted),
                    tuple(right.index(c) for c in contracted),
                )
                steps.append((tuple(inds), axes, left != picked[0], ""))
                terms.append("".join(c for c in left + right if c not in shared))
                inner = size(contracted)
                cost += matmul_cost(size(left) // inner, inner, size(right) // inner)
                for term in (left, right):
                    free = "".join(c for c in term if c not in shared)
                    if not mergeable(term, (free, contracted), sizes):
                        cost += copy_cost(size(term))
                continue
        kept = "".join(dict.fromkeys(c for t in picked for c in t if c in needed))
        steps.append((tuple(inds), None, False, f"{','.join(picked)}->{kept}"))
        terms.append(kept)
        every = "".join(dict.fromkeys(c for t in picked for c in t))
        flops = 2 * size(every)  # einsum: a copy per operand, one product over all indices
        cost += Cost(flops, flops * NARROW_WIDTH, 2 * sum(map(size, picked)) + size(kept), 1)
    (final,) = terms
    perm = None if final == output else tuple(final.index(c) for c in output)
    if perm is not None and not mergeable(final, (output[:1], output[1:]), sizes):
        cost += copy_cost(size(final))
    return (tuple(steps), perm), cost


def run_steps(steps: tuple[Step, ...], perm: tuple[int, ...] | None, operands: list) -> Array:
    """Run compiled steps on ``operands`` (``x`` first, then the cores); consumes the list."""
    ops = array_ops(operands[0])
    for inds, axes, swap, equation in steps:
        args = [operands[i] for i in inds]
        for i in sorted(inds, reverse=True):
            del operands[i]
        if axes is None:
            operands.append(ops.einsum(equation, args))
        else:
            a, b = (args[1], args[0]) if swap else args
            operands.append(ops.tensordot(a, b, axes))
    out = operands[0]
    return out if perm is None else ops.permute(out, perm)
