"""Wrappers that hold named LoRETTA adapters around a transformers module.

Three wrappers, each keyed by adapter name so that a model can carry several adapters
(``add_adapter`` / ``set_adapter`` / ``delete_adapter``) and switch them off
(``disable_adapter``):

* :class:`AdapterWrapper` -- LoRETTA_adp: a :class:`ttnet_nn.TTAdapter` on the input or the
  output of a linear layer.
* :class:`LoraWrapper` -- LoRETTA_rep: the frozen layer's output plus a TT LoRA update;
  ``merge`` folds the update into the base weight.
* :class:`ReplacementWrapper` -- a module replaced per adapter by a trainable module: a copy
  (norms, task heads, ``modules_to_save``) or a new TT layer (the paper's SEQ_CLS pooler).

Only the wrapper's own sub-modules hold tensors; the switches are plain Python attributes, so
``state_dict``, ``.to()``, DDP and ``torch.compile`` see ordinary modules.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: Names of the per-adapter containers; a state-dict key holds the adapter name right after one.
CONTAINERS = ("loretta_adp", "loretta_rep", "loretta_copies")


def linear_features(module: nn.Module) -> tuple[int, int, bool]:
    """Return ``(in_features, out_features, fan_in_fan_out)`` of a Linear or GPT-2 ``Conv1D``.

    Raises:
        TypeError: for any other module type.

    Example:
        >>> import torch
        >>> from loretta.layer import linear_features
        >>> linear_features(torch.nn.Linear(3, 5))
        (3, 5, False)
    """
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features, False
    weight = getattr(module, "weight", None)
    if type(module).__name__ == "Conv1D" and isinstance(weight, torch.Tensor) and weight.ndim == 2:
        return int(weight.shape[0]), int(weight.shape[1]), True
    raise TypeError(
        f"target module: expected torch.nn.Linear or transformers Conv1D, "
        f"received {type(module).__name__}"
    )


def _run(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply an adapter module in its own dtype and return the result in ``x``'s dtype."""
    dtype = next(module.parameters()).dtype
    return module(x.to(dtype)).to(x.dtype)


class _Wrapper(nn.Module):
    """Common switches: the active adapter name and the disabled flag."""

    def __init__(self) -> None:
        super().__init__()
        self.active_adapter: str | None = None
        self.disabled = False

    @property
    def wrapped(self) -> nn.Module:
        """The module this wrapper stands in for when no adapter is active."""
        raise NotImplementedError

    def adapter_names(self) -> list[str]:
        """Names of the adapters held."""
        return list(getattr(self, self.container).keys())

    def delete(self, name: str) -> None:
        """Remove adapter ``name``."""
        del getattr(self, self.container)[name]
        if self.active_adapter == name:
            self.active_adapter = None

    def current(self, name: str | None = None) -> nn.Module | None:
        """The adapter module used now (or of ``name``), None when disabled or absent."""
        name = self.active_adapter if name is None else name
        held = getattr(self, self.container)
        if self.disabled or name is None or name not in held:
            return None
        return held[name]

    def __getattr__(self, name: str) -> Any:
        """Forward unknown attributes (``weight``, ``in_features``, ...) to the wrapped module."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in ("base_layer", "original_module", *CONTAINERS):
                raise
            return getattr(self.wrapped, name)


class AdapterWrapper(_Wrapper):
    """LoRETTA_adp around a linear layer: ``base(x)`` then adapter, or adapter then ``base``.

    Args:
        base_layer: The frozen ``nn.Linear`` / ``Conv1D``.

    Example:
        >>> import torch
        >>> from ttnet_nn import TTAdapter
        >>> from loretta.layer import AdapterWrapper
        >>> layer = AdapterWrapper(torch.nn.Linear(16, 16))
        >>> layer.add("default", TTAdapter(16, 4, tt_rank=2), "output")
        >>> x = torch.randn(2, 16)
        >>> torch.equal(layer(x), layer.base_layer(x))  # identity at initialisation
        True
    """

    container = "loretta_adp"

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.loretta_adp = nn.ModuleDict()
        self.positions: dict[str, str] = {}

    @property
    def wrapped(self) -> nn.Module:
        """The base layer."""
        return self.base_layer

    def add(self, name: str, adapter: nn.Module, position: str) -> None:
        """Hold ``adapter`` under ``name`` at ``position`` (``"input"`` or ``"output"``)."""
        self.loretta_adp[name] = adapter
        self.positions[name] = position
        if self.active_adapter is None:
            self.active_adapter = name

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Apply the base layer with the active adapter before or after it."""
        adapter = self.current()
        if adapter is None:
            return self.base_layer(x, *args, **kwargs)
        if self.positions[self.active_adapter] == "input":
            return self.base_layer(_run(adapter, x), *args, **kwargs)
        return _run(adapter, self.base_layer(x, *args, **kwargs))


class LoraWrapper(_Wrapper):
    """LoRETTA_rep around a linear layer: ``base(x) + update(x)``.

    Args:
        base_layer: The frozen ``nn.Linear`` / ``Conv1D``.
        fan_in_fan_out: The base weight is stored ``(in, out)`` (``Conv1D``).

    Example:
        >>> import torch
        >>> from ttnet_nn import TTLoRAUpdate
        >>> from loretta.layer import LoraWrapper
        >>> layer = LoraWrapper(torch.nn.Linear(16, 12))
        >>> layer.add("default", TTLoRAUpdate(16, 12, r=4, lora_alpha=8, tt_rank=2))
        >>> x = torch.randn(2, 16)
        >>> torch.equal(layer(x), layer.base_layer(x))  # no-op at initialisation
        True
    """

    container = "loretta_rep"

    def __init__(self, base_layer: nn.Module, fan_in_fan_out: bool = False) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.fan_in_fan_out = fan_in_fan_out
        self.loretta_rep = nn.ModuleDict()

    @property
    def wrapped(self) -> nn.Module:
        """The base layer."""
        return self.base_layer

    def add(self, name: str, update: nn.Module) -> None:
        """Hold the TT LoRA ``update`` under ``name``."""
        self.loretta_rep[name] = update
        if self.active_adapter is None:
            self.active_adapter = name

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``base(x) + update(x)`` with the active update."""
        result = self.base_layer(x, *args, **kwargs)
        update = self.current()
        if update is None:
            return result
        return result + _run(update, x).to(result.dtype)

    @torch.no_grad()
    def merge(self, name: str) -> None:
        """Add the dense update of adapter ``name`` to the base weight (in the weight's dtype)."""
        self.loretta_rep[name].merge_into(self.base_layer.weight, self.fan_in_fan_out)


class ReplacementWrapper(_Wrapper):
    """A module replaced, per adapter, by another (a trainable copy or a new TT layer).

    Args:
        original_module: The module of the base model, used when no adapter is active.

    Example:
        >>> import copy, torch
        >>> from loretta.layer import ReplacementWrapper
        >>> norm = ReplacementWrapper(torch.nn.LayerNorm(4))
        >>> norm.add("default", copy.deepcopy(norm.original_module))
        >>> norm.weight.shape  # attributes come from the module in use
        torch.Size([4])
    """

    container = "loretta_copies"

    def __init__(self, original_module: nn.Module) -> None:
        super().__init__()
        self.original_module = original_module
        self.loretta_copies = nn.ModuleDict()

    @property
    def wrapped(self) -> nn.Module:
        """The module in use: the active adapter's, else the original."""
        module = self.current()
        return self.original_module if module is None else module

    def add(self, name: str, module: nn.Module) -> None:
        """Use ``module`` in place of the original while adapter ``name`` is active."""
        self.loretta_copies[name] = module
        if self.active_adapter is None:
            self.active_adapter = name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the module in use."""
        return self.wrapped(*args, **kwargs)


WRAPPERS = (AdapterWrapper, LoraWrapper, ReplacementWrapper)
