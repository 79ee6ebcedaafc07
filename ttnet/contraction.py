"""Functional TT contractions on raw core lists, with cached contraction paths.

Cores are plain arrays (numpy arrays, torch tensors or ``nn.Parameter``; autograd flows):
TT-tensor cores ``(r_{k-1}, n_k, r_k)`` and TT-matrix cores ``(r_{k-1}, m_k, n_k, r_k)``,
``r_0 = r_d = 1``; a TT matrix is ``W`` of shape ``(M, N) = (prod m_k, prod n_k)``.

- :func:`tt_full` and :func:`ttm_dense` reconstruct the full array core by core (one matrix
  product per core, left to right, which is the cheapest order for a chain that starts and ends
  at rank 1).
- :func:`ttm_matvec` (``x @ W.T``) and :func:`ttm_rmatvec` (``x @ W``) flatten the leading axes
  of ``x`` into ``rows`` and, per ``(core shapes, rows)``, choose once between contracting ``x``
  with the cores along the cheapest ``opt_einsum`` path and building ``W`` then one matrix
  product by FLOPs (dense cost = cost of building ``W`` + ``2 * rows * M * N``; the TT network
  must be :data:`TT_FLOP_FACTOR` = 1.5 times cheaper to be chosen). The choice, the path and
  the compiled pairwise steps (``tensordot`` calls whose axis bookkeeping is done once; the big
  input is never transposed) are kept in an LRU cache, so repeated calls do no path search;
  :func:`contraction_info` shows the choice and its FLOPs.

FLOPs count a multiply-add as 2, as ``opt_einsum`` does. The contractions run in the dtype of the
inputs (no up-casting): torch ``bfloat16`` uses torch's bf16 matrix products (float32 accumulation
inside each product, bf16 between steps); pass float32 cores and inputs for float32 throughout.
Torch needs cores and ``x`` of one dtype; numpy promotes as usual.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import opt_einsum

__all__ = [
    "ContractionInfo",
    "contraction_info",
    "tt_full",
    "ttm_dense",
    "ttm_matvec",
    "ttm_rmatvec",
]

#: The TT network is chosen only when it needs ``TT_FLOP_FACTOR`` times fewer FLOPs than the dense
#: route: its small, memory-bound contractions run slower per FLOP than one large matrix product.
TT_FLOP_FACTOR = 1.5

#: Path optimiser handed to ``opt_einsum`` (``"auto-hq"``: exhaustive/dynamic programming for
#: the small networks that TT matrices make).
PATH_OPTIMIZER = "auto-hq"


@dataclass(frozen=True)
class ContractionInfo:
    """How a TT-matrix product with ``rows`` input rows is evaluated (cached per shape).

    Attributes:
        kind: ``"matvec"`` (``x @ W.T``) or ``"rmatvec"`` (``x @ W``).
        rows: Number of rows of ``x`` after flattening its leading axes.
        strategy: ``"tt"`` (contract ``x`` with the cores) or ``"dense"`` (build ``W``, then one
            matrix product).
        equation: The einsum equation of the TT network (``x`` first, then the cores).
        path: The pairwise contraction order chosen by ``opt_einsum`` for these sizes.
        tt_flops: FLOPs of the TT network along ``path``.
        build_flops: FLOPs of building the dense ``W`` from the cores.
        dense_flops: ``build_flops + 2 * rows * M * N``.

    Example:
        >>> import numpy as np
        >>> cores = [np.ones((1, 8, 8, 4)), np.ones((4, 8, 8, 1))]
        >>> info = contraction_info(cores, rows=2)
        >>> info.strategy, info.tt_flops < info.dense_flops
        ('tt', True)
    """

    kind: str
    rows: int
    strategy: str
    equation: str
    path: tuple[tuple[int, ...], ...]
    tt_flops: int
    build_flops: int
    dense_flops: int
    in_modes: tuple[int, ...] = field(repr=False, default=())
    out_size: int = field(repr=False, default=0)
    expression: Any = field(repr=False, compare=False, default=None)
    steps: tuple[Any, ...] = field(repr=False, compare=False, default=((), None))

    @property
    def in_size(self) -> int:
        """Length of the last axis of ``x`` (``N`` for matvec, ``M`` for rmatvec).

        Example:
            >>> import numpy as np
            >>> contraction_info([np.ones((1, 2, 3, 1))], rows=4).in_size
            3
        """
        return math.prod(self.in_modes)

    @property
    def flops(self) -> int:
        """FLOPs of the chosen strategy.

        Example:
            >>> import numpy as np
            >>> contraction_info([np.ones((1, 2, 3, 1))], rows=4).flops
            48
        """
        return self.tt_flops if self.strategy == "tt" else self.dense_flops


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _permute(x: Any, axes: tuple[int, ...]) -> Any:
    return x.permute(axes) if _is_torch(x) else x.transpose(axes)


def _check_cores(cores: Sequence[Any], ndim: int) -> tuple[tuple[int, ...], ...]:
    """Shapes of ``cores`` after checking their number of axes and that the ranks chain."""
    if len(cores) == 0:
        raise ValueError("cores must be a non-empty sequence of arrays, got an empty sequence")
    shapes = tuple(tuple(int(s) for s in c.shape) for c in cores)
    for k, s in enumerate(shapes):
        if len(s) != ndim:
            raise ValueError(f"cores[{k}] must have {ndim} axes, got shape {s}")
    _check_chain(shapes)
    return shapes


def _check_chain(shapes: tuple[tuple[int, ...], ...]) -> None:
    if shapes[0][0] != 1 or shapes[-1][-1] != 1:
        raise ValueError(
            f"cores must start and end with rank 1, got first rank {shapes[0][0]} "
            f"and last rank {shapes[-1][-1]}"
        )
    for k in range(len(shapes) - 1):
        if shapes[k][-1] != shapes[k + 1][0]:
            raise ValueError(
                f"cores[{k}] and cores[{k + 1}] ranks do not chain: {shapes[k][-1]} != "
                f"{shapes[k + 1][0]} (shapes {shapes[k]} and {shapes[k + 1]})"
            )
    for k, s in enumerate(shapes):
        if any(n < 1 for n in s):
            raise ValueError(f"cores[{k}] must have no empty axis, got shape {s}")


def tt_full(cores: Sequence[Any]) -> Any:
    """Contract TT-tensor cores ``(r_{k-1}, n_k, r_k)`` into the full tensor ``(n_1, ..., n_d)``.

    Args:
        cores: The TT cores (numpy arrays or torch tensors, one library and dtype).

    Returns:
        The full tensor, same library, dtype and device as the cores.

    Raises:
        ValueError: If a core is not 3-dimensional or the ranks do not chain.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> cores = [rng.random((1, 3, 2)), rng.random((2, 4, 2)), rng.random((2, 5, 1))]
        >>> full = tt_full(cores)
        >>> full.shape, bool(np.allclose(full, np.einsum("aib,bjc,cka->ijk", *cores)))
        ((3, 4, 5), True)
    """
    shapes = _check_cores(cores, 3)
    res = cores[0].reshape((shapes[0][1], shapes[0][2]))
    for core, (r, n, r2) in zip(cores[1:], shapes[1:]):
        res = (res @ core.reshape((r, n * r2))).reshape((-1, r2))
    return res.reshape(tuple(s[1] for s in shapes))


def ttm_dense(cores: Sequence[Any]) -> Any:
    """Contract TT-matrix cores ``(r_{k-1}, m_k, n_k, r_k)`` into the dense ``W`` ``(M, N)``.

    Args:
        cores: The TT-matrix cores (numpy arrays or torch tensors, one library and dtype).

    Returns:
        ``W`` with ``M = prod(m_k)`` rows and ``N = prod(n_k)`` columns (row-major multi-indices).

    Raises:
        ValueError: If a core is not 4-dimensional or the ranks do not chain.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> cores = [rng.random((1, 2, 3, 2)), rng.random((2, 4, 5, 1))]
        >>> w = ttm_dense(cores)
        >>> ref = np.einsum("aijb,bklc->ikjl", *cores).reshape(8, 15)
        >>> w.shape, bool(np.allclose(w, ref))
        ((8, 15), True)
    """
    shapes = _check_cores(cores, 4)
    return _dense(cores, shapes)


def _dense(cores: Sequence[Any], shapes: tuple[tuple[int, ...], ...]) -> Any:
    d = len(shapes)
    _, m1, n1, r1 = shapes[0]
    res = cores[0].reshape((m1 * n1, r1))
    for core, (r, m, n, r2) in zip(cores[1:], shapes[1:]):
        res = (res @ core.reshape((r, m * n * r2))).reshape((-1, r2))
    rows = math.prod(s[1] for s in shapes)
    cols = math.prod(s[2] for s in shapes)
    if d == 1:
        return res.reshape((rows, cols))
    res = res.reshape(tuple(x for s in shapes for x in s[1:3]))
    res = _permute(res, tuple(range(0, 2 * d, 2)) + tuple(range(1, 2 * d, 2)))
    return res.reshape((rows, cols))


def _build_flops(shapes: tuple[tuple[int, ...], ...]) -> int:
    total, prefix = 0, shapes[0][1] * shapes[0][2]
    for r, m, n, r2 in shapes[1:]:
        total += 2 * prefix * r * m * n * r2
        prefix *= m * n
    return total


@lru_cache(maxsize=1024)
def _plan(kind: str, shapes: tuple[tuple[int, ...], ...], rows: int) -> ContractionInfo:
    """Path search and strategy choice for one ``(kind, core shapes, rows)``; cached."""
    if not shapes:
        raise ValueError("cores must be a non-empty sequence of arrays, got an empty sequence")
    for k, s in enumerate(shapes):
        if len(s) != 4:
            raise ValueError(f"cores[{k}] must have 4 axes (r, m, n, r'), got shape {s}")
    _check_chain(shapes)
    d = len(shapes)
    sym = opt_einsum.get_symbol
    # symbols: 0 batch, 1..d rows m_k, d+1..2d cols n_k, 2d+1.. inner ranks; r_0 and r_d share one
    batch = sym(0)
    m = [sym(1 + k) for k in range(d)]
    n = [sym(1 + d + k) for k in range(d)]
    r = [sym(1 + 2 * d + k) for k in range(d)]
    r.append(r[0])
    core_terms = [f"{r[k]}{m[k]}{n[k]}{r[k + 1]}" for k in range(d)]
    m_sizes = tuple(s[1] for s in shapes)
    n_sizes = tuple(s[2] for s in shapes)
    if kind == "matvec":
        x_term, out_term, x_modes, out_modes = n, m, n_sizes, m_sizes
    else:
        x_term, out_term, x_modes, out_modes = m, n, m_sizes, n_sizes
    equation = f"{batch}{''.join(x_term)},{','.join(core_terms)}->{batch}{''.join(out_term)}"
    build = _build_flops(shapes)
    dense = build + 2 * rows * math.prod(m_sizes) * math.prod(n_sizes)
    fields = {"in_modes": x_modes, "out_size": math.prod(out_modes)}
    if d == 1:  # a single core is W itself
        return ContractionInfo(kind, rows, "dense", equation, (), dense, build, dense, **fields)
    x_shape = (max(rows, 1), *x_modes)
    path, info = opt_einsum.contract_path(
        equation, x_shape, *shapes, shapes=True, optimize=PATH_OPTIMIZER
    )
    tt = int(info.opt_cost)
    strategy = "tt" if TT_FLOP_FACTOR * tt < dense and rows > 0 else "dense"
    expression = None
    steps: Any = ((), None)
    if strategy == "tt":
        expression = opt_einsum.contract_expression(equation, x_shape, *shapes, optimize=path)
        inputs, output = equation.split("->")
        terms = inputs.split(",")
        sizes = {c: n for t, shp in zip(terms, (x_shape, *shapes)) for c, n in zip(t, shp)}
        steps = _compile_steps(path, terms, output, sizes)
    path = tuple(tuple(step) for step in path)
    return ContractionInfo(
        kind, rows, strategy, equation, path, tt, build, dense, **fields,
        expression=expression, steps=steps,
    )


def _compile_steps(
    path: Any, terms: list[str], output: str, sizes: dict[str, int]
) -> tuple[tuple[Any, ...], tuple[int, ...] | None]:
    """Pairwise steps ``(positions, tensordot axes or None, swap, einsum)`` and a final permutation.

    Follows ``path`` like ``opt_einsum``'s executor, with two differences that matter for speed:
    the index strings are worked out once here, and each intermediate keeps the axis order that
    ``tensordot`` produces (no permutation between steps). The larger operand goes on the left
    with its contracted axes in its own order, so the big input is never transposed.
    """
    terms = list(terms)
    steps = []
    for inds in path:
        picked = [terms[i] for i in inds]
        for i in sorted(inds, reverse=True):
            del terms[i]
        needed = set(output).union(*terms)
        if len(picked) == 2:
            left, right = sorted(picked, key=lambda t: -math.prod(sizes[c] for c in t))
            shared = set(left) & set(right)
            if not shared & needed:
                contracted = [c for c in left if c in shared]
                axes = (
                    tuple(left.index(c) for c in contracted),
                    tuple(right.index(c) for c in contracted),
                )
                result = "".join(c for c in left + right if c not in shared)
                swap = left != picked[0]
                steps.append((tuple(inds), axes, swap, ""))
                terms.append(result)
                continue
        kept = "".join(dict.fromkeys(c for t in picked for c in t if c in needed))
        steps.append((tuple(inds), None, False, f"{','.join(picked)}->{kept}"))
        terms.append(kept)
    (final,) = terms
    perm = None if final == output else tuple(final.index(c) for c in output)
    return tuple(steps), perm


def _run(steps: tuple[Any, ...], perm: tuple[int, ...] | None, operands: list[Any]) -> Any:
    if _is_torch(operands[0]):
        lib = sys.modules["torch"]
        tensordot = lambda a, b, axes: lib.tensordot(a, b, dims=axes)  # noqa: E731
    else:
        lib, tensordot = np, np.tensordot
    for inds, axes, swap, eq in steps:
        args = [operands[i] for i in inds]
        for i in sorted(inds, reverse=True):
            del operands[i]
        if axes is None:
            operands.append(lib.einsum(eq, *args))
        else:
            a, b = (args[1], args[0]) if swap else args
            operands.append(tensordot(a, b, axes))
    out = operands[0]
    return out if perm is None else _permute(out, perm)


def contraction_info(cores: Sequence[Any], rows: int, *, kind: str = "matvec") -> ContractionInfo:
    """The strategy, path and FLOPs that :func:`ttm_matvec` / :func:`ttm_rmatvec` use for ``rows``.

    Args:
        cores: TT-matrix cores ``(r_{k-1}, m_k, n_k, r_k)`` (only their shapes are read).
        rows: Number of rows of the input after flattening its leading axes, ``>= 0``.
        kind: ``"matvec"`` (``x @ W.T``) or ``"rmatvec"`` (``x @ W``).

    Returns:
        The cached :class:`ContractionInfo`.

    Raises:
        ValueError: If ``rows`` or ``kind`` is invalid, or the core shapes do not chain.

    Example:
        >>> import numpy as np
        >>> cores = [np.ones((1, 8, 8, 8))] + [np.ones((8, 8, 8, 8))] * 2 + [np.ones((8, 8, 8, 1))]
        >>> contraction_info(cores, 8).strategy, contraction_info(cores, 8192).strategy
        ('tt', 'tt')
        >>> contraction_info(cores, 64).tt_flops < contraction_info(cores, 64).dense_flops
        True
    """
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows must be an integer >= 0, got {rows!r}")
    if kind not in ("matvec", "rmatvec"):
        raise ValueError(f"kind must be 'matvec' or 'rmatvec', got {kind!r}")
    return _plan(kind, _check_cores(cores, 4), rows)


def _apply(kind: str, cores: Sequence[Any], x: Any) -> Any:
    shapes = tuple(tuple(c.shape) for c in cores)
    x_shape = tuple(x.shape)
    lead = x_shape[:-1]
    rows = math.prod(lead)
    plan = _plan(kind, shapes, rows)
    if not x_shape or x_shape[-1] != plan.in_size:
        raise ValueError(f"x must have shape (..., {plan.in_size}), got {x_shape}")
    if plan.strategy == "dense":
        w = _dense(cores, shapes)
        y = x.reshape((rows, plan.in_size)) @ (_permute(w, (1, 0)) if kind == "matvec" else w)
    else:
        xr = x.reshape((rows, *plan.in_modes))
        if _is_torch(xr) or isinstance(xr, np.ndarray):
            y = _run(*plan.steps, [xr, *cores])
        else:  # other array libraries: opt_einsum's own executor
            y = plan.expression(xr, *cores)
    return y.reshape((*lead, plan.out_size))


def ttm_matvec(cores: Sequence[Any], x: Any) -> Any:
    """``x @ W.T`` for a TT matrix ``W`` (``M x N``): ``x`` of shape ``(..., N)`` -> ``(..., M)``.

    What a linear layer ``out x in`` needs. The leading axes of ``x`` are flattened into
    ``rows``; the cheaper of the TT network and "dense ``W`` then matmul" is used (cached per
    core shapes and ``rows``, see :func:`contraction_info`).

    Args:
        cores: TT-matrix cores ``(r_{k-1}, m_k, n_k, r_k)``.
        x: Input of shape ``(..., N)``, same library (and for torch, dtype) as the cores.

    Returns:
        Array of shape ``(..., M)``.

    Raises:
        ValueError: If ``x``'s last axis is not ``N`` or the cores do not chain.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> cores = [rng.random((1, 2, 3, 2)), rng.random((2, 4, 5, 1))]
        >>> x = rng.random((7, 15))
        >>> y = ttm_matvec(cores, x)
        >>> y.shape, bool(np.allclose(y, x @ ttm_dense(cores).T))
        ((7, 8), True)
    """
    return _apply("matvec", cores, x)


def ttm_rmatvec(cores: Sequence[Any], x: Any) -> Any:
    """``x @ W`` for a TT matrix ``W`` (``M x N``): ``x`` of shape ``(..., M)`` -> ``(..., N)``.

    Same strategy choice and caching as :func:`ttm_matvec` (``kind="rmatvec"``).

    Args:
        cores: TT-matrix cores ``(r_{k-1}, m_k, n_k, r_k)``.
        x: Input of shape ``(..., M)``.

    Returns:
        Array of shape ``(..., N)``.

    Raises:
        ValueError: If ``x``'s last axis is not ``M`` or the cores do not chain.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> cores = [rng.random((1, 2, 3, 2)), rng.random((2, 4, 5, 1))]
        >>> x = rng.random((2, 3, 8))
        >>> y = ttm_rmatvec(cores, x)
        >>> y.shape, bool(np.allclose(y, x @ ttm_dense(cores)))
        ((2, 3, 15), True)
    """
    return _apply("rmatvec", cores, x)
