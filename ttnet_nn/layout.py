"""How a layer's dense weight ``(out, in)`` is laid out as TT cores: the types of ``TTLinear.layout``.

Two layouts, both resolved from the ``shapes`` argument of :class:`ttnet_nn.TTLinear` by
:func:`resolve_layout`:

* :class:`MatrixLayout` -- a true TT matrix, cores ``(r, m_k, n_k, r')`` with ``m`` the output
  modes and ``n`` the input modes, following a :class:`ttnet.plans.MatrixPlan` (zero padding for
  awkward sizes: the plan pads the input with zeros and drops the padded outputs). The forward is
  ``x @ W.T`` planned by :func:`ttnet.ttm_expression`.
* :class:`TensorLayout` -- the LoRETTA paper's layout: a TT *tensor* (cores ``(r, t_k, r')``)
  whose full tensor, reshaped row-major to ``(in, out)``, is the transposed weight ``V = W.T``.
  When the ``in | out`` boundary falls on (or inside) a mode in a way that keeps the row-major
  order, each mode splits as ``t = a * b`` (an ``a``-input, ``b``-output part) and ``V`` is a TT
  matrix with cores ``(r, a_k, b_k, r')``: the forward is ``x @ V``, planned the same way, and the
  dense route builds ``V`` straight from the 3-D cores (no reordering copy). Otherwise the layer
  builds ``V`` as the full tensor.

The layouts hold only sizes (no tensors), so they never get in the way of ``state_dict``,
``.to()``, DDP or ``torch.compile``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ttnet import (
    CostModel,
    TTMExpression,
    compute_dtype,
    plans,
    ranks,
    tt_full,
    tt_matrix_svd,
    tt_svd,
    ttm_dense,
    ttm_expression,
)
from ttnet.expression import evaluate

from ._checks import positive_int
from .presets import loretta_tensor_shape

__all__ = ["Layout", "MatrixLayout", "TensorLayout", "resolve_layout", "resolve_ranks"]

Shapes = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class MatrixLayout:
    """A TT-matrix layout following a :class:`ttnet.plans.MatrixPlan` (rows = out, cols = in).

    Example:
        >>> layout = resolve_layout(None, 768, 64)
        >>> layout.plan.row_shape, layout.plan.col_shape, layout.core_shapes((1, 5, 5, 1))[0]
        ((4, 4, 4), (8, 8, 12), (1, 4, 8, 5))
    """

    plan: plans.MatrixPlan

    @property
    def out_features(self) -> int:
        """Output size (the plan's rows)."""
        return self.plan.rows

    @property
    def in_features(self) -> int:
        """Input size (the plan's cols)."""
        return self.plan.cols

    @property
    def mode_sizes(self) -> tuple[int, ...]:
        """Size of each core's physical index (``m_k * n_k``)."""
        return tuple(m * n for m, n in zip(self.plan.row_shape, self.plan.col_shape))

    def core_shapes(self, tt_ranks: Sequence[int]) -> list[tuple[int, ...]]:
        """Core shapes ``(r_{k-1}, m_k, n_k, r_k)`` for the given ranks (boundary 1s included)."""
        return [
            (tt_ranks[k], m, n, tt_ranks[k + 1])
            for k, (m, n) in enumerate(zip(self.plan.row_shape, self.plan.col_shape))
        ]

    def describe(self) -> str:
        """The shapes part of ``extra_repr``."""
        return f"row_shape={self.plan.row_shape}, col_shape={self.plan.col_shape}"

    def product(self, shapes: Shapes) -> tuple[Shapes, str]:
        """The forward as a TT-matrix product: ``(core shapes, kind)``, here ``x @ W.T``.

        Example:
            >>> resolve_layout(None, 768, 64).product(((1, 4, 8, 5), (5, 4, 8, 5), (5, 4, 12, 1)))
            (((1, 4, 8, 5), (5, 4, 8, 5), (5, 4, 12, 1)), 'matvec')
        """
        return shapes, "matvec"

    def expression(self, shapes: Shapes, rows: int, model: CostModel) -> TTMExpression:
        """The plan of the forward for cores of ``shapes`` and ``rows`` rows (see :meth:`product`)."""
        return ttm_expression(shapes, rows, kind="matvec", cost_model=model)

    def forward(
        self, cores: Sequence[torch.Tensor], x: torch.Tensor, bias: torch.Tensor | None,
        expression: TTMExpression | None,
    ) -> torch.Tensor:
        """``x @ W.T + bias`` for ``x`` of shape ``(..., in_features)`` along ``expression``
        (what :meth:`expression` planned for the cores and rows)."""
        if not self.plan.is_padded:
            return evaluate(expression, cores, x, bias)
        y = self.plan.unpad_rows(evaluate(expression, cores, self.plan.pad_cols(x)))
        return y if bias is None else y + bias.to(y.dtype)

    def dense(self, cores: Sequence[torch.Tensor]) -> torch.Tensor:
        """The dense weight ``(out_features, in_features)`` (differentiable)."""
        return self.plan.unpad_matrix(ttm_dense(list(cores)))

    def decompose(
        self, weight: torch.Tensor, eps: float | None, max_rank: int | Sequence[int] | None
    ) -> list[torch.Tensor]:
        """TT-SVD cores of a dense ``(out, in)`` weight (zero padded to the planned size)."""
        tt = tt_matrix_svd(self.plan.pad_matrix(weight), self.plan.row_shape, self.plan.col_shape,
                           eps=eps, max_rank=max_rank)
        return list(tt.cores)


@dataclass(frozen=True)
class TensorLayout:
    """The paper's layout: a TT tensor of ``tensor_shape`` reshaped row-major to ``(in, out)``.

    Example:
        >>> layout = resolve_layout("paper", 768, 64)
        >>> layout.tensor_shape, layout.splits
        ((8, 8, 12, 8, 8), ((8, 1), (8, 1), (12, 1), (1, 8), (1, 8)))
    """

    out_features: int
    in_features: int
    tensor_shape: tuple[int, ...]

    @property
    def mode_sizes(self) -> tuple[int, ...]:
        """Size of each core's physical index."""
        return self.tensor_shape

    @property
    def splits(self) -> tuple[tuple[int, int], ...] | None:
        """Per mode ``(input part, output part)``, or None when the modes do not split cleanly.

        Example:
            >>> TensorLayout(8, 6, (4, 12)).splits is None  # 6 inputs end inside the mode 4
            True
        """
        remaining = self.in_features
        parts = []
        for t in self.tensor_shape:
            if remaining >= t:
                if remaining % t:
                    return None
                a, remaining = t, remaining // t
            else:
                if t % remaining:
                    return None
                a, remaining = remaining, 1
            parts.append((a, t // a))
        return tuple(parts)

    def core_shapes(self, tt_ranks: Sequence[int]) -> list[tuple[int, ...]]:
        """Core shapes ``(r_{k-1}, t_k, r_k)``."""
        return [(tt_ranks[k], t, tt_ranks[k + 1]) for k, t in enumerate(self.tensor_shape)]

    def describe(self) -> str:
        """The shapes part of ``extra_repr``."""
        return f"tensor_shape={self.tensor_shape} as (in, out)"

    def product(self, shapes: Shapes) -> tuple[Shapes, str] | None:
        """The forward as a TT-matrix product ``x @ V``: cores viewed as ``(r, a_k, b_k, r')``
        and ``"rmatvec"``; None when the modes do not split.

        Example:
            >>> resolve_layout("paper", 768, 8).product(((1, 8, 5), (5, 8, 5), (5, 12, 5),
            ...                                          (5, 8, 1)))[0][-1]
            (5, 1, 8, 1)
        """
        splits = self.splits
        if splits is None:
            return None
        return tuple((s[0], a, b, s[-1]) for s, (a, b) in zip(shapes, splits)), "rmatvec"

    def expression(self, shapes: Shapes, rows: int, model: CostModel) -> TTMExpression | None:
        """The plan of the forward (see :meth:`product`), or None without splits."""
        product = self.product(shapes)
        if product is None:
            return None
        return ttm_expression(product[0], rows, kind=product[1], cost_model=model)

    def forward(
        self, cores: Sequence[torch.Tensor], x: torch.Tensor, bias: torch.Tensor | None,
        expression: TTMExpression | None,
    ) -> torch.Tensor:
        """``x @ W.T + bias`` for ``x`` of shape ``(..., in_features)`` along ``expression``
        (what :meth:`expression` planned; None: through the full tensor)."""
        if expression is not None:
            return evaluate(expression, cores, x, bias)
        dtype = compute_dtype(x, cores[0])
        y = x.to(dtype) @ self._dense_t([c.to(dtype) for c in cores])
        return y if bias is None else y + bias.to(dtype)

    def _dense_t(self, cores: Sequence[torch.Tensor]) -> torch.Tensor:
        return tt_full(list(cores)).reshape(self.in_features, self.out_features)

    def dense(self, cores: Sequence[torch.Tensor]) -> torch.Tensor:
        """The dense weight ``(out_features, in_features)`` (differentiable; a transposed view)."""
        return self._dense_t(cores).T

    def decompose(
        self, weight: torch.Tensor, eps: float | None, max_rank: int | Sequence[int] | None
    ) -> list[torch.Tensor]:
        """TT-SVD cores of a dense ``(out, in)`` weight, as the paper's TT tensor."""
        tt = tt_svd(weight.T.reshape(self.tensor_shape), eps=eps, max_rank=max_rank)
        return list(tt.cores)


Layout = MatrixLayout | TensorLayout


def _int_tuple(name: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) == 0:
        raise ValueError(f"{name}: expected a non-empty sequence of positive integers, "
                         f"received {value!r}")
    return tuple(positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))


def resolve_layout(shapes: object, in_features: int, out_features: int) -> Layout:
    """Turn the ``shapes`` argument of a layer into a layout.

    Accepted: None (planned by :func:`ttnet.plans.plan_matrix`), ``"paper"`` (LoRETTA's
    :func:`ttnet_nn.presets.loretta_tensor_shape`), a :class:`ttnet.plans.MatrixPlan`, a pair
    ``(out_modes, in_modes)`` (a TT matrix; products may exceed the sizes, then zero padding),
    a flat sequence of ints whose product is ``in * out`` (the paper's tensor layout), or a
    layout already resolved.

    Raises:
        ValueError: ``shapes`` is none of these, or does not fit the sizes.

    Example:
        >>> resolve_layout(((4, 4), (6, 8)), 48, 16).plan.is_padded
        False
        >>> resolve_layout((8, 8, 12, 8, 8), 768, 64) == resolve_layout("paper", 768, 64)
        True
    """
    if isinstance(shapes, MatrixLayout | TensorLayout):
        if (shapes.in_features, shapes.out_features) != (in_features, out_features):
            raise ValueError(
                f"shapes: expected a layout for in_features={in_features}, "
                f"out_features={out_features}, received one for in_features={shapes.in_features}, "
                f"out_features={shapes.out_features}"
            )
        return shapes
    if shapes is None:
        shapes = plans.plan_matrix(out_features, in_features)
    if isinstance(shapes, str):
        if shapes != "paper":
            raise ValueError(f"shapes: expected None, 'paper', a MatrixPlan, (out_modes, in_modes) "
                             f"or a TT tensor shape, received {shapes!r}")
        shapes = tuple(loretta_tensor_shape(in_features, out_features))
    if isinstance(shapes, plans.MatrixPlan):
        if (shapes.rows, shapes.cols) != (out_features, in_features):
            raise ValueError(
                f"shapes: expected a MatrixPlan with rows=out_features={out_features} and "
                f"cols=in_features={in_features}, received rows={shapes.rows}, cols={shapes.cols}"
            )
        return MatrixLayout(shapes)
    if (
        isinstance(shapes, Sequence)
        and len(shapes) == 2
        and all(isinstance(s, Sequence) and not isinstance(s, str) for s in shapes)
    ):
        row_shape = _int_tuple("shapes[0] (out_modes)", shapes[0])
        col_shape = _int_tuple("shapes[1] (in_modes)", shapes[1])
        if (
            len(row_shape) != len(col_shape)
            or math.prod(row_shape) < out_features
            or math.prod(col_shape) < in_features
        ):
            raise ValueError(
                f"shapes: expected (out_modes, in_modes) of equal length with prod(out_modes) >= "
                f"out_features={out_features} and prod(in_modes) >= in_features={in_features}, "
                f"received {row_shape}, {col_shape}"
            )
        return MatrixLayout(plans.MatrixPlan(out_features, in_features, row_shape, col_shape))
    tensor_shape = _int_tuple("shapes", shapes)
    if math.prod(tensor_shape) != in_features * out_features:
        raise ValueError(
            f"shapes: expected a TT tensor shape with product in_features*out_features="
            f"{in_features * out_features}, received {tensor_shape} "
            f"(product {math.prod(tensor_shape)})"
        )
    return TensorLayout(out_features, in_features, tensor_shape)


def resolve_ranks(
    layout: Layout, tt_rank: int | tuple[int, ...], name: str = "tt_rank"
) -> tuple[int, ...]:
    """TT ranks with boundary 1s: ``tt_rank`` per inner bond.

    In a TT matrix each rank is lowered to what its bond can use
    (:func:`ttnet.ranks.useful_ranks`). The paper's tensor layout keeps ``tt_rank`` on every bond,
    as the official LoRETTA code does, so that the paper's parameter counts are reproduced
    (e.g. ``(16, 16, 16, 4, 4, 4)`` at rank 5 has 1,100 parameters; clipped, 1,076).

    Raises:
        ValueError: a per-bond ``tt_rank`` of the wrong length.

    Example:
        >>> resolve_ranks(resolve_layout(((2, 2), (2, 3)), 6, 4), 8)  # a bond carries at most 4
        (1, 4, 1)
        >>> resolve_ranks(resolve_layout("paper", 768, 64), 5)
        (1, 5, 5, 5, 5, 1)
    """
    num_bonds = len(layout.mode_sizes) - 1
    if isinstance(tt_rank, tuple) and len(tt_rank) != num_bonds:
        raise ValueError(f"{name}: expected an int or {num_bonds} per-bond ranks for mode sizes "
                         f"{layout.mode_sizes}, received {tt_rank!r}")
    requested = (1, *ranks.normalize_max_rank(tt_rank, num_bonds), 1)
    if isinstance(layout, TensorLayout):
        return requested
    return ranks.useful_ranks(layout.mode_sizes, requested)
