"""What the layers keep between calls: contraction plans, fused plans and, in eval mode, the built
factor matrices.

All of it is plain Python state (never in ``state_dict``, dropped on copy and pickle), checked
on every use, so a stale entry is never used:

- :class:`LayerPlans` (one per :class:`ttnet_nn.TTLinear`): per row count the contraction plan
  (checked against the cores' shapes and the cost model) and, where that plan runs the dense
  route, the :class:`ttnet._torch.Factor` that builds the layer's matrix; in eval mode the built
  matrix ``V`` (``in x out``), keyed by each core's storage address and version counter (which
  optimizer steps, ``load_state_dict``, ``copy_`` and ``.to()`` all move), holding detached
  views of the cores it was built from so their storage cannot be freed and its address reused
  while the key refers to it.
- :class:`BranchPlans` (one per adapter or LoRA update): per row count the
  :class:`ttnet._torch.ProductsPlan` that runs all of a module's factors as one autograd node,
  keyed by the identity of the tensors it was made for (held, so no identity is reused).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ttnet import CostModel
from ttnet._torch_products import Factor, ProductsPlan, Stage, factor

#: Row counts whose plans a layer keeps (then it starts again).
MAX_PLANS = 64


class LayerPlans:
    """Per-layer cache of plans (by row count) and of the eval-mode matrix ``V``."""

    def __init__(self) -> None:
        self._plans: dict[int, tuple[Any, ...]] = {}
        self._weight: tuple[Any, ...] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}  # a copy or an unpickled layer plans again

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def expression(
        self, plan: Callable[[tuple, int, CostModel], Any], cores: list[torch.Tensor],
        rows: int, model: CostModel,
    ) -> Any:
        """``plan(shapes, rows, model)``, computed once per row count while shapes and model
        stay the same (under ``torch.compile`` always computed: it is a constant there)."""
        shapes = tuple(c.shape for c in cores)
        if torch.compiler.is_compiling():
            return plan(tuple(map(tuple, shapes)), rows, model)
        return self.entry(plan, cores, rows, model)[2]

    def entry(self, plan: Callable[[tuple, int, CostModel], Any], cores: list[torch.Tensor],
              rows: int, model: CostModel, bias: bool | None = None) -> tuple[Any, ...]:
        """``(model, shapes, expression, built matrix is no slower, Factor, its one-stage
        ProductsPlan)`` for ``rows``. Factor and plan (the dense route as one node, what the
        caller runs where the expression's executor is ``"dense"``) are None unless ``bias``
        is given (the caller's layout runs the expression as it is; True: with a bias)."""
        shapes = tuple(c.shape for c in cores)
        cached = self._plans.get(rows)
        if cached is None or cached[0] is not model or cached[1] != shapes:
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()
            expression = plan(tuple(map(tuple, shapes)), rows, model)
            info = None if expression is None else expression.info
            prefer = info is None or model.seconds(info.product_cost) <= model.seconds(info.tt_cost)
            built = single = None
            if bias is not None and info is not None:
                built = factor(expression.spec, info.kind == "matvec", tuple(map(tuple, shapes)))
                single = ProductsPlan((Stage(built, bias=bias),))
            cached = self._plans[rows] = (model, shapes, expression, prefer, built, single)
        return cached

    def matrix(
        self, build: Callable[[list[torch.Tensor]], torch.Tensor], cores: list[torch.Tensor],
        dtype: torch.dtype,
    ) -> torch.Tensor:
        """``V = build(cores in dtype).T`` (contiguous, ``in x out``), rebuilt only when a core
        changed. ``build`` returns the dense weight ``(out, in)``."""
        # .to() and .cuda() drop the matrix (TTLinear._apply); any other new storage moves the
        # address, any in-place write the version
        key = [dtype]
        for c in cores:
            key += (c.data_ptr(), c._version)
        cached = self._weight
        if cached is None or cached[0] != key:
            weight = build([c.to(dtype) for c in cores]).T.contiguous()
            cached = self._weight = (key, weight, [c.detach() for c in cores])
        return cached[1]

    def drop_weight(self) -> None:
        """Forget the built matrix (training mode, or the parameters moved)."""
        self._weight = None


class BranchPlans:
    """Per-module cache of the :class:`ProductsPlan` that runs several TT factors as one node."""

    def __init__(self) -> None:
        self._plans: dict[tuple[int, bool, bool], tuple[Any, ...]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def get(self, key: tuple[Any, ...], held: Sequence[object],
            make: Callable[[], ProductsPlan | None]) -> ProductsPlan | None:
        """The plan for ``key`` and these exact objects (the tensors and cost models it is made
        for, held so that no identity is reused), made by ``make`` once (None: the factors do
        not all run the dense route)."""
        ids = tuple(map(id, held))
        cached = self._plans.get(key)
        if cached is None or cached[0] != ids:
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()
            cached = self._plans[key] = (ids, make(), list(held))
        return cached[1]

    def clear(self) -> None:
        """Forget every plan (the parameters moved or changed)."""
        self._plans.clear()


def products_plan(factors: Sequence[Factor | None], stages: Sequence[dict[str, Any]],
                  residual: bool = False) -> ProductsPlan | None:
    """A :class:`ProductsPlan` of ``factors`` with the given stage options, or None if any
    factor is None (it does not run the dense route)."""
    if any(f is None for f in factors):
        return None
    return ProductsPlan(tuple(Stage(f, **options) for f, options in zip(factors, stages)),
                        residual=residual)
