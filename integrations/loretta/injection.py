"""Put one named LoRETTA adapter into a transformers model (in place).

:func:`inject` finds the target modules (defaults per model family or the config's
``target_modules``), wraps them, and adds the adapter's modules: TT adapters or TT LoRA
updates, trainable copies of norms and task heads, and the tensorised SEQ_CLS pooler.
:func:`mark_trainable` then sets ``requires_grad`` for the active adapter only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import nn

from ttnet_nn import TTAdapter, TTLinear, TTLoRAUpdate
from ttnet_nn.presets import paper_pooler_shape

from .config import LorettaAdpConfig, LorettaConfig, LorettaRepConfig
from .layer import (
    CONTAINERS,
    WRAPPERS,
    AdapterWrapper,
    LoraWrapper,
    ReplacementWrapper,
    linear_features,
)
from .mapping import (
    TASK_HEADS,
    family_defaults,
    is_norm,
    matches,
    position_of,
)

_INTERNAL = {*CONTAINERS, "base_layer", "original_module"}


def _own_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``named_modules`` of the base model, skipping what the wrappers added inside themselves."""
    for name, module in model.named_modules():
        if not _INTERNAL.intersection(name.split(".")):
            yield name, module


def _model_type(model: nn.Module) -> str | None:
    return getattr(getattr(model, "config", None), "model_type", None)


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _targets(model: nn.Module, config: LorettaConfig) -> tuple[list[str] | str, dict | None]:
    """Target selection and, for LoRETTA_adp, the adapter positions."""
    positions = getattr(config, "adapter_positions", None)
    if config.target_modules is not None:
        return config.target_modules, positions
    defaults = family_defaults(_model_type(model), "target_modules")
    if isinstance(config, LorettaRepConfig):
        return list(defaults.lora_targets), positions
    if config.preset == "paper":
        paper = dict(defaults.paper_adapter_targets)
        return list(paper), {**paper, **(positions or {})}
    return list(defaults.adapter_targets), positions


def _factory(reference: torch.Tensor) -> dict:
    """Where adapter parameters live: the base weight's device, float32 unless the base is wider.

    Adapters are built on the CPU (their initialisation reads values, which the ``meta``
    device has not) and moved afterwards.
    """
    dtype = reference.dtype if reference.dtype == torch.float64 else torch.float32
    return {"dtype": dtype}


def _new_adapter(config: LorettaAdpConfig, hidden: int) -> nn.Module:
    return TTAdapter(
        hidden,
        config.bottleneck_size,
        tt_rank=config.tensor_rank,
        non_linearity=config.non_linearity,
        dropout=config.adapter_dropout,
        scaling=config.scaling,
        shapes="paper" if config.preset == "paper" else None,
    )


def _new_update(config: LorettaRepConfig, in_features: int, out_features: int) -> nn.Module:
    return TTLoRAUpdate(
        in_features,
        out_features,
        r=config.r,
        lora_alpha=config.lora_alpha,
        tt_rank=config.tensor_rank,
        dropout=config.lora_dropout,
        shapes="paper" if config.preset == "paper" else None,
    )


def _placed(module: nn.Module, base: nn.Module) -> nn.Module:
    """Move a new module to the base module's device (and dtype rule) and training mode."""
    reference = base.weight
    return module.to(device=reference.device, **_factory(reference)).train(base.training)


def _wrap_targets(model: nn.Module, config: LorettaConfig, adapter_name: str) -> list[str]:
    targets, positions = _targets(model, config)
    wrapper_type = AdapterWrapper if isinstance(config, LorettaAdpConfig) else LoraWrapper
    found = [name for name, _ in _own_modules(model) if name and matches(name, targets)]
    if not found:
        linear = sorted(
            {n.rsplit(".", 1)[-1] for n, m in _own_modules(model) if isinstance(m, nn.Linear)}
        )
        raise ValueError(
            f"target_modules: {targets!r} matched no module of the model; "
            f"linear layer names in it: {linear}"
        )
    for name in found:
        module = model.get_submodule(name)
        if isinstance(module, WRAPPERS) and not isinstance(module, wrapper_type):
            raise ValueError(
                f"adapter_name: {adapter_name!r} is a {config.peft_type} adapter but {name} "
                f"already holds adapters of the other method; one model uses one method"
            )
        base = module.base_layer if isinstance(module, wrapper_type) else module
        try:
            in_features, out_features, fan_in_fan_out = linear_features(base)
        except TypeError as err:
            raise TypeError(f"target_modules: {name} matched, but {err}") from None
        if not isinstance(module, wrapper_type):
            module = (
                AdapterWrapper(base)
                if wrapper_type is AdapterWrapper
                else LoraWrapper(base, fan_in_fan_out=_fan_in_fan_out(config, fan_in_fan_out))
            )
            _set_module(model, name, module)
        if isinstance(config, LorettaAdpConfig):
            where = position_of(name, positions)
            hidden = in_features if where == "input" else out_features
            module.add(adapter_name, _placed(_new_adapter(config, hidden), base), where)
        else:
            update = _new_update(config, in_features, out_features)
            module.add(adapter_name, _placed(update, base))
    return found


def _fan_in_fan_out(config: LorettaConfig, detected: bool) -> bool:
    explicit = getattr(config, "fan_in_fan_out", None)
    return detected if explicit is None else explicit


def _replace(model: nn.Module, name: str, adapter_name: str, new: nn.Module | None) -> None:
    """Give module ``name`` a per-adapter replacement (a deep copy of it when ``new`` is None)."""
    module = model.get_submodule(name)
    if not isinstance(module, ReplacementWrapper):
        module = ReplacementWrapper(module)
        _set_module(model, name, module)
    module.add(adapter_name, copy.deepcopy(module.original_module) if new is None else new)


def _pooler(model: nn.Module, config: LorettaConfig) -> str | None:
    if not config.pooler_tensorised:
        return None
    pooler = family_defaults(_model_type(model), "tt_pooler").pooler
    if pooler is None:
        raise ValueError(
            f"tt_pooler: model_type {_model_type(model)!r} has no pooler dense layer to "
            "tensorise; set tt_pooler=False"
        )
    return pooler


def _unwrapped(module: nn.Module) -> nn.Module:
    return module.original_module if isinstance(module, ReplacementWrapper) else module


def _saved_modules(model: nn.Module, config: LorettaConfig, pooler: str | None) -> list[str]:
    """Task heads, ``modules_to_save`` and (with ``train_norms``) norms; a head that contains
    the pooler is split into its other children."""
    wanted = list(TASK_HEADS.get(config.task_type, ())) + list(config.modules_to_save or [])
    names = [n for n, _ in _own_modules(model) if n and matches(n, wanted)]
    if config.modules_to_save:
        missing = [t for t in config.modules_to_save if not any(matches(n, [t]) for n in names)]
        if missing:
            raise ValueError(f"modules_to_save: {missing} matched no module of the model")
    out: list[str] = []
    for name in names:
        if pooler is not None and pooler.startswith(name + "."):
            out += [f"{name}.{child}" for child, _ in model.get_submodule(name).named_children()
                    if f"{name}.{child}" != pooler]
        elif not any(name.startswith(o + ".") for o in out):
            out.append(name)
    if config.norms_trained:
        out += [
            n for n, m in _own_modules(model)
            if is_norm(_unwrapped(m)) and not any(n == o or n.startswith(o + ".") for o in out)
        ]
    return out


def inject(model: nn.Module, config: LorettaConfig, adapter_name: str) -> None:
    """Add adapter ``adapter_name`` described by ``config`` to ``model`` in place.

    Args:
        model: A transformers model (or any module with a ``config.model_type`` when the
            defaults are used).
        config: A :class:`~loretta.LorettaAdpConfig` or :class:`~loretta.LorettaRepConfig`.
        adapter_name: Key of the new adapter in every wrapper.

    Example:
        >>> import torch
        >>> from transformers import LlamaConfig, LlamaForCausalLM
        >>> from loretta import LorettaAdpConfig
        >>> from loretta.injection import inject
        >>> llama = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64,
        ...     num_hidden_layers=1, num_attention_heads=4, vocab_size=64))
        >>> inject(llama, LorettaAdpConfig(bottleneck_size=8), "default")
        >>> type(llama.model.layers[0].mlp.down_proj).__name__
        'AdapterWrapper'
    """
    _wrap_targets(model, config, adapter_name)
    pooler = _pooler(model, config)
    saved = _saved_modules(model, config, pooler)
    if pooler is not None:
        dense = _unwrapped(model.get_submodule(pooler))
        shapes = paper_pooler_shape(dense.out_features) if config.preset == "paper" else None
        tt = TTLinear(dense.in_features, dense.out_features, bias=True,
                      tt_rank=config.tensor_rank, shapes=shapes)
        _replace(model, pooler, adapter_name, _placed(tt, dense))
    for name in saved:
        _replace(model, name, adapter_name, None)


def bias_names(model: nn.Module, config: LorettaConfig) -> list[str]:
    """Names of the base-model biases that train under ``config.bias``."""
    if config.bias == "none":
        return []
    names = []
    for name, param in model.named_parameters():
        parts = name.split(".")
        if parts[-1] != "bias" or _INTERNAL.difference({"base_layer"}).intersection(parts):
            continue
        if config.bias == "all" or (len(parts) > 1 and parts[-2] == "base_layer"):
            names.append(name)
    return names


def mark_trainable(model: nn.Module, config: LorettaConfig, adapter_name: str) -> None:
    """Freeze everything, then unfreeze adapter ``adapter_name`` (and biases per ``config.bias``).

    Nothing trains when ``config.inference_mode`` is set.
    """
    for param in model.parameters():
        param.requires_grad_(False)
    if config.inference_mode:
        return
    for name, param in model.named_parameters():
        parts = name.split(".")
        if any(a in CONTAINERS and b == adapter_name for a, b in zip(parts, parts[1:])):
            param.requires_grad_(True)
    for name in bias_names(model, config):
        model.get_parameter(name).requires_grad_(True)


def wrappers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """All LoRETTA wrappers of ``model`` with their names."""
    for name, module in model.named_modules():
        if isinstance(module, WRAPPERS):
            yield name, module
