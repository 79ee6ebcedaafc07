"""What a TTLinear keeps between calls: its contraction plans, and its built weight in eval mode.

Both are plain Python state (never in ``state_dict``), checked on every use, so a stale entry is
never used: a plan is keyed by the row count and checked against the cores' shapes and the cost
model; the weight is keyed by each core's storage address and version counter (which optimizer
steps, ``load_state_dict``, ``copy_`` and ``.to()`` all move) and holds detached views of the
cores it was built from, so their storage cannot be freed and its address reused while the key
refers to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ttnet import CostModel, compute_dtype

#: Row counts whose plans a layer keeps (then it starts again).
MAX_PLANS = 64


class LayerPlans:
    """Per-layer cache of plans (by row count) and of the eval-mode dense weight."""

    def __init__(self) -> None:
        self._plans: dict[int, tuple[Any, ...]] = {}
        self._weight: tuple[Any, ...] | None = None

    def expression(
        self, plan: Callable[[tuple, int, CostModel], Any], cores: list[torch.Tensor],
        rows: int, model: CostModel,
    ) -> Any:
        """``plan(shapes, rows, model)``, computed once per row count while shapes and model
        stay the same (under ``torch.compile`` always computed: it is a constant there)."""
        shapes = tuple(c.shape for c in cores)
        if torch.compiler.is_compiling():
            return plan(tuple(map(tuple, shapes)), rows, model)
        return self._entry(plan, shapes, rows, model)[2]

    def _entry(self, plan: Callable[[tuple, int, CostModel], Any], shapes: tuple, rows: int,
               model: CostModel) -> tuple[Any, ...]:
        """``(model, shapes, expression, built weight is no slower)`` for ``rows``."""
        cached = self._plans.get(rows)
        if cached is None or cached[0] is not model or cached[1] != shapes:
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()
            expression = plan(tuple(map(tuple, shapes)), rows, model)
            info = None if expression is None else expression.info
            prefer = info is None or model.seconds(info.product_cost) <= model.seconds(info.tt_cost)
            cached = self._plans[rows] = (model, shapes, expression, prefer)
        return cached

    def prefers_weight(
        self, plan: Callable[[tuple, int, CostModel], Any], cores: list[torch.Tensor],
        rows: int, model: CostModel,
    ) -> bool:
        """Whether one product with the built weight is modelled no slower than the plan."""
        return self._entry(plan, tuple(c.shape for c in cores), rows, model)[3]

    def weight(
        self, build: Callable[[list[torch.Tensor]], torch.Tensor], cores: list[torch.Tensor],
        x: torch.Tensor,
    ) -> torch.Tensor:
        """``build(cores in the compute dtype)``, rebuilt only when a core changed."""
        dtype = compute_dtype(x, cores[0])
        # .to() and .cuda() drop the weight (TTLinear._apply); any other new storage moves the
        # address, any in-place write the version
        key = (dtype, *((c.data_ptr(), c._version) for c in cores))
        cached = self._weight
        if cached is None or cached[0] != key:
            weight = build([c.to(dtype) for c in cores])
            cached = self._weight = (key, weight, [c.detach() for c in cores])
        return cached[1]

    def drop_weight(self) -> None:
        """Forget the built weight (training mode, or the parameters moved)."""
        self._weight = None
