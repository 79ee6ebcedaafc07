"""LoRETTA's tuner layers: PEFT ``BaseTunerLayer`` subclasses that own their adapters.

Each layer wraps one module of the base model and keeps its adapters in a ``ModuleDict`` keyed
by adapter name (PEFT's ``adapter_layer_names``), so PEFT asks the layer which tensors belong to
which adapter. The adapters are ``ttnet_nn`` modules, which own the merge arithmetic. GPT-2's
``Conv1D`` (weight ``(in, out)``) is recognised here and passed on as ``fan_in_fan_out``.

Example:
    >>> import torch
    >>> from loretta import LorettaRepConfig
    >>> from loretta.layer import TTLoRALayer
    >>> layer = TTLoRALayer(torch.nn.Linear(16, 12))
    >>> layer.update_layer("default", LorettaRepConfig(r=4, tensor_rank=2), "dense")
    >>> layer.set_adapter("default")
    >>> x = torch.randn(2, 16)
    >>> torch.equal(layer(x), layer.base_layer(x))  # the update starts at zero
    True
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from peft.tuners.tuners_utils import BaseTunerLayer, check_adapters_to_merge
from torch import nn
from transformers.pytorch_utils import Conv1D

from ttnet_nn import TTAdapter, TTLinear, TTLoRAUpdate
from ttnet_nn.presets import paper_pooler_shape

from .config import LorettaConfig
from .mapping import position_of


def linear_features(module: nn.Module) -> tuple[int, int, bool]:
    """``(in_features, out_features, fan_in_fan_out)`` of a Linear or GPT-2 ``Conv1D``.

    Example:
        >>> import torch
        >>> from loretta.layer import linear_features
        >>> linear_features(torch.nn.Linear(3, 5))
        (3, 5, False)
    """
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features, False
    if isinstance(module, Conv1D):
        return int(module.weight.shape[0]), int(module.weight.shape[1]), True
    raise TypeError(f"expected torch.nn.Linear or transformers Conv1D, "
                    f"received {type(module).__name__}")


def is_quantized(weight: torch.Tensor) -> bool:
    """Whether ``weight`` is a tensor subclass (torchao, bitsandbytes), not a plain tensor."""
    return type(weight) not in (torch.Tensor, nn.Parameter)


def quantized_error(layer: nn.Module) -> ValueError:
    """The error for merging into a quantized base weight."""
    return ValueError(
        f"merge: the base weight is quantized ({type(layer.weight).__name__}); the TT update "
        "cannot be added to it. Use merge_and_unload(dequantize=True) to merge into a "
        "dequantized float weight, or keep the adapter unmerged")


def tt_factors(module: nn.Module) -> dict[str, TTLinear]:
    """The TT factors of an adapter module by their path in it (``""`` for a bare TTLinear).

    Example:
        >>> from ttnet_nn import TTLoRAUpdate
        >>> from loretta.layer import tt_factors
        >>> sorted(tt_factors(TTLoRAUpdate(16, 8, r=2, lora_alpha=2)))
        ['lora_A', 'lora_B']
    """
    return {name: m for name, m in module.named_modules() if isinstance(m, TTLinear)}


def factor_key(key: str, name: str) -> str:
    """The ``tt_ranks`` key of factor ``name`` of the adapter at module ``key``."""
    return f"{key}.{name}" if name else key


def replace_factor(module: nn.Module, name: str, factor: TTLinear) -> nn.Module:
    """Put ``factor`` at path ``name`` of ``module``; return the (possibly new) adapter module."""
    if not name:
        return factor
    parent, _, child = name.rpartition(".")
    setattr(module.get_submodule(parent), child, factor)
    return module


def build_adapter(config: LorettaConfig, kind: type[LorettaLayer], key: str, in_features: int,
                  out_features: int, device: torch.device | str | None = None) -> nn.Module:
    """The adapter module a ``kind`` layer at module ``key`` holds for ``config`` (float32),
    with the ranks ``config.tt_ranks`` records for its factors."""
    common = {"tt_rank": config.tensor_rank, "device": device}
    shapes = "paper" if config.preset == "paper" else None
    if kind is TTPoolerLayer:
        pooler = paper_pooler_shape(out_features) if shapes else None
        module = TTLinear(in_features, out_features, bias=True, shapes=pooler, **common)
    elif kind is TTAdapterLayer:
        position = position_of(key, config.adapter_positions)
        module = TTAdapter(in_features if position == "input" else out_features,
                           config.bottleneck_size, non_linearity=config.non_linearity,
                           dropout=config.adapter_dropout, scaling=config.scaling, shapes=shapes,
                           **common)
    else:
        module = TTLoRAUpdate(in_features, out_features, r=config.r, lora_alpha=config.lora_alpha,
                              dropout=config.lora_dropout, shapes=shapes, **common)
    recorded = config.tt_ranks or {}
    for name, factor in tt_factors(module).items():
        if factor_key(key, name) in recorded:
            module = replace_factor(module, name, TTLinear(
                factor.in_features, factor.out_features, bias=factor.bias is not None,
                tt_rank=recorded[factor_key(key, name)], shapes=factor.layout, device=device))
    if recorded:
        module.reset_parameters()
    return module


def check_sizes(config: LorettaConfig, kind: type[LorettaLayer], key: str, in_features: int,
                out_features: int) -> None:
    """Refuse sizes that do not fit module ``key``, before anything is allocated: the
    bottleneck (LoRA rank) against the layer's sizes, and every TT factor's ranks (built on the
    ``meta`` device) against what its bonds can use. ValueError names field, module and bound.
    """
    if kind is TTAdapterLayer and config.bottleneck_size > max(in_features, out_features):
        raise ValueError(f"bottleneck_size: expected at most {max(in_features, out_features)} "
                         f"(the width of {key}), received {config.bottleneck_size}")
    if kind is TTLoRALayer and config.r > min(in_features, out_features):
        raise ValueError(f"r: expected at most {min(in_features, out_features)} (the smaller "
                         f"size of {key}, {in_features}x{out_features}), received {config.r}")
    module = build_adapter(config, kind, key, in_features, out_features, device="meta")
    for name, factor in tt_factors(module).items():
        modes = [math.prod(c.shape[1:-1]) for c in factor.cores]
        usable = max((min(math.prod(modes[:k]), math.prod(modes[k:]))
                      for k in range(1, len(modes))), default=config.tensor_rank)
        where = f"the {factor.in_features}x{factor.out_features} TT factor {factor_key(key, name)}"
        if config.tensor_rank > usable:
            raise ValueError(f"tensor_rank: expected at most {usable} (no bond of {where} can "
                             f"use more), received {config.tensor_rank}")
        recorded = (config.tt_ranks or {}).get(factor_key(key, name), [])
        if any(r > config.tensor_rank for r in recorded):
            raise ValueError(f"tt_ranks[{factor_key(key, name)!r}]: expected ranks at most "
                             f"tensor_rank={config.tensor_rank}, received {recorded}")


def held_adapters(model: nn.Module) -> list[str]:
    """Names of the adapters the LoRETTA layers of ``model`` hold."""
    return sorted({a for m in model.modules() if isinstance(m, LorettaLayer) for a in m.adapters})


def _run(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply an adapter module in its own dtype and return the result in ``x``'s dtype."""
    return module(x.to(next(module.parameters()).dtype)).to(x.dtype)


class LorettaLayer(nn.Module, BaseTunerLayer):
    """What the three LoRETTA layers share: the base layer and one container of adapters."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self._disable_adapters = False
        self.merged_adapters: list[str] = []
        self.in_features, self.out_features, self.fan_in_fan_out = linear_features(base_layer)

    @property
    def adapters(self) -> nn.ModuleDict:
        """The adapter modules by adapter name."""
        return getattr(self, self.adapter_layer_names[0])

    def update_layer(self, adapter_name: str, config: LorettaConfig, key: str) -> None:
        """Add (frozen, inactive) adapter ``adapter_name`` of ``config`` to this layer, module
        ``key``: on the base weight's device, float32 (float64 under a float64 base)."""
        base = self.get_base_layer()
        dtype = torch.float64 if base.weight.dtype == torch.float64 else torch.float32
        module = build_adapter(config, type(self), key, self.in_features, self.out_features)
        self.adapters[adapter_name] = module.to(base.weight.device, dtype).train(base.training)
        self.set_adapter(self.active_adapters)

    def _active(self) -> list[str]:
        return [name for name in self.active_adapters if name in self.adapters]


class TTAdapterLayer(LorettaLayer):
    """LoRETTA_adp around a linear layer: ``base(x)`` then adapter, or adapter then ``base``."""

    adapter_layer_names = ("loretta_adp",)
    other_param_names = ("loretta_position",)

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self.loretta_adp = nn.ModuleDict()
        self.loretta_position: dict[str, str] = {}

    def update_layer(self, adapter_name: str, config: LorettaConfig, key: str) -> None:
        """Add the adapter at the position ``config.adapter_positions`` gives ``key``."""
        self.loretta_position[adapter_name] = position_of(key, config.adapter_positions)
        super().update_layer(adapter_name, config, key)

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        """Refused: the adapter has a non-linearity."""
        raise ValueError("merge: LoRETTA_adp adapters contain a non-linearity and cannot be "
                         "merged into the base weights; use LoRETTA_rep, or unload() to drop them")

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The base layer with the active adapters before or after it."""
        active = [] if self.disable_adapters else self._active()
        for name in active:
            if self.loretta_position[name] == "input":
                x = _run(self.loretta_adp[name], x)
        y = self.base_layer(x, *args, **kwargs)
        for name in active:
            if self.loretta_position[name] == "output":
                y = _run(self.loretta_adp[name], y)
        return y


class TTLoRALayer(LorettaLayer):
    """LoRETTA_rep around a linear layer: ``base(x) + update(x)``; mergeable, LoRA-convertible.

    ``fan_in_fan_out`` is what the config asked for; a value that contradicts the layer is
    corrected with a warning (``None``: the layer's own layout).
    """

    adapter_layer_names = ("loretta_rep",)

    def __init__(self, base_layer: nn.Module, fan_in_fan_out: bool | None = None) -> None:
        super().__init__(base_layer)
        if fan_in_fan_out is not None and fan_in_fan_out != self.fan_in_fan_out:
            warnings.warn(f"fan_in_fan_out: {type(base_layer).__name__} stores its weight as "
                          f"{'(in, out)' if self.fan_in_fan_out else '(out, in)'}; using "
                          f"fan_in_fan_out={self.fan_in_fan_out} instead of {fan_in_fan_out}",
                          UserWarning, stacklevel=2)
        self.loretta_rep = nn.ModuleDict()

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``base(x)`` plus the active updates (the base alone when merged or disabled)."""
        if self.disable_adapters and self.merged:
            self.unmerge()
        y = self.base_layer(x, *args, **kwargs)
        for name in [] if self.disable_adapters or self.merged else self._active():
            y = y + _run(self.loretta_rep[name], x).to(y.dtype)
        return y

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        """The dense update of ``adapter_name`` in the base weight's layout."""
        return self.loretta_rep[adapter_name].delta_weight(self.fan_in_fan_out)

    def supports_lora_conversion(self, adapter_name: str = "default") -> bool:
        """True: the update is additive, ``W + delta``, so ``peft.save_as_lora`` applies."""
        return True

    @torch.no_grad()
    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        """Add the active (or named) updates to the base weight; ValueError for a quantized
        weight, or (``safe_merge``) for a non-finite result."""
        weight = self.get_base_layer().weight
        if is_quantized(weight):
            raise quantized_error(self)
        for name in check_adapters_to_merge(self, adapter_names):
            if name in self.loretta_rep:
                target = weight.detach().clone() if safe_merge else weight
                self.loretta_rep[name].merge_into(target, self.fan_in_fan_out)
                if safe_merge and not torch.isfinite(target).all():
                    raise ValueError(f"merge: adapter {name!r} gives a non-finite weight")
                weight.copy_(target)
                self.merged_adapters.append(name)

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the merged updates again (last merged first)."""
        while self.merged_adapters:
            name = self.merged_adapters.pop()
            self.loretta_rep[name].unmerge_from(self.get_base_layer().weight, self.fan_in_fan_out)


class TTPoolerLayer(LorettaLayer):
    """The SEQ_CLS pooler's dense layer, replaced per adapter by a fresh TT layer with bias.

    Merging copies the TT layer's dense weight and bias into the base layer (the originals are
    kept for :meth:`unmerge`).
    """

    adapter_layer_names = ("loretta_pooler",)

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self.loretta_pooler = nn.ModuleDict()
        self._original: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The active TT layer, or the base layer when disabled, merged or without adapter."""
        if self.disable_adapters and self.merged:
            self.unmerge()
        active = self._active()
        if self.disable_adapters or self.merged or not active:
            return self.base_layer(x, *args, **kwargs)
        return _run(self.loretta_pooler[active[0]], x)

    @torch.no_grad()
    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        """Write the TT layer's dense weight and bias into the base layer."""
        names = [n for n in check_adapters_to_merge(self, adapter_names) if n in self.loretta_pooler]
        base = self.get_base_layer()
        if names and is_quantized(base.weight):
            raise quantized_error(self)
        for name in names[:1]:
            self._original = (base.weight.detach().clone(), base.bias.detach().clone())
            base.weight.copy_(self.loretta_pooler[name].dense_weight())
            base.bias.copy_(self.loretta_pooler[name].bias)
            self.merged_adapters.append(name)

    @torch.no_grad()
    def unmerge(self) -> None:
        """Put the original weight and bias back."""
        if self.merged_adapters and self._original is not None:
            self.get_base_layer().weight.copy_(self._original[0])
            self.get_base_layer().bias.copy_(self._original[1])
            self.merged_adapters.clear()
            self._original = None
