"""TTLoRA: LoRETTA_rep, a LoRA update whose A and B factors are tensor trains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ttnet import compute_dtype

from ._branch import run_branch
from ._checks import finite_real, layer_input, positive_int, probability
from ._plans import BranchPlans
from .linear import TTLinear


def _split_shapes(shapes: object) -> tuple[object, object]:
    if shapes is None or isinstance(shapes, str):
        return shapes, shapes
    if isinstance(shapes, Sequence) and len(shapes) == 2:
        return shapes[0], shapes[1]
    raise ValueError(f"shapes: expected None, 'paper' or (A_shapes, B_shapes), received {shapes!r}")


class TTLoRAUpdate(nn.Module):
    """The update alone: ``scaling * B(A(dropout(x)))`` with ``scaling = lora_alpha / r``.

    ``lora_A`` (in -> r) and ``lora_B`` (r -> out) are bias-free :class:`TTLinear` layers. ``A``
    is variance matched as in :class:`TTLinear`; ``B``'s last core starts at zero, so the update
    is exactly zero at initialisation (and, as in :class:`TTAdapter`, only ``B``'s last core gets
    a gradient in the first step, every parameter from the second step on).
    :class:`TTLoRA` wraps a base layer around one of these; the LoRETTA integration keeps several
    named ones per layer.

    Args:
        in_features: input size of the adapted layer.
        out_features: output size of the adapted layer.
        r: LoRA rank (the size between ``A`` and ``B``).
        lora_alpha: numerator of the scaling ``lora_alpha / r``.
        tt_rank: TT rank of ``A`` and ``B`` (int or per bond), default 5 as in the paper.
        dropout: dropout probability on the input of ``A``.
        shapes: None (planned TT matrices), ``"paper"`` (LoRETTA's TT tensor shapes), or a pair
            ``(A_shapes, B_shapes)`` of anything :class:`TTLinear` accepts as ``shapes``.
        dtype: dtype of the parameters.
        device: device of the parameters.

    Example:
        >>> import torch
        >>> from ttnet_nn import TTLoRAUpdate
        >>> update = TTLoRAUpdate(768, 2304, r=8, lora_alpha=16, shapes="paper")
        >>> update(torch.randn(3, 768)).abs().max().item()
        0.0
        >>> update.scaling, update.delta_weight().shape
        (2.0, torch.Size([2304, 768]))
        >>> sum(p.numel() for p in update.parameters())  # A 580 + B 585, as in the paper
        1165
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        r: int,
        lora_alpha: float,
        *,
        tt_rank: int | Sequence[int] = 5,
        dropout: float = 0.0,
        shapes: object = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.r = positive_int("r", r)
        self.lora_alpha = finite_real("lora_alpha", lora_alpha)
        self.scaling = self.lora_alpha / self.r
        p = probability("dropout", dropout)
        self.lora_dropout = nn.Dropout(p) if p > 0 else nn.Identity()
        a_shapes, b_shapes = _split_shapes(shapes)
        factory = {"bias": False, "tt_rank": tt_rank, "dtype": dtype, "device": device}
        self.lora_A = TTLinear(self.in_features, self.r, shapes=a_shapes, **factory)
        self.lora_B = TTLinear(self.r, self.out_features, shapes=b_shapes, **factory)
        self._branch = BranchPlans()
        self._stages = ({"scale": self.scaling}, {})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise: variance-matched ``A``, ``B`` with a zero last core (update = 0).

        Example:
            >>> update = TTLoRAUpdate(16, 8, r=2, lora_alpha=2)
            >>> update.reset_parameters()
            >>> update.lora_B.cores[-1].count_nonzero().item()
            0
        """
        self.lora_A.reset_parameters()
        self.lora_B.reset_parameters()
        with torch.no_grad():
            self.lora_B.cores[-1].zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The update for ``x`` of shape ``(..., in_features)``: shape ``(..., out_features)``.

        Where both factors run the dense route (:mod:`ttnet_nn._branch`), ``s B (A x)`` is one
        autograd node; in eval mode without gradients it reuses the built factors.
        """
        layer_input(x, self.in_features)
        modules = self._modules  # not through nn.Module.__getattr__: this runs every step
        inputs = x
        dropout = modules["lora_dropout"]
        if self.training and isinstance(dropout, nn.Dropout):  # else the identity: not called
            inputs = dropout(x)
        y = run_branch(self._branch, (modules["lora_A"], modules["lora_B"]), self._stages, x,
                       inputs, False, self.training)
        if y is not None:
            return y
        # factor by factor, in the compute dtype between them; the scaling on the r-wide
        # intermediate (B has no bias): one small multiply
        h = self.lora_A(inputs.to(compute_dtype(inputs, self.lora_A.cores[0])))
        return self.lora_B(h * self.scaling).to(x.dtype)

    def _apply(self, fn: Any, recurse: bool = True) -> TTLoRAUpdate:
        self._branch.clear()  # .to(), .cuda(), .half() ...: the parameters move
        return super()._apply(fn, recurse)

    def delta_weight(self, fan_in_fan_out: bool = False) -> torch.Tensor:
        """The update as a dense matrix ``scaling * B @ A``, in the parameters' dtype.

        Computed in :func:`ttnet.compute_dtype` (at least float32); differentiable.

        Args:
            fan_in_fan_out: False for a weight stored ``(out_features, in_features)`` (as
                ``nn.Linear``), True for one stored ``(in_features, out_features)``.

        Example:
            >>> update = TTLoRAUpdate(10, 6, r=2, lora_alpha=4)
            >>> update.delta_weight().shape, update.delta_weight(fan_in_fan_out=True).shape
            (torch.Size([6, 10]), torch.Size([10, 6]))
            >>> update.delta_weight().count_nonzero().item()
            0
        """
        return self._delta(fan_in_fan_out).to(self.lora_A.cores[0].dtype)

    def _delta(self, fan_in_fan_out: bool) -> torch.Tensor:
        """``scaling * B @ A`` in the compute dtype, ``(out, in)`` or transposed."""
        wide = compute_dtype(self.lora_A.cores[0])
        delta = self.scaling * (self.lora_B.dense_weight(wide) @ self.lora_A.dense_weight(wide))
        return delta.T if fan_in_fan_out else delta

    def _checked_weight(self, weight: torch.Tensor, fan_in_fan_out: bool) -> None:
        expected = (
            (self.in_features, self.out_features)
            if fan_in_fan_out
            else (self.out_features, self.in_features)
        )
        if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != expected:
            shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight)
            raise ValueError(
                f"weight: expected shape {expected} for fan_in_fan_out={bool(fan_in_fan_out)} "
                f"(in_features={self.in_features}, out_features={self.out_features}), "
                f"received {shape}"
            )

    @torch.no_grad()
    def merge_into(self, weight: torch.Tensor, fan_in_fan_out: bool = False) -> None:
        """Add the update to ``weight`` in place.

        The sum is formed in :func:`ttnet.compute_dtype` of the weight and the update and
        rounded once to the weight's dtype (a bfloat16 weight is not rounded twice).

        Args:
            weight: the adapted layer's weight, ``(out, in)`` or, with ``fan_in_fan_out``,
                ``(in, out)``.
            fan_in_fan_out: how ``weight`` is stored (see :meth:`delta_weight`).

        Raises:
            ValueError: ``weight`` does not have the shape that ``fan_in_fan_out`` implies.

        Example:
            >>> update = TTLoRAUpdate(4, 3, r=2, lora_alpha=2)
            >>> weight = torch.zeros(3, 4)
            >>> update.merge_into(weight)
            >>> update.merge_into(torch.zeros(3, 4), fan_in_fan_out=True)
            Traceback (most recent call last):
            ...
            ValueError: weight: expected shape (4, 3) for fan_in_fan_out=True (in_features=4, out_features=3), received (3, 4)
        """
        self._checked_weight(weight, fan_in_fan_out)
        _add_in_place(weight, self._delta(fan_in_fan_out), 1.0)

    @torch.no_grad()
    def unmerge_from(self, weight: torch.Tensor, fan_in_fan_out: bool = False) -> None:
        """Subtract the update from ``weight`` in place (the inverse of :meth:`merge_into`).

        Example:
            >>> update = TTLoRAUpdate(4, 3, r=2, lora_alpha=2)
            >>> with torch.no_grad():
            ...     _ = update.lora_B.cores[-1].normal_()
            >>> weight = torch.zeros(3, 4)
            >>> update.merge_into(weight); update.unmerge_from(weight)
            >>> bool(weight.abs().max() < 1e-6)
            True
        """
        self._checked_weight(weight, fan_in_fan_out)
        _add_in_place(weight, self._delta(fan_in_fan_out), -1.0)

    def extra_repr(self) -> str:
        """Sizes and scaling."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
                f"scaling={self.scaling}")


def _add_in_place(weight: torch.Tensor, delta: torch.Tensor, sign: float) -> None:
    """``weight += sign * delta``, summed in the compute dtype and rounded once."""
    wide = compute_dtype(weight, delta)
    if weight.dtype == wide:
        weight.add_(delta.to(wide), alpha=sign)
    else:
        weight.copy_(weight.to(wide).add_(delta.to(wide), alpha=sign))


class TTLoRA(TTLoRAUpdate):
    """LoRETTA_rep: a frozen linear layer plus a TT LoRA update.

    ``y = base_layer(x) + (lora_alpha / r) * B(A(dropout(x)))``. The base layer's parameters are
    frozen (``requires_grad=False``); the output equals the base layer's at initialisation.
    :meth:`merge` folds the update into the base weight (then the forward is the base layer
    alone); :meth:`unmerge` subtracts it again, restoring the original weight up to float
    rounding (one addition and one subtraction per entry). Both are no-ops when already in the
    requested state.

    Args:
        base_layer: any module with a 2-D ``weight`` that maps ``(..., in)`` to ``(..., out)``:
            an ``nn.Linear`` (weight ``(out, in)``) or one whose weight is stored ``(in, out)``
            (``fan_in_fan_out=True``, e.g. GPT-2's ``Conv1D``; the caller knows which it has).
        r: LoRA rank.
        lora_alpha: numerator of the scaling ``lora_alpha / r``.
        tt_rank: TT rank of ``A`` and ``B``, default 5.
        dropout: dropout probability on the input of ``A``.
        fan_in_fan_out: True when the base weight is stored ``(in, out)``; ``in_features`` and
            ``out_features`` are read from the weight's shape accordingly.
        shapes: as for :class:`TTLoRAUpdate`.

    Raises:
        TypeError: ``base_layer`` has no 2-D tensor ``weight``.
        ValueError: ``fan_in_fan_out=True`` with an ``nn.Linear``, whose weight is ``(out, in)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from ttnet_nn import TTLoRA
        >>> _ = torch.manual_seed(0)
        >>> lora = TTLoRA(nn.Linear(768, 768), r=8, lora_alpha=16)
        >>> x = torch.randn(4, 768)
        >>> torch.equal(lora(x), lora.base_layer(x))
        True
        >>> with torch.no_grad():
        ...     _ = lora.lora_B.cores[-1].normal_()
        >>> y = lora(x)
        >>> lora.merge()
        >>> torch.allclose(lora(x), y, atol=1e-4), lora.merged
        (True, True)
    """

    def __init__(
        self,
        base_layer: nn.Module,
        r: int,
        lora_alpha: float,
        *,
        tt_rank: int | Sequence[int] = 5,
        dropout: float = 0.0,
        fan_in_fan_out: bool = False,
        shapes: object = None,
    ) -> None:
        weight = getattr(base_layer, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
            got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
            raise TypeError(f"base_layer: expected a module with a 2-D weight tensor, received "
                            f"{type(base_layer).__name__} with weight {got}")
        fan_in_fan_out = bool(fan_in_fan_out)
        if fan_in_fan_out and isinstance(base_layer, nn.Linear):
            raise ValueError("fan_in_fan_out: expected False for a torch.nn.Linear (its weight "
                             "is stored (out, in)), received True")
        out_features, in_features = weight.shape
        if fan_in_fan_out:
            in_features, out_features = out_features, in_features
        super().__init__(int(in_features), int(out_features), r, lora_alpha, tt_rank=tt_rank,
                         dropout=dropout, shapes=shapes, dtype=weight.dtype, device=weight.device)
        self.fan_in_fan_out = fan_in_fan_out
        self.base_layer = base_layer
        for param in base_layer.parameters():
            param.requires_grad_(False)
        self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``base_layer(x)`` plus the update (the base layer alone once merged)."""
        layer_input(x, self.in_features)
        result = self.base_layer(x)
        if result.shape[-1] != self.out_features:
            raise ValueError(
                f"base_layer: expected outputs of size out_features={self.out_features} (from "
                f"its weight with fan_in_fan_out={self.fan_in_fan_out}), received shape "
                f"{tuple(result.shape)}"
            )
        if self.merged:
            return result
        return result + super().forward(x).to(result.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update to the base layer's weight (no-op if already merged).

        Example:
            >>> lora = TTLoRA(nn.Linear(16, 8), r=2, lora_alpha=4)
            >>> lora.merge()
            >>> lora.merged
            True
        """
        if not self.merged:
            self.merge_into(self.base_layer.weight, self.fan_in_fan_out)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update from the base layer's weight again (no-op if not merged).

        Example:
            >>> lora = TTLoRA(nn.Linear(16, 8), r=2, lora_alpha=4)
            >>> before = lora.base_layer.weight.clone()
            >>> with torch.no_grad():
            ...     _ = lora.lora_B.cores[-1].normal_()
            >>> lora.merge(); lora.unmerge()
            >>> torch.allclose(lora.base_layer.weight, before, atol=1e-6), lora.merged
            (True, False)
        """
        if self.merged:
            self.unmerge_from(self.base_layer.weight, self.fan_in_fan_out)
            self.merged = False

    def extra_repr(self) -> str:
        """Sizes, scaling, layout of the base weight and merge state."""
        return f"{super().extra_repr()}, fan_in_fan_out={self.fan_in_fan_out}, merged={self.merged}"
