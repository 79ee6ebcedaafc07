"""The cost model that picks how a TT-matrix product is evaluated.

FLOPs alone mislead: with many rows the TT network is a chain of thin products (inner sizes
``n_k * r``, a few dozen) whose intermediates are as large as the input or larger, so its time
is set by memory traffic, while the dense route is one large, compute-bound matrix product plus
building a ``W`` that is tiny for adapter and LoRA factors; with few rows, fixed per-call costs
(Python, dispatch, autograd) decide. So each route's work is counted as a :class:`Cost` -- FLOPs,
array elements read and written (operands, results and the copies that ``tensordot`` and
``permute`` make, counted from the actual axis orders) and kernel calls -- and a
:class:`CostModel` turns that into modelled forward+backward seconds:
``seconds_per_flop * narrow_flops + seconds_per_element * elements + seconds_per_call * calls
+ seconds_per_fused_call * fused_calls`` (fused calls: those inside one autograd node whose
backward is written out, as the dense route runs on torch).

``narrow_flops`` charges a matrix product whose inner or output width is below
:data:`NARROW_WIDTH` in proportion (a product ``(m, 768) @ (768, 5)`` runs at about 5/8 of the
rate of ``(m, 768) @ (768, 8)`` per FLOP on a CPU with 8 float32 lanes).

A :class:`CostModel` is a frozen value: the constants of one kind of device, and the executor
rule (``einsum_min_seconds``, below). It is part of the key under which contraction plans are
cached (:func:`ttnet.ttm_expression`), so a different model never reuses a plan chosen by
another. :func:`default_cost_model` returns the instance for a device kind; pass your own
(``dataclasses.replace(default_cost_model(), ...)``, or one refitted with
``python benchmarks/bench_layers.py --calibrate``) to any contraction function.

Executors (:meth:`CostModel.choose`): the dense route ("build ``W``, then one matrix product")
when it is modelled no slower than the TT network; else the TT network, run as one einsum call
with the cached path when its modelled time is at least ``einsum_min_seconds`` (torch's C++
pairwise steps copy less in forward and backward than ``tensordot`` on large networks, but cost
about 0.1 ms more per call), else as precompiled ``tensordot`` steps.

FLOPs count a multiply-add as 2, as ``opt_einsum`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

__all__ = ["COST_MODELS", "Cost", "CostModel", "default_cost_model", "fused"]

#: Vector width (float32 lanes) below which a matrix product's FLOPs count as more expensive.
NARROW_WIDTH = 8

#: The executors a :class:`CostModel` chooses between.
EXECUTORS = ("steps", "einsum", "dense")


class Cost(NamedTuple):
    """The work of one route of a TT-matrix product (forward pass), as counts.

    Attributes:
        flops: Floating-point operations (a multiply-add counts 2, as in ``opt_einsum``).
        narrow_flops: The FLOPs of each matrix product ``(m, k) @ (k, n)`` scaled by
            ``NARROW_WIDTH / min(NARROW_WIDTH, k, n)``.
        elements: Array elements read and written, including the copies that non-contiguous
            ``tensordot`` operands and ``permute``-then-``reshape`` make.
        calls: Operations recorded one by one (matrix products, copies; each a Python call, a
            dispatch and, with gradients, an autograd node).
        fused_calls: Operations run inside one recorded node whose backward is written out
            (the dense route on torch: build, reorder and product), cheaper each.

    Example:
        >>> matmul_cost(4, 2, 8) + copy_cost(32)
        Cost(flops=128, narrow_flops=512, elements=120, calls=2, fused_calls=0)
        >>> fused(matmul_cost(4, 2, 8) + copy_cost(32)).calls
        1
    """

    flops: int
    narrow_flops: int
    elements: int
    calls: int
    fused_calls: int = 0

    def __add__(self, other: object) -> Cost:  # type: ignore[override]
        """Field-wise sum (the cost of running two pieces of work)."""
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(*(a + b for a, b in zip(self, other)))


NO_COST = Cost(0, 0, 0, 0)


def fused(cost: Cost) -> Cost:
    """``cost`` run as one recorded node: its calls become fused calls, plus one call.

    Example:
        >>> fused(Cost(10, 10, 5, 3))
        Cost(flops=10, narrow_flops=10, elements=5, calls=1, fused_calls=3)
    """
    return cost._replace(calls=1, fused_calls=cost.fused_calls + cost.calls)


def matmul_cost(m: int, k: int, n: int) -> Cost:
    """Cost of one matrix product ``(m, k) @ (k, n)``.

    Example:
        >>> matmul_cost(100, 768, 8).narrow_flops == matmul_cost(100, 768, 8).flops
        True
        >>> matmul_cost(100, 768, 4).narrow_flops == 2 * matmul_cost(100, 768, 4).flops
        True
    """
    flops = 2 * m * k * n
    narrow = flops * NARROW_WIDTH // min(NARROW_WIDTH, k, n)
    return Cost(flops, narrow, m * k + k * n + m * n, 1)


def copy_cost(size: int) -> Cost:
    """Cost of copying ``size`` elements (one read, one write, one call).

    Example:
        >>> copy_cost(10)
        Cost(flops=0, narrow_flops=0, elements=20, calls=1, fused_calls=0)
    """
    return Cost(0, 0, 2 * size, 1)


def build_cost(shapes: tuple[tuple[int, ...], ...], reorder: bool = True) -> Cost:
    """Work of building ``W`` from TT-matrix cores, core by core, and, with ``reorder``,
    gathering its entries into the matrix's order once (where the chain's interleaved order is
    not already it).

    Example:
        >>> build_cost(((1, 2, 3, 4), (4, 5, 6, 1))).flops  # (6, 4) @ (4, 30)
        1440
        >>> build_cost(((1, 2, 3, 4), (4, 5, 6, 1)), reorder=False).calls  # the product alone
        1
    """
    cost = NO_COST
    prefix = shapes[0][1] * shapes[0][2]
    for r, m, n, r2 in shapes[1:]:
        cost += matmul_cost(prefix, r, m * n * r2)
        prefix *= m * n
    if reorder:  # (i1 j1 i2 j2 ...) -> (j1 j2 ... i1 i2 ...), one gather
        cost += copy_cost(prefix)
    return cost


@dataclass(frozen=True)
class CostModel:
    """Modelled forward+backward seconds of a route's :class:`Cost` on one kind of device.

    Frozen and hashable: it is part of the cache key of contraction plans.

    Attributes:
        device_kind: The device kind the constants were fitted on (``"cpu"``, ``"cuda"``...).
        seconds_per_flop: Seconds per narrowness-weighted FLOP.
        seconds_per_element: Seconds per array element (any float dtype) read or written.
        seconds_per_call: Fixed seconds per recorded call of the forward (Python, dispatch,
            autograd node; forward and backward).
        seconds_per_fused_call: Fixed seconds per call inside a fused node (None: as
            ``seconds_per_call``).
        einsum_min_seconds: Modelled seconds from which a TT network runs as one einsum call
            with the cached path instead of the ``tensordot`` steps (``math.inf``: never).
        source: Where the constants come from (shown in reports).

    Example:
        >>> model = CostModel("cpu", 1.0, 10.0, 100.0, seconds_per_fused_call=1000.0)
        >>> model.seconds(Cost(flops=4, narrow_flops=8, elements=3, calls=2, fused_calls=1))
        1238.0
    """

    device_kind: str
    seconds_per_flop: float
    seconds_per_element: float
    seconds_per_call: float
    seconds_per_fused_call: float | None = None
    einsum_min_seconds: float = math.inf
    source: str = "user"

    def __post_init__(self) -> None:
        """Check that the constants are finite and non-negative (the threshold may be inf)."""
        if not isinstance(self.device_kind, str) or not self.device_kind:
            raise ValueError(f"device_kind: expected a non-empty string, got {self.device_kind!r}")
        if self.seconds_per_fused_call is None:
            object.__setattr__(self, "seconds_per_fused_call", self.seconds_per_call)
        for name in ("seconds_per_flop", "seconds_per_element", "seconds_per_call",
                     "seconds_per_fused_call"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value >= 0
            ):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        threshold = self.einsum_min_seconds
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
            threshold >= 0
        ):
            raise ValueError(f"einsum_min_seconds: expected a number >= 0 or inf, got "
                             f"{threshold!r}")

    def seconds(self, cost: Cost) -> float:
        """Modelled forward+backward seconds of ``cost``.

        Example:
            >>> default_cost_model().seconds(copy_cost(0)) > 0  # one call
            True
        """
        return (
            self.seconds_per_flop * cost.narrow_flops
            + self.seconds_per_element * cost.elements
            + self.seconds_per_call * cost.calls
            + self.seconds_per_fused_call * cost.fused_calls  # type: ignore[operator]
        )

    def choose(self, tt: Cost, dense: Cost) -> str:
        """The executor for a product whose routes cost ``tt`` and ``dense``.

        ``"dense"`` when the dense route is modelled no slower, else ``"einsum"`` when the TT
        network's modelled time is at least :attr:`einsum_min_seconds`, else ``"steps"``.

        Example:
            >>> flops_only = CostModel("cpu", 1.0, 0.0, 0.0, einsum_min_seconds=100.0)
            >>> flops_only.choose(matmul_cost(2, 2, 2), matmul_cost(4, 4, 4))
            'steps'
            >>> flops_only.choose(matmul_cost(8, 8, 8), matmul_cost(4, 4, 4))
            'dense'
            >>> flops_only.choose(matmul_cost(4, 4, 8), matmul_cost(8, 8, 8))
            'einsum'
        """
        t = self.seconds(tt)
        if self.seconds(dense) <= t:
            return "dense"
        return "einsum" if t >= self.einsum_min_seconds else "steps"


#: The default cost model of each device kind. ``"cpu"``: non-negative least-squares fit
#: (relative error) to 214 forward+backward times (process CPU time) of both routes on adapter,
#: LoRA and square TT layers from 8 to 4,096 rows (float32, torch, one thread, the project's
#: shared 2-core AVX-512 box; ``benchmarks/RESULTS.md``); the einsum threshold is the earlier
#: measurement on TTLinear 4096. ``"cuda"``: not fitted (no GPU was available);
#: order-of-magnitude constants from a datacenter GPU's datasheet (about 50 TFLOP/s, 4 TB/s,
#: 10 us per kernel launch, three kernels per recorded call) -- refit with
#: ``bench_layers.py --calibrate --device cuda``.
COST_MODELS: Mapping[str, CostModel] = MappingProxyType({
    "cpu": CostModel("cpu", 2.19e-11, 1.35e-9, 6.24e-5, seconds_per_fused_call=1.83e-5,
                     einsum_min_seconds=3e-3, source="fitted, 1 CPU thread"),
    "cuda": CostModel("cuda", 6e-14, 3e-12, 3e-5, seconds_per_fused_call=1e-5,
                      einsum_min_seconds=math.inf, source="datasheet estimate, not fitted"),
})


def default_cost_model(device_kind: str = "cpu") -> CostModel:
    """The default :class:`CostModel` for ``device_kind`` (the CPU one for unknown kinds).

    Example:
        >>> default_cost_model("cpu") is COST_MODELS["cpu"]
        True
        >>> default_cost_model("mps").device_kind
        'cpu'
    """
    return COST_MODELS.get(device_kind, COST_MODELS["cpu"])
