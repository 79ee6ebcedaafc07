"""LorettaTuner: LoRETTA as a PEFT ``BaseTuner`` (PEFT's ``LoraModel`` is its LoRA twin).

PEFT injects, names, trains, saves and merges; this class adds what PEFT lacks: per-family
defaults and the paper's placement, the TT pooler, trained norms (as ``modules_to_save``), size
checks before anything is allocated, adapter names that cannot escape a folder, and state-dict
keys without the adapter name (``...loretta_adp.up.cores.0``), so a saved adapter loads under
any name through PEFT and transformers alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from peft.tuners.tuners_utils import BaseTuner
from peft.utils.other import AuxiliaryTrainingWrapper, _get_submodules
from torch import nn

from .config import LorettaAdpConfig, LorettaConfig, LorettaRepConfig
from .layer import (
    LorettaLayer,
    TTAdapterLayer,
    TTLoRALayer,
    TTPoolerLayer,
    check_sizes,
    held_adapters,
    is_quantized,
    linear_features,
    quantized_error,
)
from .mapping import TASK_HEADS, family_defaults, is_norm, lora_targets, matches
from .saving import PEFT_PREFIX, WEIGHTS_NAME, check_tensors

_ADAPTER_NAME = re.compile(r"[A-Za-z0-9_-]+")
CONTAINERS = tuple(c.adapter_layer_names[0] for c in (TTAdapterLayer, TTLoRALayer, TTPoolerLayer))


def check_adapter_name(adapter_name: object) -> str:
    """Return ``adapter_name`` if it is letters, digits, ``_`` and ``-`` only (it becomes a
    folder and state-dict keys), else raise a ValueError.

    Example:
        >>> from loretta.tuner import check_adapter_name
        >>> check_adapter_name("../x")
        Traceback (most recent call last):
        ...
        ValueError: adapter_name: expected letters, digits, '_' or '-' (it names a folder and state-dict keys), received '../x'
    """
    if not isinstance(adapter_name, str) or not _ADAPTER_NAME.fullmatch(adapter_name):
        raise ValueError("adapter_name: expected letters, digits, '_' or '-' (it names a folder "
                         f"and state-dict keys), received {adapter_name!r}")
    return adapter_name


def own_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The base model's modules as they were: a wrapper stands for what it wraps, and nothing
    inside it is visited."""
    wrapped: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(w + ".") for w in wrapped):
            continue
        if isinstance(module, (LorettaLayer, AuxiliaryTrainingWrapper)):
            wrapped.append(name)
            module = (module.get_base_layer() if isinstance(module, LorettaLayer)
                      else module.original_module)
        yield name, module


def adapter_key_prefixes(model: nn.Module, adapter_name: str | None = None) -> set[str]:
    """State-dict key prefixes of the adapters in ``model`` (of one, if named), asked of the
    layers: each LoRETTA layer and PEFT ``modules_to_save`` wrapper names its containers.

    Example:
        >>> import torch
        >>> from loretta import LorettaRepConfig, get_peft_model
        >>> from loretta.tuner import adapter_key_prefixes
        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 8))
        >>> model = get_peft_model(net, LorettaRepConfig(r=2, tensor_rank=2, target_modules=["0"]))
        >>> adapter_key_prefixes(model.get_base_model(), "default")
        {'0.loretta_rep.default'}
    """
    return {".".join(filter(None, (name, container, adapter_name)))
            for name, module in model.named_modules()
            if isinstance(module, (LorettaLayer, AuxiliaryTrainingWrapper))
            for container in module.adapter_layer_names}


def under(key: str, prefixes: set[str]) -> bool:
    """Whether ``key`` is one of ``prefixes`` or below one of them (at a dot)."""
    while key:
        if key in prefixes:
            return True
        key = key.rpartition(".")[0]
    return False


class LorettaTuner(BaseTuner):
    """The model-level injector of LoRETTA_adp and LoRETTA_rep, built by ``PeftModel``
    (:class:`loretta.LorettaModel` included) and by transformers' ``model.load_adapter``.

    Raises:
        ValueError: the adapter name is not an identifier, or the model's LoRETTA layers hold
            it already (wrapping again would re-initialise it).
    """

    prefix = "loretta_"
    tuner_layer_cls = LorettaLayer
    target_module_mapping: ClassVar[dict] = {}  # see _prepare_adapter_config

    def __init__(self, model: nn.Module, peft_config: Any, adapter_name: str,
                 low_cpu_mem_usage: bool = False, state_dict: dict | None = None) -> None:
        held = held_adapters(model)
        if check_adapter_name(adapter_name) in held:
            raise ValueError(
                f"adapter_name: {adapter_name!r} exists already in this model (its LoRETTA "
                f"adapters: {held}); applying LoRETTA again would re-initialise it. Use "
                "add_adapter(new_name, config) on the PEFT model to add another adapter")
        super().__init__(model, peft_config, adapter_name, low_cpu_mem_usage=low_cpu_mem_usage,
                         state_dict=state_dict)

    def inject_adapter(self, model: nn.Module, adapter_name: str, *args: Any,
                       **kwargs: Any) -> None:
        """PEFT's injection, after checking the adapter name (every entry point passes here)."""
        super().inject_adapter(model, check_adapter_name(adapter_name), *args, **kwargs)

    @staticmethod
    def _pooler(config: LorettaConfig, model: nn.Module) -> str | None:
        if not config.pooler_tensorised:
            return None
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        pooler = family_defaults(model_type, "tt_pooler").pooler
        if pooler is None:
            raise ValueError(f"tt_pooler: model_type {model_type!r} has no pooler dense layer to "
                             "tensorise; set tt_pooler=False")
        return pooler

    def _prepare_adapter_config(self, peft_config: LorettaConfig, model_config: dict) -> Any:
        """Fill in the default targets (with the paper's adapter positions), the TT pooler as a
        target, and the task head (PEFT writes the result into ``adapter_config.json``)."""
        config, model_type = peft_config, model_config.get("model_type")
        if config.target_modules is None and isinstance(config, LorettaRepConfig):
            config.target_modules = list(lora_targets(model_type))
        elif config.target_modules is None:
            defaults = family_defaults(model_type, "target_modules")
            if config.preset == "paper":
                paper = dict(defaults.paper_adapter_targets)
                config.adapter_positions = {**paper, **(config.adapter_positions or {})}
            config.target_modules = list(paper if config.preset == "paper"
                                         else defaults.adapter_targets)
        pooler = self._pooler(config, self.model)
        if pooler is not None and not matches(pooler, config.target_modules):
            targets = config.target_modules
            config.target_modules = (f"(?:{targets})|{re.escape(pooler)}"
                                     if isinstance(targets, str) else [*targets, pooler])
        heads = TASK_HEADS.get(config.task_type, ())
        config.modules_to_save = list(dict.fromkeys([*(config.modules_to_save or []), *heads]))
        return config

    def _prepare_model(self, peft_config: LorettaConfig, model: nn.Module) -> None:
        """Settle ``modules_to_save`` and check every target's sizes, before any allocation."""
        pooler = self._pooler(peft_config, model)
        modules = list(own_modules(model))
        peft_config.modules_to_save = _saved_modules(peft_config, modules, pooler) or None
        found = [(n, m) for n, m in modules if n and self._check_target_module_exists(peft_config, n)]
        if not found:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in modules if isinstance(m, nn.Linear)})
            raise ValueError(f"target_modules: {peft_config.target_modules!r} matched no module "
                             f"of the model; linear layer names in it: {linear}")
        for name, module in found:
            try:
                sizes = linear_features(module)[:2]
            except TypeError as err:
                raise TypeError(f"target_modules: {name} matched, but {err}") from None
            check_sizes(peft_config, _kind(peft_config, name, pooler), name, *sizes)

    def _create_and_replace(self, peft_config: LorettaConfig, adapter_name: str,
                            target: nn.Module, target_name: str, parent: nn.Module,
                            current_key: str, parameter_name: str | None = None) -> None:
        """Wrap ``target`` in the method's layer, or add the adapter to its layer."""
        kind = _kind(peft_config, current_key, self._pooler(peft_config, self.model))
        if isinstance(target, LorettaLayer) and type(target) is not kind:
            raise ValueError(f"adapter_name: {adapter_name!r} is a {peft_config.peft_type.value} "
                             f"adapter, but {current_key} holds {type(target).__name__} adapters; "
                             "one model uses one method")
        layer = target if isinstance(target, LorettaLayer) else (
            kind(target, peft_config.fan_in_fan_out) if kind is TTLoRALayer else kind(target))
        layer.update_layer(adapter_name, peft_config, current_key)
        if layer is not target:
            self._replace_module(parent, target_name, layer, target)

    def _inference(self, names: list[str]) -> bool:
        return any(self.peft_config[n].inference_mode for n in names if n in self.peft_config)

    def set_adapter(self, adapter_name: str | list[str], inference_mode: bool = False) -> None:
        """Activate adapter(s); one loaded for inference stays frozen whatever is asked."""
        names = [adapter_name] if isinstance(adapter_name, str) else list(adapter_name)
        super().set_adapter(adapter_name, inference_mode=inference_mode or self._inference(names))

    def _mark_only_adapters_as_trainable(self, model: nn.Module) -> None:
        super()._mark_only_adapters_as_trainable(model)
        if self._inference(self.active_adapters):  # PEFT would still train biases
            model.requires_grad_(False)

    def _check_merge_allowed(self) -> None:
        if any(isinstance(self.peft_config.get(n), LorettaAdpConfig) for n in self.active_adapters):
            raise ValueError("merge_and_unload: LoRETTA_adp adapters contain a non-linearity and "
                             "cannot be merged into the base weights; use LoRETTA_rep, or "
                             "unload() to drop them")
        for layer in self.model.modules():
            if isinstance(layer, LorettaLayer) and is_quantized(layer.get_base_layer().weight):
                raise quantized_error(layer)
        super()._check_merge_allowed()

    def merge_and_unload(self, progressbar: bool = False, safe_merge: bool = False,
                         adapter_names: list[str] | None = None,
                         dequantize: bool = False) -> nn.Module:
        """Fold the active LoRETTA_rep adapter into the weights; return the plain model.

        Trained norms and heads replace the originals, a TT pooler becomes the dense layer's
        weight and bias, and nothing of the returned model trains. ``dequantize=True`` first
        replaces quantized base weights of the adapted layers by their float dequantisation
        (else merging into a quantized base is refused). The other arguments are PEFT's.
        """
        for layer in self.model.modules() if dequantize else ():
            base = layer.get_base_layer() if isinstance(layer, LorettaLayer) else None
            if base is not None and is_quantized(base.weight):
                base.weight = nn.Parameter(base.weight.dequantize(), requires_grad=False)
        return super().merge_and_unload(progressbar=progressbar, safe_merge=safe_merge,
                                        adapter_names=adapter_names).requires_grad_(False)

    def unload(self) -> nn.Module:
        """Remove every adapter and return the base model as it was (the original norms and
        heads, not trained copies as PEFT's unload keeps); nothing of it trains."""
        for key, module in list(self.model.named_modules()):
            if isinstance(module, AuxiliaryTrainingWrapper):
                parent, _, name = _get_submodules(self.model, key)
                setattr(parent, name, module.original_module)
        return super().unload().requires_grad_(False)

    @classmethod
    def _remove_adapter_name_from_key(cls, key: str, adapter_name: str) -> str:
        """``x.loretta_adp.<name>.up.cores.0`` -> ``x.loretta_adp.up.cores.0`` (transformers'
        loader puts any name back after the container)."""
        parts = key.split(".")
        for i in range(len(parts) - 1):
            if parts[i] in CONTAINERS and parts[i + 1] == adapter_name:
                return ".".join(parts[: i + 1] + parts[i + 2:])
        return key

    @classmethod
    def _remap_adapter_state_dict_for_load(cls, model: nn.Module, config: Any, adapter_name: str,
                                           state_dict: dict[str, torch.Tensor]) -> dict:
        """PEFT's remapping, then every tensor checked against the model before anything loads
        (PEFT loads non-strictly): ValueError naming a tensor the file has and the model lacks,
        lacks, or holds in another shape."""
        remapped = super()._remap_adapter_state_dict_for_load(model, config, adapter_name,
                                                              state_dict)
        live = model.state_dict()
        prefixes = adapter_key_prefixes(model, adapter_name)
        expected = {k for k in live if under(k, prefixes)}
        expected.update(cls._get_learnable_bias_state_dict(model, live, config))

        def shown(key: str) -> str:  # the key as the file holds it
            key = key.removeprefix(PEFT_PREFIX).replace(f".modules_to_save.{adapter_name}.", ".")
            return cls._remove_adapter_name_from_key(key, adapter_name)

        check_tensors({shown(k): tuple(live[k].shape) for k in expected},
                      {shown(k): tuple(v.shape) for k, v in remapped.items()}, WEIGHTS_NAME)
        return remapped


def _kind(config: LorettaConfig, key: str, pooler: str | None) -> type[LorettaLayer]:
    if pooler is not None and matches(key, [pooler]):
        return TTPoolerLayer
    return TTAdapterLayer if isinstance(config, LorettaAdpConfig) else TTLoRALayer


def _saved_modules(config: LorettaConfig, modules: list[tuple[str, nn.Module]],
                   pooler: str | None) -> list[str]:
    """``modules_to_save`` for PEFT: a head holding the TT pooler becomes its other children;
    with ``train_norms`` the norms' names are added. Unknown user entries are refused."""
    heads = {h for task in TASK_HEADS.values() for h in task}
    by_name = dict(modules)
    out: list[str] = []
    for entry in config.modules_to_save or []:
        hits = [n for n in by_name if n.endswith(entry)]
        if not hits and entry not in heads:
            raise ValueError(f"modules_to_save: {entry!r} matched no module of the model")
        splits = [n for n in hits if pooler is not None and pooler.startswith(n + ".")]
        out += [] if splits else [entry]
        out += [f"{h}.{c}" for h in splits for c, m in by_name[h].named_children()
                if f"{h}.{c}" != pooler and next(m.parameters(), None) is not None]
    if config.norms_trained:
        out += sorted({n.rsplit(".", 1)[-1] for n, m in modules if n and is_norm(m)})
    return list(dict.fromkeys(out))
