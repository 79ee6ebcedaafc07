"""Rank adaptation after training: re-round every TT factor of an adapter to smaller ranks.

The paper tunes TT ranks between 2 and 32. After training, each TT factor (adapter down/up
projections, LoRA A/B, the TT pooler) is recompressed with :func:`ttnet.rounding.round_cores`
under an error bound ``eps`` and/or a rank cap ``max_rank``; the report gives the parameters
saved, the largest relative error of a factor, and how much the model's output moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ttnet.rounding import round_cores
from ttnet_nn import TTLinear

from .layer import CONTAINERS
from .saving import replace_parameter

if TYPE_CHECKING:
    from .model import LorettaModel


@dataclass(frozen=True)
class RankReport:
    """What :func:`round_ranks` did.

    Attributes:
        factors: Number of TT factors rounded.
        params_before: Parameters of the adapter before.
        params_after: Parameters of the adapter after.
        max_factor_error: Largest relative Frobenius error of one factor's dense weight.
        output_change: ``||y_after - y_before|| / ||y_before||`` on the given inputs, or None.
    """

    factors: int
    params_before: int
    params_after: int
    max_factor_error: float
    output_change: float | None

    @property
    def params_saved(self) -> int:
        """``params_before - params_after``."""
        return self.params_before - self.params_after


def _adapter_params(model: nn.Module, adapter_name: str) -> int:
    total = 0
    for name, param in model.named_parameters():
        parts = name.split(".")
        if any(a in CONTAINERS and b == adapter_name for a, b in zip(parts, parts[1:])):
            total += param.numel()
    return total


def _tt_factors(model: nn.Module, adapter_name: str) -> list[tuple[str, TTLinear]]:
    found = []
    for name, module in model.named_modules():
        parts = name.split(".")
        held = any(a in CONTAINERS and b == adapter_name for a, b in zip(parts, parts[1:]))
        if held and isinstance(module, TTLinear):
            found.append((name, module))
    return found


def _output(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    out: Any = model(**inputs)
    value = getattr(out, "logits", None)
    if value is None:
        value = out[0] if isinstance(out, (tuple, list)) else out.last_hidden_state
    return value.detach().double()


def round_ranks(
    peft_model: LorettaModel,
    eps: float | None = None,
    max_rank: int | None = None,
    inputs: dict[str, torch.Tensor] | None = None,
) -> RankReport:
    """Round every TT factor of the active adapter of ``peft_model`` in place.

    Args:
        peft_model: A :class:`~loretta.LorettaModel`.
        eps: Relative Frobenius error allowed per factor (``ttnet``'s TT-SVD rule).
        max_rank: Largest TT rank per bond.
        inputs: Model inputs (keyword arguments) on which to measure the output change.

    Returns:
        A :class:`RankReport`. The rounded adapter saves and reloads as usual (the loader
        takes the ranks from the file).

    Example:
        >>> import torch
        >>> from transformers import BertConfig, BertModel
        >>> from loretta import LorettaRepConfig, get_peft_model
        >>> _ = torch.manual_seed(0)
        >>> bert = BertModel(BertConfig(hidden_size=64, num_hidden_layers=1,
        ...     num_attention_heads=4, intermediate_size=64, vocab_size=50))
        >>> model = get_peft_model(bert, LorettaRepConfig(r=8, tensor_rank=6))
        >>> report = model.round_ranks(max_rank=2, inputs={"input_ids": torch.tensor([[1, 2]])})
        >>> report.params_saved > 0, report.factors
        (True, 4)
    """
    if eps is None and max_rank is None:
        raise ValueError("eps, max_rank: expected at least one of them, received neither")
    model = peft_model.base_model
    name = peft_model.active_adapter
    was_training = model.training
    model.eval()
    before = None
    with torch.no_grad():
        if inputs is not None:
            before = _output(model, inputs)
        params_before = _adapter_params(model, name)
        factors = _tt_factors(model, name)
        worst = 0.0
        for path, layer in factors:
            shapes = [c.shape for c in layer.cores]
            flat = [c.detach().double().reshape(c.shape[0], -1, c.shape[-1]) for c in layer.cores]
            new, error = round_cores(flat, eps=eps, max_rank=max_rank)
            worst = max(worst, error)
            for k, (core, old) in enumerate(zip(new, shapes)):
                value = core.reshape(core.shape[0], *old[1:-1], core.shape[-1])
                replace_parameter(model, f"{path}.cores.{k}", value)
        change = None
        if before is not None:
            after = _output(model, inputs)
            change = float(torch.linalg.vector_norm(after - before)
                           / torch.linalg.vector_norm(before))
    model.train(was_training)
    return RankReport(len(factors), params_before, _adapter_params(model, name), worst, change)
