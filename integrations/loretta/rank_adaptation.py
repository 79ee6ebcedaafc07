"""Rank adaptation after training: re-round every TT factor of an adapter to smaller ranks.

The paper tunes TT ranks between 2 and 32. After training, each TT factor the layers hold for
an adapter (adapter projections, LoRA A/B, the TT pooler) is recompressed with
:func:`ttnet.rounding.round_cores` (``eps`` and/or ``max_rank``); the new ranks go into the
adapter's config (``tt_ranks``), so the rounded adapter saves and loads like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ttnet.rounding import round_cores
from ttnet_nn import TTLinear

from .layer import LorettaLayer, factor_key, replace_factor, tt_factors


@dataclass(frozen=True)
class RankReport:
    """What :func:`round_ranks` did.

    Attributes:
        factors: Number of TT factors rounded.
        params_before: Parameters of the adapter's TT modules before.
        params_after: Parameters of the adapter's TT modules after.
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


def _root(model: nn.Module) -> nn.Module:
    """The transformers model (a PEFT wrapper's training flag need not be its model's)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _count(layers: list[tuple[str, LorettaLayer]], adapter_name: str) -> int:
    return sum(p.numel() for _, layer in layers for p in layer.adapters[adapter_name].parameters())


def _output(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    out: Any = model(**inputs)
    value = getattr(out, "logits", None)
    if value is None:
        value = out[0] if isinstance(out, (tuple, list)) else out.last_hidden_state
    return value.detach().double()


def _rounded(factor: TTLinear, eps: float | None, max_rank: int | None) -> tuple[TTLinear, float]:
    shapes = [c.shape for c in factor.cores]
    flat = [c.detach().double().reshape(c.shape[0], -1, c.shape[-1]) for c in factor.cores]
    cores, error = round_cores(flat, eps=eps, max_rank=max_rank)
    inner = tuple(int(c.shape[-1]) for c in cores[:-1]) or 1
    first = factor.cores[0]
    new = TTLinear(factor.in_features, factor.out_features, bias=factor.bias is not None,
                   tt_rank=inner, shapes=factor.layout, dtype=first.dtype, device=first.device)
    for param, core, shape in zip(new.cores, cores, shapes):
        param.data = core.reshape(core.shape[0], *shape[1:-1], core.shape[-1]).to(first.dtype)
    if factor.bias is not None:
        new.bias.data = factor.bias.detach().clone()
    new.requires_grad_(first.requires_grad)
    return new.train(factor.training), error


def round_ranks(
    model: nn.Module,
    adapter_name: str,
    eps: float | None = None,
    max_rank: int | None = None,
    inputs: dict[str, torch.Tensor] | None = None,
) -> RankReport:
    """Round every TT factor of adapter ``adapter_name`` of ``model`` in place.

    Args:
        model: A PEFT model holding LoRETTA adapters (from ``loretta`` or ``peft``), or a
            transformers model they were loaded into.
        adapter_name: The adapter to round.
        eps: Relative Frobenius error allowed per factor (``ttnet``'s TT-SVD rule).
        max_rank: Largest TT rank per bond.
        inputs: Model inputs (keyword arguments) on which to measure the output change.

    Example:
        >>> import torch
        >>> from transformers import BertConfig, BertModel
        >>> from loretta import LorettaRepConfig, get_peft_model
        >>> from loretta.rank_adaptation import round_ranks
        >>> _ = torch.manual_seed(0)
        >>> bert = BertModel(BertConfig(hidden_size=64, num_hidden_layers=1,
        ...     num_attention_heads=4, intermediate_size=64, vocab_size=50))
        >>> model = get_peft_model(bert, LorettaRepConfig(r=8, tensor_rank=6))
        >>> report = round_ranks(model, "default", max_rank=2,
        ...                      inputs={"input_ids": torch.tensor([[1, 2]])})
        >>> report.params_saved > 0, report.factors
        (True, 4)
    """
    if eps is None and max_rank is None:
        raise ValueError("eps, max_rank: expected at least one of them, received neither")
    config = model.peft_config[adapter_name]
    layers = [(key, layer) for key, layer in _root(model).named_modules()
              if isinstance(layer, LorettaLayer) and adapter_name in layer.adapters]
    was_training = _root(model).training
    _root(model).eval()
    before = None
    ranks: dict[str, list[int]] = {}
    worst = 0.0
    with torch.no_grad():
        if inputs is not None:
            before = _output(model, inputs)
        params_before = _count(layers, adapter_name)
        for key, layer in layers:
            module = layer.adapters[adapter_name]
            for name, factor in tt_factors(module).items():
                new, error = _rounded(factor, eps, max_rank)
                worst = max(worst, error)
                module = replace_factor(module, name, new)
                if len(new.cores) > 1:
                    ranks[factor_key(key, name)] = list(new.tt_ranks[1:-1])
            layer.adapters[adapter_name] = module
        config.tt_ranks = {**(config.tt_ranks or {}), **ranks}
        change = None
        if before is not None:
            after = _output(model, inputs)
            change = float(torch.linalg.vector_norm(after - before)
                           / torch.linalg.vector_norm(before))
    _root(model).train(was_training)
    factors = sum(len(tt_factors(layer.adapters[adapter_name])) for _, layer in layers)
    return RankReport(factors, params_before, _count(layers, adapter_name), worst, change)
