"""Functional TT contractions on raw core lists, with cached contraction paths.

Cores are plain arrays (numpy arrays, torch tensors or ``nn.Parameter``; autograd flows):
TT-tensor cores ``(r_{k-1}, n_k, r_k)`` and TT-matrix cores ``(r_{k-1}, m_k, n_k, r_k)``,
``r_0 = r_d = 1``; a TT matrix is ``W`` of shape ``(M, N) = (prod m_k, prod n_k)``.

- :func:`tt_full` and :func:`ttm_dense` reconstruct the full array core by core (one matrix
  product per core, left to right, which is the cheapest order for a chain that starts and ends
  at rank 1).
- :func:`ttm_matvec` (``x @ W.T``) and :func:`ttm_rmatvec` (``x @ W``) flatten the leading axes
  of ``x`` into ``rows`` and, per ``(core shapes, rows)``, choose once between contracting ``x``
  with the cores along the cheapest ``opt_einsum`` path ("tt") and building ``W`` then one matrix
  product ("dense"), whichever the cost model below predicts to be faster. The choice, the path
  and the compiled pairwise steps (``tensordot`` calls whose axis bookkeeping is done once; the
  big input is never transposed without need) are kept in an LRU cache, so repeated calls do no
  path search; :func:`contraction_info` shows the choice, the FLOPs and the modelled times.
- Torch executor. A TT network whose modelled time is at least :data:`EINSUM_MIN_SECONDS` runs
  as one ``torch._VF.einsum(equation, operands, path=cached_path)`` call -- what ``torch.einsum``
  does after its own per-call ``opt_einsum`` path search, here with the cached path -- because
  its C++ pairwise steps (``bmm`` on permuted views) copy less in forward and backward than
  ``tensordot``: 4096x4096 TT rank 8 at 64 rows, forward+backward, 1 thread, about 10 % faster.
  Below the threshold the compiled ``tensordot`` steps win (einsum's fixed cost is about 0.1 ms:
  an adapter factor at 8 rows is 15-25 % slower through it). The steps are also used under
  ``torch.compile`` (dynamo cannot trace the private ``_VF`` call) and when that private API is
  missing or rejects ``path``. Numpy always runs the steps.

Cost model. FLOPs alone mislead: with many rows the TT network is a chain of thin products
(inner sizes ``n_k * r``, a few dozen) whose intermediates are as large as the input or larger,
so its time is set by memory traffic, while the dense route is one large, compute-bound matrix
product plus building a ``W`` that is tiny for adapter and LoRA factors. Each route is described
by a :class:`Cost` -- FLOPs, array elements read and written (operands, results and the copies
that ``tensordot``/``permute`` make, counted from the actual axis orders) and kernel calls -- and
its forward+backward time is modelled as ``SECONDS_PER_FLOP * narrow_flops + SECONDS_PER_ELEMENT
* elements + SECONDS_PER_CALL * calls``, where ``narrow_flops`` charges a matrix product whose
inner or output width is below :data:`NARROW_WIDTH` in proportion (a product ``(m, 768) @ (768,
5)`` runs at about 5/8 of the rate of ``(m, 768) @ (768, 8)`` per FLOP). The three constants are
least-squares fits (relative error) to measured forward+backward times of both routes on
adapter, LoRA and square TT layers from 8 to 4,096 rows (float32, torch, one CPU thread, on
the project's 2-core AVX-512 box); ``python benchmarks/bench_layers.py --calibrate`` measures
them again and prints the fit. Over the calibration set, picking by this model spent 4 % more
time than always picking the faster measured route (two runs); picking by FLOPs spent 19-34 %
more. Near-ties (within about 15 %) are where it errs, most at 4,096 rows of the paper layouts.

FLOPs count a multiply-add as 2, as ``opt_einsum`` does. The contractions run in the dtype of the
inputs (no up-casting): torch ``bfloat16`` uses torch's bf16 matrix products (float32 accumulation
inside each product, bf16 between steps); pass float32 cores and inputs for float32 throughout.
Torch needs cores and ``x`` of one dtype; numpy promotes as usual.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import opt_einsum

__all__ = [
    "ContractionInfo",
    "Cost",
    "contraction_info",
    "tt_full",
    "ttm_dense",
    "ttm_matvec",
    "ttm_rmatvec",
    "ttm_strategy",
]

#: Modelled seconds per (narrowness-weighted) FLOP of forward+backward; see :class:`Cost`.
SECONDS_PER_FLOP = 4.9e-11
#: Modelled seconds per array element (of any float dtype) read or written in forward+backward.
SECONDS_PER_ELEMENT = 1.37e-9
#: Vector width (float32 lanes) below which a matrix product's FLOPs count as more expensive.
NARROW_WIDTH = 8
#: Modelled fixed seconds per kernel call of the forward (Python, dispatch, autograd node).
SECONDS_PER_CALL = 4.6e-5

#: Modelled forward+backward seconds from which a torch TT network runs as one ``einsum`` call
#: with the cached path instead of the ``tensordot`` steps (see the module notes).
EINSUM_MIN_SECONDS = 3e-3

#: Path optimiser handed to ``opt_einsum`` (``"auto-hq"``: exhaustive/dynamic programming for
#: the small networks that TT matrices make).
PATH_OPTIMIZER = "auto-hq"


class Cost(NamedTuple):
    """The work of one route of a TT-matrix product (forward pass), and its modelled time.

    Attributes:
        flops: Floating-point operations (a multiply-add counts 2, as in ``opt_einsum``).
        narrow_flops: The FLOPs of each matrix product ``(m, k) @ (k, n)`` scaled by
            ``NARROW_WIDTH / min(NARROW_WIDTH, k, n)``: a product whose inner or output width is
            below the vector width fills only part of the vector registers.
        elements: Array elements read and written, including the copies that non-contiguous
            ``tensordot`` operands and ``permute``-then-``reshape`` make.
        calls: Kernel calls (matrix products, copies).

    Example:
        >>> cost = Cost(flops=2_000, narrow_flops=4_000, elements=1_000, calls=3)
        >>> cost.seconds > 3 * SECONDS_PER_CALL
        True
    """

    flops: int
    narrow_flops: int
    elements: int
    calls: int

    @property
    def seconds(self) -> float:
        """Modelled forward+backward seconds on the calibration machine (see the module notes).

        Example:
            >>> Cost(0, 0, 0, 1).seconds == SECONDS_PER_CALL
            True
        """
        return (
            SECONDS_PER_FLOP * self.narrow_flops
            + SECONDS_PER_ELEMENT * self.elements
            + SECONDS_PER_CALL * self.calls
        )

    def __add__(self, other: object) -> Cost:  # type: ignore[override]
        """Field-wise sum (the cost of running two pieces of work)."""
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(*(a + b for a, b in zip(self, other)))


def _matmul_cost(m: int, k: int, n: int) -> Cost:
    """Cost of one matrix product ``(m, k) @ (k, n)``."""
    flops = 2 * m * k * n
    narrow = flops * NARROW_WIDTH // min(NARROW_WIDTH, k, n)
    return Cost(flops, narrow, m * k + k * n + m * n, 1)


def _copy_cost(size: int) -> Cost:
    return Cost(0, 0, 2 * size, 1)


@dataclass(frozen=True)
class ContractionInfo:
    """How a TT-matrix product with ``rows`` input rows is evaluated (cached per shape).

    Attributes:
        kind: ``"matvec"`` (``x @ W.T``) or ``"rmatvec"`` (``x @ W``).
        rows: Number of rows of ``x`` after flattening its leading axes.
        strategy: ``"tt"`` (contract ``x`` with the cores) or ``"dense"`` (build ``W``, then one
            matrix product): the one with the smaller modelled time.
        equation: The einsum equation of the TT network (``x`` first, then the cores).
        path: The pairwise contraction order chosen by ``opt_einsum`` for these sizes.
        tt_flops: FLOPs of the TT network along ``path``.
        build_flops: FLOPs of building the dense ``W`` from the cores.
        dense_flops: ``build_flops + 2 * rows * M * N``.
        tt_cost: :class:`Cost` of the TT network (FLOPs, elements moved, calls).
        dense_cost: :class:`Cost` of building ``W`` and the matrix product.
        in_modes: Mode sizes of ``x``'s last axis (``n_k`` for matvec, ``m_k`` for rmatvec).
        in_size: Length of ``x``'s last axis (``N`` for matvec, ``M`` for rmatvec).
        out_size: Length of the result's last axis.

    Example:
        >>> import numpy as np
        >>> cores = [np.ones((1, 32, 32, 4)), np.ones((4, 32, 32, 1))]
        >>> info = contraction_info(cores, rows=2)
        >>> info.strategy, info.tt_cost.seconds < info.dense_cost.seconds
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
    tt_cost: Cost
    dense_cost: Cost
    in_modes: tuple[int, ...] = field(repr=False, default=())
    in_size: int = field(repr=False, default=0)
    out_size: int = field(repr=False, default=0)
    expression: Any = field(repr=False, compare=False, default=None)
    steps: tuple[Any, ...] = field(repr=False, compare=False, default=((), None))
    einsum_path: tuple[int, ...] | None = field(repr=False, compare=False, default=None)

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
    rows = math.prod([s[1] for s in shapes])  # lists, not generators: torch.compile traces this
    cols = math.prod([s[2] for s in shapes])
    if d == 1:
        return res.reshape((rows, cols))
    res = res.reshape(tuple([x for s in shapes for x in s[1:3]]))
    res = _permute(res, tuple(range(0, 2 * d, 2)) + tuple(range(1, 2 * d, 2)))
    return res.reshape((rows, cols))


def _dense_cost(shapes: tuple[tuple[int, ...], ...], rows: int) -> Cost:
    """Work of building ``W`` core by core (and its row-major reordering), then ``x @ W(.T)``."""
    cost = Cost(0, 0, 0, 0)
    prefix = shapes[0][1] * shapes[0][2]
    for r, m, n, r2 in shapes[1:]:
        cost += _matmul_cost(prefix, r, m * n * r2)
        prefix *= m * n
    size_m = math.prod(s[1] for s in shapes)
    size_n = math.prod(s[2] for s in shapes)
    if len(shapes) > 1:  # permute (i1 j1 i2 j2 ...) -> (i1 i2 ... j1 j2 ...), one copy
        cost += _copy_cost(size_m * size_n)
    return cost + _matmul_cost(rows, size_n, size_m)


def _mergeable(term: str, groups: Sequence[str], sizes: dict[str, int]) -> bool:
    """Whether a contiguous array indexed by ``term`` reshapes to ``groups`` without a copy.

    True when, ignoring axes of length 1, the axes of each group are adjacent in ``term`` and in
    the same order (``torch.reshape``/``numpy.reshape`` of the permuted view is then a view).
    """
    position = {c: i for i, c in enumerate(c for c in term if sizes[c] > 1)}
    for group in groups:
        places = [position[c] for c in group if sizes[c] > 1]
        if places and places != list(range(places[0], places[0] + len(places))):
            return False
    return True


@lru_cache(maxsize=1024)
def _plan(kind: str, shapes: tuple[tuple[int, ...], ...], rows: int) -> ContractionInfo:
    """Path search, cost model and strategy choice for one ``(kind, core shapes, rows)``."""
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
    build = sum(2 * math.prod(m_sizes[:k]) * math.prod(n_sizes[:k]) * math.prod(s)
                for k, s in enumerate(shapes) if k > 0)
    dense_cost = _dense_cost(shapes, rows)
    fields = {"in_modes": x_modes, "in_size": math.prod(x_modes), "out_size": math.prod(out_modes)}
    if d == 1 or rows == 0:  # a single core is W itself; no rows: nothing to contract
        none = Cost(0, 0, 0, 0)
        path: Any = ()
        tt = 0 if rows == 0 else dense_cost.flops
        return ContractionInfo(kind, rows, "dense", equation, path, tt, build, dense_cost.flops,
                               none if rows == 0 else dense_cost, dense_cost, **fields)
    x_shape = (rows, *x_modes)
    path, info = opt_einsum.contract_path(
        equation, x_shape, *shapes, shapes=True, optimize=PATH_OPTIMIZER
    )
    inputs, output = equation.split("->")
    terms = inputs.split(",")
    sizes = {c: size for t, shp in zip(terms, (x_shape, *shapes)) for c, size in zip(t, shp)}
    steps, tt_cost = _compile_steps(path, terms, output, sizes)
    strategy = "tt" if tt_cost.seconds < dense_cost.seconds else "dense"
    expression = None
    if strategy == "tt":
        expression = opt_einsum.contract_expression(equation, x_shape, *shapes, optimize=path)
    return ContractionInfo(
        kind, rows, strategy, equation, tuple(tuple(step) for step in path), int(info.opt_cost),
        build, dense_cost.flops, tt_cost, dense_cost, **fields, expression=expression,
        steps=steps, einsum_path=_einsum_path(path, tt_cost),
    )


def _einsum_path(path: Any, cost: Cost) -> tuple[int, ...] | None:
    """``path`` flattened as ``torch.einsum`` hands it to C++, or None to run the steps."""
    if cost.seconds < EINSUM_MIN_SECONDS:
        return None
    return tuple(i for step in path for i in step)


def _torch_einsum(lib: Any, equation: str, operands: list[Any], path: tuple[int, ...]) -> Any:
    """``torch._VF.einsum`` with a precomputed path, or None where that cannot be used.

    None under ``torch.compile`` (dynamo cannot trace the private call; the ``tensordot``
    steps trace fine) and where this torch lacks ``_VF.einsum`` or its ``path`` argument.
    """
    einsum = getattr(getattr(lib, "_VF", None), "einsum", None)
    if einsum is None or _compiling(lib):
        return None
    try:
        return einsum(equation, operands, path=list(path))
    except TypeError:  # no ``path`` keyword in this torch version
        return None


def _compiling(lib: Any) -> bool:
    compiler = getattr(lib, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())


def _lookup(kind: str, shapes: tuple[tuple[int, ...], ...], rows: int) -> ContractionInfo:
    """The cached plan for ``(kind, shapes, rows)`` (:func:`_plan` is searched once per key).

    ``torch.compile`` treats this function as returning a constant (the attribute set below is
    what ``torch.compiler.assume_constant_result`` sets; ttnet does not import torch): dynamo
    calls it while tracing, with the static shapes, and never traces the path search.
    """
    return _plan(kind, shapes, rows)


_lookup._dynamo_marked_constant = True  # type: ignore[attr-defined]


def _compile_steps(
    path: Any, terms: list[str], output: str, sizes: dict[str, int]
) -> tuple[tuple[tuple[Any, ...], tuple[int, ...] | None], Cost]:
    """Pairwise steps ``(positions, tensordot axes or None, swap, einsum)``, final permutation,
    and the :class:`Cost` of running them.

    Follows ``path`` like ``opt_einsum``'s executor, with two differences that matter for speed:
    the index strings are worked out once here, and each intermediate keeps the axis order that
    ``tensordot`` produces (no permutation between steps). The larger operand goes on the left
    with its contracted axes in its own order, so the big input is copied only where
    ``tensordot`` cannot view it as a matrix (counted in the cost).
    """
    terms = list(terms)
    steps = []
    cost = Cost(0, 0, 0, 0)

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
                result = "".join(c for c in left + right if c not in shared)
                swap = left != picked[0]
                steps.append((tuple(inds), axes, swap, ""))
                terms.append(result)
                inner = size(contracted)
                cost += _matmul_cost(size(left) // inner, inner, size(right) // inner)
                for term in (left, right):
                    free = "".join(c for c in term if c not in shared)
                    if not _mergeable(term, (free, contracted), sizes):
                        cost += _copy_cost(size(term))
                continue
        kept = "".join(dict.fromkeys(c for t in picked for c in t if c in needed))
        steps.append((tuple(inds), None, False, f"{','.join(picked)}->{kept}"))
        terms.append(kept)
        every = "".join(dict.fromkeys(c for t in picked for c in t))
        flops = 2 * size(every)  # einsum: a copy per operand, one product over all indices
        cost += Cost(flops, flops * NARROW_WIDTH, 2 * sum(map(size, picked)) + size(kept), 1)
    (final,) = terms
    perm = None if final == output else tuple(final.index(c) for c in output)
    if perm is not None and not _mergeable(final, (output[:1], output[1:]), sizes):
        cost += _copy_cost(size(final))
    return (tuple(steps), perm), cost


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
    return _lookup(kind, _check_cores(cores, 4), rows)


def ttm_strategy(shapes: Sequence[Sequence[int]], rows: int, *, kind: str = "matvec") -> str:
    """The strategy (``"tt"`` or ``"dense"``) of the product for these core shapes and rows.

    Reads sizes only (no arrays), from the same cache as :func:`contraction_info`; layers use it
    to build ``W`` in their own, cheaper layout when the dense route wins. Under
    ``torch.compile`` it is evaluated at trace time (the shapes are static there).

    Args:
        shapes: Shapes ``(r_{k-1}, m_k, n_k, r_k)`` of the TT-matrix cores.
        rows: Number of rows of the input after flattening its leading axes, ``>= 0``.
        kind: ``"matvec"`` (``x @ W.T``) or ``"rmatvec"`` (``x @ W``).

    Returns:
        ``"tt"`` or ``"dense"``.

    Example:
        >>> ttm_strategy([(1, 16, 16, 4), (4, 16, 16, 1)], 2)
        'tt'
        >>> ttm_strategy([(1, 2, 6, 5), (5, 2, 8, 5), (5, 2, 8, 1)], 1024)  # a LoRA factor
        'dense'
    """
    key = tuple(tuple(int(n) for n in s) for s in shapes)
    return _lookup(kind, key, rows).strategy


def _apply(kind: str, cores: Sequence[Any], x: Any) -> Any:
    shapes = tuple(tuple(int(n) for n in c.shape) for c in cores)
    lead = tuple(x.shape)[:-1]
    # operator.index: under torch.compile a dynamic batch size is specialised here (the plan
    # depends on the row count), so the plan lookup below gets a plain int
    rows = operator.index(math.prod(lead))
    return _execute(_lookup(kind, shapes, rows), cores, shapes, x)


def _execute(
    plan: ContractionInfo, cores: Sequence[Any], shapes: tuple[tuple[int, ...], ...], x: Any
) -> Any:
    """Run ``plan`` (its strategy) on ``x``; the benchmarks' calibration forces either route."""
    x_shape = tuple(x.shape)
    if not x_shape or x_shape[-1] != plan.in_size:
        raise ValueError(f"x must have shape (..., {plan.in_size}), got {x_shape}")
    lead = x_shape[:-1]
    if plan.strategy == "dense":
        w = _dense(cores, shapes)
        w = _permute(w, (1, 0)) if plan.kind == "matvec" else w
        y = x.reshape((plan.rows, plan.in_size)) @ w
    else:
        xr = x.reshape((plan.rows, *plan.in_modes))
        y = None
        if plan.einsum_path is not None and _is_torch(xr):
            y = _torch_einsum(sys.modules["torch"], plan.equation, [xr, *cores], plan.einsum_path)
        if y is None and (_is_torch(xr) or isinstance(xr, np.ndarray) or plan.expression is None):
            y = _run(*plan.steps, [xr, *cores])
        elif y is None:  # other array libraries: opt_einsum's own executor
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
