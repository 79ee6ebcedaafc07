"""TT-matrix products with ``x`` as reusable plans, after ``opt_einsum``'s ``contract_expression``.

Cores are plain arrays (numpy arrays, torch tensors or ``nn.Parameter``; autograd flows): a TT
matrix ``W`` of shape ``(M, N) = (prod m_k, prod n_k)`` with cores ``(r_{k-1}, m_k, n_k, r_k)``.

- :func:`ttm_expression` plans ``x @ W.T`` (``kind="matvec"``) or ``x @ W`` (``"rmatvec"``) for
  given core shapes and number of rows: the cheapest ``opt_einsum`` path of the TT network, the
  work of each route counted as a :class:`~ttnet.cost.Cost`, and the executor that the
  :class:`~ttnet.cost.CostModel` picks (TT network as ``tensordot`` steps or one einsum call, or
  dense ``W`` then one matrix product; see :mod:`ttnet.executors`). It returns a callable
  :class:`~ttnet.TTMExpression` whose report, its ``info`` (a :class:`~ttnet.ContractionInfo`),
  is kept apart from what runs (:mod:`ttnet.expression`). Plans are cached per ``(kind, core shapes, rows, cost model)``:
  the cost model is part of the key, so a different model never reuses another's plan.
- :func:`ttm_matvec` and :func:`ttm_rmatvec` flatten the leading axes of ``x`` into ``rows`` and
  call the cached expression for the device kind of ``x`` (:func:`~ttnet.cost.default_cost_model`)
  or the cost model passed in; :func:`contraction_info` shows its report.

Precision (:mod:`ttnet.precision`): the product runs in :func:`~ttnet.precision.compute_dtype`
of the cores and ``x`` (at least float32) and returns their promoted dtype.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import opt_einsum

from ttnet import dense
from ttnet._backend import array_ops
from ttnet.cost import EXECUTORS, NO_COST, CostModel, build_cost, default_cost_model, fused
from ttnet.cost import matmul_cost as _matmul_cost
from ttnet.executors import compile_steps
from ttnet.expression import ContractionInfo, TTMExpression

__all__ = [
    "contraction_info",
    "ttm_expression",
    "ttm_matvec",
    "ttm_rmatvec",
]

#: Path optimiser handed to ``opt_einsum`` (``"auto-hq"``: exhaustive/dynamic programming for
#: the small networks that TT matrices make).
PATH_OPTIMIZER = "auto-hq"

Shapes = tuple[tuple[int, ...], ...]


def ttm_expression(
    shapes: Sequence[Sequence[int]],
    rows: int,
    *,
    kind: str = "matvec",
    cost_model: CostModel | None = None,
    executor: str | None = None,
) -> TTMExpression:
    """Plan ``x @ W.T`` (or ``x @ W``) for TT-matrix cores of ``shapes`` and ``rows`` rows.

    Args:
        shapes: Core shapes ``(r_{k-1}, m_k, n_k, r_k)``.
        rows: Number of rows of ``x`` after flattening its leading axes, ``>= 0``.
        kind: ``"matvec"`` (``x @ W.T``) or ``"rmatvec"`` (``x @ W``).
        cost_model: The :class:`~ttnet.cost.CostModel` that picks the executor (default:
            the CPU one; :func:`ttm_matvec` passes the one for its input's device kind).
        executor: Force ``"steps"``, ``"einsum"`` or ``"dense"`` instead of the model's pick
            (benchmarks and calibration time each route this way). A single core or no rows
            always runs ``"dense"`` (the core is ``W``; nothing to contract).

    Returns:
        The :class:`TTMExpression`, the same object for the same arguments (cached; clear
        with ``ttm_expression.cache_clear()``).

    Raises:
        ValueError: If ``rows``, ``kind`` or ``executor`` is invalid, or the shapes do not chain.

    Example:
        >>> shapes = [(1, 2, 6, 5), (5, 2, 8, 5), (5, 2, 8, 1)]  # a LoRA factor 384 -> 8
        >>> memory_only = CostModel("cpu", 0.0, 1.0, 0.0)  # charges elements moved, nothing else
        >>> ttm_expression(shapes, 1024, cost_model=memory_only).info.executor
        'dense'
        >>> ttm_expression(shapes, 1024, executor="steps").info.executor
        'steps'
    """
    if type(rows) is not int or rows < 0:  # bool and other int subclasses excluded
        raise ValueError(f"rows must be an integer >= 0, got {rows!r}")
    if kind not in ("matvec", "rmatvec"):
        raise ValueError(f"kind must be 'matvec' or 'rmatvec', got {kind!r}")
    if executor is not None and executor not in EXECUTORS:
        raise ValueError(f"executor must be None or one of {EXECUTORS}, got {executor!r}")
    if cost_model is None:
        cost_model = default_cost_model()
    elif not isinstance(cost_model, CostModel):
        raise TypeError(f"cost_model: expected a CostModel or None, got "
                        f"{type(cost_model).__name__}")
    if type(shapes) is not tuple or not all(type(s) is tuple for s in shapes):
        shapes = tuple(tuple(int(n) for n in s) for s in shapes)
    return _plan(kind, shapes, rows, cost_model, executor)


# torch.compile treats ttm_expression as returning a constant (the attribute is what
# ``torch.compiler.assume_constant_result`` sets; ttnet does not import torch): dynamo calls it
# while tracing, with the static shapes, and never traces the path search.
ttm_expression._dynamo_marked_constant = True  # type: ignore[attr-defined]


@lru_cache(maxsize=1024)
def _plan(
    kind: str, shapes: Shapes, rows: int, model: CostModel, executor: str | None
) -> TTMExpression:
    """Path search, work counts and executor choice for one key (cached)."""
    if not shapes:
        raise ValueError("cores must be a non-empty sequence of arrays, got an empty sequence")
    for k, s in enumerate(shapes):
        if len(s) != 4:
            raise ValueError(f"cores[{k}] must have 4 axes (r, m, n, r'), got shape {s}")
    dense.check_chain(shapes)
    d = len(shapes)
    sym = opt_einsum.get_symbol
    # symbols: 0 batch, 1..d rows m_k, d+1..2d cols n_k, 2d+1.. inner ranks; r_0 and r_d share one
    m = [sym(1 + k) for k in range(d)]
    n = [sym(1 + d + k) for k in range(d)]
    r = [sym(1 + 2 * d + k) for k in range(d)] + [sym(1 + 2 * d)]
    core_terms = [f"{r[k]}{m[k]}{n[k]}{r[k + 1]}" for k in range(d)]
    m_sizes, n_sizes = tuple(s[1] for s in shapes), tuple(s[2] for s in shapes)
    x_term, out_term, x_modes = (n, m, n_sizes) if kind == "matvec" else (m, n, m_sizes)
    equation = f"{sym(0)}{''.join(x_term)},{','.join(core_terms)}->{sym(0)}{''.join(out_term)}"
    spec = dense.build_spec(shapes)
    size_m, size_n = spec.size
    in_size, out_size = (size_n, size_m) if kind == "matvec" else (size_m, size_n)
    # the dense route builds x's matrix (in, out) contiguous: W.T (matvec) or W (rmatvec)
    build = build_cost(shapes, dense.reorder_index(shapes, kind == "matvec") is not None)
    product = _matmul_cost(rows, in_size, out_size)
    dense_cost = fused(build + product)  # one node on torch, its backward written out
    common = (equation, build.flops, build.flops + product.flops)
    if d == 1 or rows == 0:  # a single core is W itself; no rows: nothing to contract
        tt = NO_COST if rows == 0 else dense_cost
        info = ContractionInfo(kind, rows, "dense", equation, (), tt.flops,
                               *common[1:], tt, dense_cost, product, model)
        return TTMExpression(info, shapes, in_size, out_size, x_modes, spec)
    x_shape = (rows, *x_modes)
    path, path_info = opt_einsum.contract_path(
        equation, x_shape, *shapes, shapes=True, optimize=PATH_OPTIMIZER
    )
    inputs, output = equation.split("->")
    terms = inputs.split(",")
    sizes = {c: size for t, shp in zip(terms, (x_shape, *shapes)) for c, size in zip(t, shp)}
    steps, tt = compile_steps(path, terms, output, sizes)
    info = ContractionInfo(
        kind, rows, executor or model.choose(tt, dense_cost), equation,
        tuple(tuple(step) for step in path), int(path_info.opt_cost), *common[1:], tt,
        dense_cost, product, model,
    )
    return TTMExpression(info, shapes, in_size, out_size, x_modes, spec, steps,
                         tuple(i for step in path for i in step))


ttm_expression.cache_clear = _plan.cache_clear  # type: ignore[attr-defined]
ttm_expression.cache_info = _plan.cache_info  # type: ignore[attr-defined]


def _apply(kind: str, cores: Sequence[Any], x: Any, cost_model: CostModel | None) -> Any:
    shapes = dense.check_cores(cores, 4)
    x_shape = tuple(x.shape)
    if not x_shape:
        raise ValueError(f"x must have shape (..., N), got {x_shape}")
    # operator.index: under torch.compile a dynamic batch size is specialised here (the plan
    # depends on the row count), so the plan lookup below gets a plain int
    rows = operator.index(math.prod(x_shape[:-1]))
    model = cost_model or default_cost_model(array_ops(x).device_kind(x))
    expression = ttm_expression(shapes, rows, kind=kind, cost_model=model)
    if x_shape[-1] != expression.in_size:
        raise ValueError(f"x must have shape (..., {expression.in_size}), got {x_shape}")
    return expression(cores, x)


def ttm_matvec(cores: Sequence[Any], x: Any, *, cost_model: CostModel | None = None) -> Any:
    """``x @ W.T`` for a TT matrix ``W`` (``M x N``): ``x`` of shape ``(..., N)`` -> ``(..., M)``.

    What a linear layer ``out x in`` needs. The leading axes of ``x`` are flattened into
    ``rows``; the cached :func:`ttm_expression` for the core shapes, ``rows`` and the cost model
    of ``x``'s device kind (or ``cost_model``) evaluates it.

    Args:
        cores: TT-matrix cores ``(r_{k-1}, m_k, n_k, r_k)``.
        x: Input of shape ``(..., N)``, same library as the cores.
        cost_model: A :class:`~ttnet.cost.CostModel` instead of the default for the device.

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
        >>> from ttnet.dense import ttm_dense
        >>> y.shape, bool(np.allclose(y, x @ ttm_dense(cores).T))
        ((7, 8), True)
    """
    return _apply("matvec", cores, x, cost_model)


def ttm_rmatvec(cores: Sequence[Any], x: Any, *, cost_model: CostModel | None = None) -> Any:
    """``x @ W`` for a TT matrix ``W`` (``M x N``): ``x`` of shape ``(..., M)`` -> ``(..., N)``.

    Same planning and caching as :func:`ttm_matvec` (``kind="rmatvec"``).

    Args:
        cores: TT-matrix cores ``(r_{k-1}, m_k, n_k, r_k)``.
        x: Input of shape ``(..., M)``.
        cost_model: A :class:`~ttnet.cost.CostModel` instead of the default for the device.

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
        >>> from ttnet.dense import ttm_dense
        >>> y.shape, bool(np.allclose(y, x @ ttm_dense(cores)))
        ((2, 3, 15), True)
    """
    return _apply("rmatvec", cores, x, cost_model)


def contraction_info(
    cores: Sequence[Any],
    rows: int,
    *,
    kind: str = "matvec",
    cost_model: CostModel | None = None,
) -> ContractionInfo:
    """The report of the plan that :func:`ttm_matvec` / :func:`ttm_rmatvec` use for ``rows``.

    Args:
        cores: TT-matrix cores ``(r_{k-1}, m_k, n_k, r_k)`` (only their shapes are read).
        rows: Number of rows of the input after flattening its leading axes, ``>= 0``.
        kind: ``"matvec"`` (``x @ W.T``) or ``"rmatvec"`` (``x @ W``).
        cost_model: The cost model (default: the one for the cores' device kind).

    Returns:
        The cached plan's :class:`ContractionInfo`.

    Raises:
        ValueError: If ``rows`` or ``kind`` is invalid, or the core shapes do not chain.

    Example:
        >>> import numpy as np
        >>> cores = [np.ones((1, 8, 8, 8))] + [np.ones((8, 8, 8, 8))] * 2 + [np.ones((8, 8, 8, 1))]
        >>> info = contraction_info(cores, 64)
        >>> info.rows, info.tt_flops < info.dense_flops, info.cost_model.device_kind
        (64, True, 'cpu')
    """
    shapes = dense.check_cores(cores, 4)
    model = cost_model or default_cost_model(array_ops(cores[0]).device_kind(cores[0]))
    return ttm_expression(shapes, rows, kind=kind, cost_model=model).info
