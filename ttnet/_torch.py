"""Everything torch-specific in ttnet, behind the backend door (:func:`ttnet._backend.array_ops`).

The door imports this file only once it has seen a torch tensor, so ``import ttnet`` never
imports torch. What is here:

- :class:`TorchOps`: torch's own ``tensordot``, ``permute`` and ``einsum``; the einsum call with
  a precomputed path (``torch._VF.einsum(..., path=...)``, what ``torch.einsum`` does after its
  own per-call ``opt_einsum`` search; ``None`` under ``torch.compile``, which cannot trace the
  private call, and where this torch lacks it); the device kind that selects a cost model.
- :class:`DenseProducts`: the dense route (build ``W`` from the cores, one matrix product, plus a
  bias; or a sequence of such products, as a LoRA update's ``B (A x)``) as one autograd node. Recording the build would add an autograd node per core product
  and reshape; its backward here is written out instead: ``dx = dy W``, ``dW = dy^T x``, then two
  matrix products per core (:func:`ttnet.dense.chain_backward`). Used where a gradient is
  needed outside ``torch.compile`` (which traces the plain operations and fuses them itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ttnet import dense
from ttnet._backend import ArrayOps


def _rows(t: torch.Tensor) -> torch.Tensor:
    return t if t.ndim == 2 else t.reshape(-1, t.shape[-1])


class DenseProducts(torch.autograd.Function):
    """A sequence of dense products ``h -> (h @ W_i.T or h @ W_i) * scale_i``, then ``+ bias``,
    each ``W_i`` built from its cores: one autograd node, its backward written out."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, bias: torch.Tensor | None,
        products: tuple[dense.Product, ...], *cores: torch.Tensor,
    ) -> torch.Tensor:
        """Build each ``W`` (keeping the chain's prefixes for the backward) and apply it."""
        h, start, saved, last = x, 0, [], len(products) - 1
        for i, (spec, transpose, scale) in enumerate(products):
            own = cores[start : start + len(spec.shapes)]
            start += len(spec.shapes)
            mats = dense.matrices(own, spec.steps)
            res, prefixes = dense.chain(mats, spec.steps, keep=True)
            w = dense.to_matrix(res, spec)
            saved += [h, w, *prefixes, *mats]
            plain = scale == 1.0 and i == last
            h = F.linear(h, w if transpose else w.T, bias if plain else None)
            if not plain:
                h = h.mul_(scale) if scale != 1.0 else h
                if i == last and bias is not None:
                    h = h.add_(bias)
        ctx.save_for_backward(*saved)
        ctx.products = products
        ctx.core_shapes = [c.shape for c in cores]
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Gradients of ``x``, ``bias`` and the cores (as their own shapes)."""
        saved, products, need = ctx.saved_tensors, ctx.products, ctx.needs_input_grad
        stages, start, at = [], 0, 0
        for spec, _, _ in products:
            d = len(spec.shapes)
            stages.append((saved[at], saved[at + 1], saved[at + 2 : at + d + 1],
                           saved[at + d + 1 : at + 2 * d + 1], start))
            at += 2 * d + 1
            start += d
        grads: list[torch.Tensor | None] = [None] * len(ctx.core_shapes)
        g = dy.contiguous()  # e.g. expanded by a sum(): copied once, not by every product
        dbias = _rows(g).sum(0) if need[1] else None
        for i in range(len(products) - 1, -1, -1):
            (spec, transpose, scale), (h, w, prefixes, mats, first) = products[i], stages[i]
            if scale != 1.0:
                g = g * scale
            d = len(spec.shapes)
            if any(need[3 + first : 3 + first + d]):
                g2, h2 = _rows(g), _rows(h)
                dw = g2.T @ h2 if transpose else h2.T @ g2
                chain = dense.chain_backward(dense.from_matrix(dw, spec), mats, prefixes,
                                             spec.steps)
                for k, grad in enumerate(chain):
                    grads[first + k] = grad.reshape(ctx.core_shapes[first + k])
            if i > 0 or need[0]:
                g = g @ w if transpose else g @ w.T
        return (g if need[0] else None, dbias, None, *grads)


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
        """The dense route: one :class:`DenseProducts` node when a gradient is needed."""
        cores = [c for _, own in stages for c in own]
        if (
            torch.is_grad_enabled()
            and not torch.compiler.is_compiling()
            and (
                x.requires_grad
                or any(c.requires_grad for c in cores)
                or (bias is not None and bias.requires_grad)
            )
        ):
            return DenseProducts.apply(x, bias, tuple(p for p, _ in stages), *cores)
        return super().dense_products(x, stages, bias)
