"""How a layer's dense weight ``(out, in)`` is laid out as TT cores.

Two layouts, both resolved from the ``shapes`` argument of :class:`ttnet_nn.TTLinear`:

* :class:`MatrixLayout` -- a true TT matrix, cores ``(r, m_k, n_k, r')`` with ``m`` the output
  modes and ``n`` the input modes, following a :class:`ttnet.plans.MatrixPlan` (zero padding for
  awkward sizes: the plan pads the input with zeros and drops the padded outputs).
* :class:`TensorLayout` -- the LoRETTA paper's layout: a TT *tensor* (cores ``(r, t_k, r')``)
  whose full tensor, reshaped row-major to ``(in, out)``, is the transposed weight. When the
  ``in | out`` boundary falls on (or inside) a mode in a way that keeps the row-major order, the
  cores are viewed as a TT matrix (a mode ``t = a * b`` becomes an ``a``-input, ``b``-output
  core) and the layer uses the same cached contraction as a TT matrix; otherwise it builds the
  dense weight.

The layouts hold only sizes (no tensors), so they never get in the way of ``state_dict``,
``.to()``, DDP or ``torch.compile``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ttnet import contraction, plans, ranks, tt_matrix_svd, tt_svd

from .presets import loretta_tensor_shape

from ._checks import positive_int


@dataclass(frozen=True)
class MatrixLayout:
    """A TT-matrix layout following a :class:`ttnet.plans.MatrixPlan` (rows = out, cols = in)."""

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

    def matrix_cores(self, cores: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The cores as TT-matrix cores ``(r, m_k, n_k, r')`` (here: themselves)."""
        return list(cores)

    def matvec(self, cores: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T`` for ``x`` of shape ``(..., in_features)``."""
        return self.plan.unpad_rows(contraction.ttm_matvec(list(cores), self.plan.pad_cols(x)))

    def dense(self, cores: Sequence[torch.Tensor]) -> torch.Tensor:
        """The dense weight ``(out_features, in_features)`` (differentiable)."""
        return self.plan.unpad_matrix(contraction.ttm_dense(list(cores)))

    def decompose(
        self, weight: torch.Tensor, eps: float | None, max_rank: int | Sequence[int] | None
    ) -> list[torch.Tensor]:
        """TT-SVD cores of a dense ``(out, in)`` weight (zero padded to the planned size)."""
        tt = tt_matrix_svd(self.plan.pad_matrix(weight), self.plan.row_shape, self.plan.col_shape,
                           eps=eps, max_rank=max_rank)
        return list(tt.cores)


@dataclass(frozen=True)
class TensorLayout:
    """The paper's layout: a TT tensor of ``tensor_shape`` reshaped row-major to ``(in, out)``."""

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

        Example: ``in=768, out=64, tensor_shape=(8, 8, 12, 8, 8)`` gives
        ``((8, 1), (8, 1), (12, 1), (1, 8), (1, 8))``.
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

    def matrix_cores(self, cores: Sequence[torch.Tensor]) -> list[torch.Tensor] | None:
        """Views of the cores as TT-matrix cores, or None when the modes do not split cleanly."""
        if self.splits is None:
            return None
        # (r, t, r') -> (r, a, b, r') -> (r, b, a, r') = (r, m_k=out part, n_k=in part, r')
        return [
            core.reshape(core.shape[0], a, b, core.shape[-1]).permute(0, 2, 1, 3)
            for core, (a, b) in zip(cores, self.splits)
        ]

    def matvec(self, cores: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T`` for ``x`` of shape ``(..., in_features)``.

        Where :func:`ttnet.contraction.ttm_strategy` prefers the dense route (or the modes do not
        split), ``W.T`` is built directly as the full TT tensor reshaped to ``(in, out)``: the
        same product without the reordering copy that a TT matrix's dense weight needs.
        """
        splits = self.splits
        if splits is not None:
            shapes = [(c.shape[0], b, a, c.shape[-1]) for c, (a, b) in zip(cores, splits)]
            rows = operator.index(math.prod(x.shape[:-1]))  # specialised under torch.compile
            if contraction.ttm_strategy(shapes, rows) == "tt":
                return contraction.ttm_matvec(self.matrix_cores(cores), x)
        return x @ self._dense_t(cores)

    def _dense_t(self, cores: Sequence[torch.Tensor]) -> torch.Tensor:
        return contraction.tt_full(list(cores)).reshape(self.in_features, self.out_features)

    def dense(self, cores: Sequence[torch.Tensor]) -> torch.Tensor:
        """The dense weight ``(out_features, in_features)`` (differentiable)."""
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
    """
    num_bonds = len(layout.mode_sizes) - 1
    if isinstance(tt_rank, tuple) and len(tt_rank) != num_bonds:
        raise ValueError(f"{name}: expected an int or {num_bonds} per-bond ranks for mode sizes "
                         f"{layout.mode_sizes}, received {tt_rank!r}")
    requested = (1, *ranks.normalize_max_rank(tt_rank, num_bonds), 1)
    if isinstance(layout, TensorLayout):
        return requested
    return ranks.useful_ranks(layout.mode_sizes, requested)
