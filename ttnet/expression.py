"""Contraction plans as objects: the report (:class:`ContractionInfo`) and the runner
(:class:`TTMExpression`), and how a plan runs on arrays (:func:`evaluate`,
:func:`evaluate_sequence`).

Plans are made by :func:`ttnet.ttm_expression` (:mod:`ttnet.contraction`); the report is a plain
frozen value (what was chosen and what each route costs), kept apart from what runs, as
``opt_einsum`` keeps ``PathInfo`` apart from ``ContractExpression``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ttnet import dense
from ttnet._backend import array_ops, get_namespace
from ttnet.cost import Cost, CostModel
from ttnet.executors import run_steps
from ttnet.precision import compute_dtype, is_half

__all__ = ["ContractionInfo", "TTMExpression", "evaluate", "evaluate_sequence"]

Shapes = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class ContractionInfo:
    """The report of a planned TT-matrix product: what was chosen, and what each route costs.

    Attributes:
        kind: ``"matvec"`` (``x @ W.T``) or ``"rmatvec"`` (``x @ W``).
        rows: Number of rows of ``x`` after flattening its leading axes.
        executor: ``"steps"`` or ``"einsum"`` (the TT network) or ``"dense"`` (build ``W``,
            then one matrix product), as :meth:`~ttnet.cost.CostModel.choose` picked.
        equation: The einsum equation of the TT network (``x`` first, then the cores).
        path: The pairwise contraction order chosen by ``opt_einsum`` for these sizes.
        tt_flops: FLOPs of the TT network along ``path``.
        build_flops: FLOPs of building the dense ``W`` from the cores.
        dense_flops: ``build_flops + 2 * rows * M * N``.
        tt_cost: :class:`~ttnet.cost.Cost` of the TT network.
        dense_cost: :class:`~ttnet.cost.Cost` of building ``W`` and the product.
        product_cost: :class:`~ttnet.cost.Cost` of the product alone (``W`` already built).
        cost_model: The :class:`~ttnet.cost.CostModel` that chose.

    Example:
        >>> import numpy as np
        >>> cores = [np.ones((1, 32, 32, 4)), np.ones((4, 32, 32, 1))]
        >>> from ttnet import CostModel, contraction_info
        >>> info = contraction_info(cores, rows=2, cost_model=CostModel("cpu", 1.0, 0.0, 0.0))
        >>> info.strategy, info.tt_seconds < info.dense_seconds  # a FLOPs-only model
        ('tt', True)
    """

    kind: str
    rows: int
    executor: str
    equation: str
    path: tuple[tuple[int, ...], ...]
    tt_flops: int
    build_flops: int
    dense_flops: int
    tt_cost: Cost
    dense_cost: Cost
    product_cost: Cost
    cost_model: CostModel

    @property
    def strategy(self) -> str:
        """``"tt"`` (the TT network, either executor) or ``"dense"``.

        Example:
            >>> import numpy as np
            >>> from ttnet import contraction_info
            >>> info = contraction_info([np.ones((1, 2, 3, 1))], rows=4)  # one core: W itself
            >>> info.strategy, info.flops
            ('dense', 48)
        """
        return "dense" if self.executor == "dense" else "tt"

    @property
    def flops(self) -> int:
        """FLOPs of the chosen route (``dense_flops`` or ``tt_flops``)."""
        return self.dense_flops if self.executor == "dense" else self.tt_flops

    @property
    def tt_seconds(self) -> float:
        """Modelled forward+backward seconds of the TT network."""
        return self.cost_model.seconds(self.tt_cost)

    @property
    def dense_seconds(self) -> float:
        """Modelled forward+backward seconds of the dense route (build included)."""
        return self.cost_model.seconds(self.dense_cost)


@dataclass(frozen=True, eq=False)
class TTMExpression:
    """A planned TT-matrix product, called as ``expression(cores, x, bias=None)``.

    Obtain one from :func:`ttm_expression`. Calling it with cores of :attr:`shapes` (or their
    merged views ``(r_{k-1}, m_k * n_k, r_k)``, which the dense route uses as they are) and
    ``x`` of shape ``(..., in_size)`` whose leading axes hold :attr:`rows` rows returns
    ``x @ W.T`` (matvec) or ``x @ W`` (rmatvec), plus ``bias`` when given, of shape
    ``(..., out_size)``.

    Attributes:
        info: The report (:class:`ContractionInfo`).
        shapes: The core shapes ``(r_{k-1}, m_k, n_k, r_k)`` it was planned for.
        in_size: Length of ``x``'s last axis (``N`` for matvec, ``M`` for rmatvec).
        out_size: Length of the result's last axis.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> cores = [rng.random((1, 2, 3, 2)), rng.random((2, 4, 5, 1))]
        >>> from ttnet import ttm_expression
        >>> expr = ttm_expression([c.shape for c in cores], rows=7)
        >>> x = rng.random((7, 15))
        >>> from ttnet.dense import ttm_dense
        >>> bool(np.allclose(expr(cores, x), x @ ttm_dense(cores).T)), expr.info.rows
        (True, 7)
    """

    info: ContractionInfo
    shapes: Shapes
    in_size: int
    out_size: int
    in_modes: tuple[int, ...] = field(repr=False)
    spec: dense.BuildSpec = field(repr=False)
    steps: tuple[Any, ...] = field(repr=False, default=((), None))
    einsum_path: tuple[int, ...] = field(repr=False, default=())

    def __call__(self, cores: Sequence[Any], x: Any, bias: Any = None) -> Any:
        """Evaluate the product for ``cores`` and ``x`` (see the class docstring)."""
        return evaluate(self, cores, x, bias)


def evaluate(expression: TTMExpression, cores: Sequence[Any], x: Any, bias: Any = None) -> Any:
    """``expression(cores, x, bias)``, as a function: the form ``torch.compile`` traces.

    Under ``torch.compile`` an expression is a constant of the trace (see
    :func:`ttm_expression`), and dynamo cannot call a constant object's methods; it can pass
    one to a function.

    Example:
        >>> import numpy as np
        >>> from ttnet import ttm_expression
        >>> expression = ttm_expression([(1, 2, 3, 1)], rows=4)
        >>> evaluate(expression, [np.ones((1, 2, 3, 1))], np.ones((4, 3))).shape
        (4, 2)
    """
    return evaluate_sequence([(expression, cores, 1.0)], x, bias)


def evaluate_sequence(
    stages: Sequence[tuple[TTMExpression, Sequence[Any], float]], x: Any, bias: Any = None
) -> Any:
    """``x`` through several planned products in turn: ``h -> expression(cores, h) * scale``,
    then ``+ bias``.

    What a LoRA update ``scaling * B (A x)`` is. Where every stage runs the dense route, torch
    runs the whole sequence as one autograd node; otherwise the stages run one by one.
    Precision as for one product (:mod:`ttnet.precision`); the intermediates stay in the
    compute dtype.

    Args:
        stages: ``(expression, cores, scale)`` per product, each expression planned for the
            rows of ``x`` and an input as long as the previous stage's output.
        x: Input of shape ``(..., in_size)`` of the first expression.
        bias: Optional array added to the result (length ``out_size`` of the last expression).

    Raises:
        ValueError: If the sizes or row counts do not chain, or a stage has the wrong number of
            cores.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a, b = [rng.random((1, 2, 3, 1))], [rng.random((1, 5, 2, 1))]
        >>> from ttnet import ttm_expression
        >>> down, up = ttm_expression([(1, 2, 3, 1)], 4), ttm_expression([(1, 5, 2, 1)], 4)
        >>> x = rng.random((4, 3))
        >>> y = evaluate_sequence([(down, a, 2.0), (up, b, 1.0)], x)
        >>> bool(np.allclose(y, 2.0 * (x @ a[0][0, :, :, 0].T) @ b[0][0, :, :, 0].T))
        True
    """
    x_shape = tuple(x.shape)
    size = x_shape[-1] if x_shape else None
    rows = math.prod(x_shape[:-1])
    for k, (expression, cores, _) in enumerate(stages):
        if len(cores) != len(expression.shapes):
            raise ValueError(f"cores: expected {len(expression.shapes)} cores of shapes "
                             f"{expression.shapes} in stage {k}, got {len(cores)}")
        if size != expression.in_size or rows != expression.info.rows:
            raise ValueError(f"x must have shape (..., {expression.in_size}) with "
                             f"{expression.info.rows} rows in its leading axes for stage {k}, "
                             f"got {x_shape}" + (f" and size {size} from stage {k - 1}" if k
                                                 else ""))
        size = expression.out_size
    firsts = [cores[0] for _, cores, _ in stages]
    out_dtype = None
    if any(c.dtype != x.dtype for c in firsts) or is_half(x.dtype):
        dtype = compute_dtype(x, *firsts)
        out_dtype = get_namespace(x).result_type(x, *firsts)
        x = _cast(x, dtype)
        stages = [(e, [_cast(c, dtype) for c in cores], s) for e, cores, s in stages]
        bias = None if bias is None else _cast(bias, dtype)
    ops = array_ops(x)
    if all(e.info.executor == "dense" for e, _, _ in stages):
        y = ops.dense_products(x, [(dense.Product(e.spec, e.info.kind == "matvec", s), cores)
                                   for e, cores, s in stages], bias)
    else:
        y = x
        for expression, cores, scale in stages:
            if expression.info.executor == "dense":
                product = dense.Product(expression.spec, expression.info.kind == "matvec", scale)
                y = ops.dense_products(y, [(product, cores)], None)
            else:
                y = _network(expression, cores, y)
                y = y if scale == 1.0 else y * scale
        y = y if bias is None else y + bias
    return y if out_dtype is None or y.dtype == out_dtype else _cast(y, out_dtype)


def _network(expression: TTMExpression, cores: Sequence[Any], x: Any) -> Any:
    """The TT network on ``x``, by the planned executor."""
    lead = tuple(x.shape)[:-1]
    xr = x.reshape((expression.info.rows, *expression.in_modes))
    cores = [c if c.ndim == 4 else c.reshape(s) for c, s in zip(cores, expression.shapes)]
    ops = array_ops(xr)
    y = None
    if expression.info.executor == "einsum":
        y = ops.einsum_path(expression.info.equation, [xr, *cores], expression.einsum_path)
    if y is None:
        y = run_steps(*expression.steps, [xr, *cores])
    return y.reshape((*lead, expression.out_size))


def _cast(x: Any, dtype: Any) -> Any:
    return x if x.dtype == dtype else array_ops(x).astype(x, dtype)
