"""Everything torch-specific in ttnet, behind the backend door (:func:`ttnet._backend.array_ops`).

The door imports this file only once it has seen a torch tensor, so ``import ttnet`` never
imports torch. What is here: :class:`TorchOps`, torch's own ``tensordot``, ``permute`` and
``einsum``; the einsum call with a precomputed path (``torch._VF.einsum(..., path=...)``, what
``torch.einsum`` does after its own per-call ``opt_einsum`` search; ``None`` under
``torch.compile``, which cannot trace the private call, and where this torch lacks it); the
device kind that selects a cost model; and the dense route, which runs as one autograd node
with a written-out backward (:mod:`ttnet._torch_products`) where a gradient is needed outside
``torch.compile`` (which traces the plain operations and fuses them itself); and the TT-SVD's
torch kernels (R-only QR, the residual in one BLAS call, sums of squares by one dot product).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch

from ttnet import dense
from ttnet._backend import ArrayOps
from ttnet._torch_products import ProductsPlan, Stage, factor, run_products

__all__ = ["TorchOps", "r_factor", "residual", "sum_squares"]


@lru_cache(maxsize=256)
def _sequence_plan(products: tuple[dense.Product, ...], core_shapes: tuple,
                   bias: bool) -> ProductsPlan:
    last = len(products) - 1
    return ProductsPlan(tuple(
        Stage(factor(p.spec, p.transpose, shapes), bias=bias and i == last, scale=p.scale)
        for i, (p, shapes) in enumerate(zip(products, core_shapes))
    ))


class TorchOps(ArrayOps):
    """:class:`ttnet._backend.ArrayOps` with torch's own functions."""

    def __init__(self) -> None:
        super().__init__(None)

    def tensordot(self, a: Any, b: Any, axes: tuple[tuple[int, ...], ...]) -> Any:
        """``torch.tensordot`` over the given axis pairs."""
        return torch.tensordot(a, b, dims=axes)  # type: ignore[arg-type]

    def permute(self, x: Any, axes: tuple[int, ...]) -> Any:
        """``x.permute(axes)`` (a view)."""
        return x.permute(axes)

    def einsum(self, equation: str, operands: Sequence[Any]) -> Any:
        """``torch.einsum``."""
        return torch.einsum(equation, *operands)

    def einsum_path(self, equation: str, operands: Sequence[Any], path: Sequence[int]) -> Any:
        """``torch._VF.einsum`` along ``path``; None under ``torch.compile`` or where unsupported."""
        einsum = getattr(getattr(torch, "_VF", None), "einsum", None)
        if einsum is None or torch.compiler.is_compiling():
            return None
        try:
            return einsum(equation, list(operands), path=list(path))
        except TypeError:  # no ``path`` keyword in this torch version
            return None

    def device_kind(self, x: Any) -> str:
        """``x.device.type``: ``"cpu"``, ``"cuda"``, ``"mps"``..."""
        return x.device.type

    def default_float_dtype(self) -> Any:
        """``torch.get_default_dtype()``."""
        return torch.get_default_dtype()

    def astype(self, x: Any, dtype: Any) -> Any:
        """``x.to(dtype)`` (differentiable)."""
        return x.to(dtype)

    def dense_products(
        self, x: Any, stages: Sequence[tuple[dense.Product, Sequence[Any]]], bias: Any
    ) -> Any:
        """The dense route: one :class:`Products` node when a gradient is needed."""
        if torch.compiler.is_compiling():
            return super().dense_products(x, stages, bias)
        plan = _sequence_plan(tuple(p for p, _ in stages),
                              tuple(tuple(tuple(c.shape) for c in own) for _, own in stages),
                              bias is not None)
        tensors = [c for _, own in stages for c in own]
        return run_products(plan, x, tensors if bias is None else [*tensors, bias])



def r_factor(a: torch.Tensor) -> torch.Tensor:
    """``torch.linalg.qr(mode="r")``'s ``r`` (the array API has no R-only mode)."""
    return torch.linalg.qr(a, mode="r")[1]


def residual(x: torch.Tensor, f: torch.Tensor, y: torch.Tensor,
             work: torch.Tensor | None) -> torch.Tensor:
    """``x - f @ y`` in one BLAS call (``addmm``, beta = 1), into ``work`` when given."""
    return torch.addmm(x, f, y, alpha=-1, out=work)


def sum_squares(a: torch.Tensor) -> float:
    """``sum(|a|**2)`` by one dot product."""
    flat = a.reshape(-1)
    return float(torch.vdot(flat, flat).real) if flat.is_complex() else float(flat @ flat)
