"""LorettaTuner: LoRETTA as a PEFT ``BaseTuner`` (PEFT's ``LoraModel`` is its LoRA twin).

PEFT does the injection, named adapters, trainability, saving and merging; this class adds
what PEFT lacks: the per-family defaults and the paper's placement, the TT pooler, trained
norms (as ``modules_to_save``), size checks before anything is allocated, adapter names that
cannot escape a folder, and state-dict keys without the adapter name (``...loretta_adp.up.
cores.0``), so a saved adapter loads under any name through PEFT and transformers alike.
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
    is_quantized,
    linear_features,
    quantized_error,
)
from .mapping import TASK_HEADS, family_defaults, is_norm, lora_targets, matches
from .saving import PEFT_PREFIX, WEIGHTS_NAME, check_tensors

_ADAPTER_NAME = re.compile(r"[A-Za-z0-9_-]+")
CONTAINERS = tuple(cls.adapter_layer_names[0] for cls in (TTAdapterLayer, TTLoRALayer,
                                                             TTPoolerLayer))


def check_adapter_name(adapter_name: object) -> str:
    """Return ``adapter_name`` if it is letters, digits, ``_`` and ``-`` only, else raise.

    The name becomes a folder of ``save_pretrained`` and a state-dict key, so it may hold
    neither a path separator nor a dot.

    Example:
        >>> from loretta.tuner import check_adapter_name
        >>> check_adapter_name("task_b-2")
        'task_b-2'
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
    """``named_modules`` of the base model as it was: wrappers stand for what they wrap, and
    nothing inside them is visited."""
    wrapped: set[str] = set()
    for name, module in model.named_modules():
        parent = name.rpartition(".")[0]
        if any(parent == w or parent.startswith(w + ".") for w in wrapped):
            continue
        if isinstance(module, (LorettaLayer, AuxiliaryTrainingWrapper)):
            wrapped.add(name)
            module = (module.get_base_layer() if isinstance(module, LorettaLayer)
                      else module.original_module)
        yield name, module


def adapter_key_prefixes(model: nn.Module, adapter_name: str | None = None) -> set[str]:
    """State-dict key prefixes of the adapters held in ``model`` (of one, if named).

    Asked of the layers themselves: each LoRETTA layer and each PEFT ``modules_to_save``
    wrapper names its per-adapter containers (``adapter_layer_names``).

    Example:
        >>> import torch
        >>> from transformers import BertConfig, BertModel
        >>> from loretta import LorettaAdpConfig, get_peft_model
        >>> from loretta.tuner import adapter_key_prefixes
        >>> bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1,
        ...     num_attention_heads=4, intermediate_size=64, vocab_size=50))
        >>> model = get_peft_model(bert, LorettaAdpConfig(bottleneck_size=4))
        >>> sorted(adapter_key_prefixes(model.base_model.model, "default"))[0]
        'encoder.layer.0.attention.output.dense.loretta_adp.default'
    """
    prefixes = set()
    for name, module in model.named_modules():
        if isinstance(module, (LorettaLayer, AuxiliaryTrainingWrapper)):
            for container in module.adapter_layer_names:
                prefix = f"{name}.{container}" if name else container
                prefixes.add(prefix if adapter_name is None else f"{prefix}.{adapter_name}")
    return prefixes


def under(key: str, prefixes: set[str]) -> bool:
    """Whether ``key`` is one of ``prefixes`` or below one of them (at a dot)."""
    while key:
        if key in prefixes:
            return True
        key = key.rpartition(".")[0]
    return False


class LorettaTuner(BaseTuner):
    """The model-level injector of LoRETTA_adp and LoRETTA_rep (one class for both).

    PEFT builds it from ``PeftModel`` (``peft.get_peft_model``, ``PeftModel.from_pretrained``)
    and from transformers' ``model.load_adapter``; :class:`loretta.LorettaModel` wraps it the
    same way.

    Raises:
        ValueError: the adapter name is not an identifier, or it is held already by LoRETTA
            layers of the model (a second ``get_peft_model`` would re-initialise them).
    """

    prefix = "loretta_"
    tuner_layer_cls = LorettaLayer
    target_module_mapping: ClassVar[dict[str, list[str]]] = {}  # defaults: _prepare_adapter_config

    def __init__(self, model: nn.Module, peft_config: Any, adapter_name: str,
                 low_cpu_mem_usage: bool = False, state_dict: dict | None = None) -> None:
        check_adapter_name(adapter_name)
        held = sorted({a for _, m in model.named_modules() if isinstance(m, LorettaLayer)
                       for a in m.adapters})
        if adapter_name in held:
            raise ValueError(
                f"adapter_name: {adapter_name!r} exists already in this model (its LoRETTA "
                f"adapters: {held}); applying LoRETTA again would re-initialise it. Use "
                "add_adapter(new_name, config) on the PEFT model to add another adapter")
        super().__init__(model, peft_config, adapter_name, low_cpu_mem_usage=low_cpu_mem_usage,
                         state_dict=state_dict)

    def inject_adapter(self, model: nn.Module, adapter_name: str, *args: Any,
                       **kwargs: Any) -> None:
        """PEFT's injection, after checking the adapter name (every entry point passes here)."""
        check_adapter_name(adapter_name)
        super().inject_adapter(model, adapter_name, *args, **kwargs)

    # --- configuration --------------------------------------------------------------------

    @staticmethod
    def _pooler(config: LorettaConfig, model_type: str | None) -> str | None:
        if not config.pooler_tensorised:
            return None
        pooler = family_defaults(model_type, "tt_pooler").pooler
        if pooler is None:
            raise ValueError(f"tt_pooler: model_type {model_type!r} has no pooler dense layer to "
                             "tensorise; set tt_pooler=False")
        return pooler

    def _prepare_adapter_config(self, peft_config: LorettaConfig, model_config: dict) -> Any:
        """Fill in the default targets (and the paper's adapter positions) and the task head."""
        model_type = model_config.get("model_type")
        config = peft_config
        if config.target_modules is None:
            if isinstance(config, LorettaRepConfig):
                config.target_modules = list(lora_targets(model_type))
            else:
                defaults = family_defaults(model_type, "target_modules")
                if config.preset == "paper":
                    paper = dict(defaults.paper_adapter_targets)
                    config.adapter_positions = {**paper, **(config.adapter_positions or {})}
                    config.target_modules = list(paper)
                else:
                    config.target_modules = list(defaults.adapter_targets)
        pooler = self._pooler(config, model_type)
        if pooler is not None and not matches(pooler, config.target_modules):
            targets = config.target_modules
            config.target_modules = (f"(?:{targets})|{re.escape(pooler)}"
                                     if isinstance(targets, str) else [*targets, pooler])
        heads = TASK_HEADS.get(config.task_type, ())
        config.modules_to_save = list(dict.fromkeys([*(config.modules_to_save or []), *heads]))
        return config

    def _prepare_model(self, peft_config: LorettaConfig, model: nn.Module) -> None:
        """Settle ``modules_to_save`` and check every target's sizes, before any allocation."""
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        pooler = self._pooler(peft_config, model_type)
        modules = list(own_modules(model))
        peft_config.modules_to_save = _saved_modules(peft_config, modules, pooler) or None
        found = []
        for name, module in modules:
            if not name or not self._check_target_module_exists(peft_config, name):
                continue
            try:
                in_features, out_features, _ = linear_features(module)
            except TypeError as err:
                raise TypeError(f"target_modules: {name} matched, but {err}") from None
            check_sizes(peft_config, _kind(peft_config, name, pooler), name, in_features,
                        out_features)
            found.append(name)
        if not found:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in modules if isinstance(m, nn.Linear)})
            raise ValueError(f"target_modules: {peft_config.target_modules!r} matched no module "
                             f"of the model; linear layer names in it: {linear}")

    def _create_and_replace(self, peft_config: LorettaConfig, adapter_name: str,
                            target: nn.Module, target_name: str, parent: nn.Module,
                            current_key: str, parameter_name: str | None = None) -> None:
        """Wrap ``target`` in the layer of the method (or add the adapter to its layer)."""
        model_type = getattr(getattr(self.model, "config", None), "model_type", None)
        kind = _kind(peft_config, current_key, self._pooler(peft_config, model_type))
        if isinstance(target, LorettaLayer):
            if type(target) is not kind:
                raise ValueError(
                    f"adapter_name: {adapter_name!r} is a {peft_config.peft_type.value} adapter, "
                    f"but {current_key} holds {type(target).__name__} adapters; one model uses "
                    "one method")
            target.update_layer(adapter_name, peft_config, current_key)
            return
        layer = kind(target, peft_config.fan_in_fan_out) if kind is TTLoRALayer else kind(target)
        layer.update_layer(adapter_name, peft_config, current_key)
        self._replace_module(parent, target_name, layer, target)

    # --- trainability ---------------------------------------------------------------------

    def set_adapter(self, adapter_name: str | list[str], inference_mode: bool = False) -> None:
        """Activate adapter(s); one loaded for inference stays frozen whatever is asked."""
        names = [adapter_name] if isinstance(adapter_name, str) else list(adapter_name)
        frozen = any(self.peft_config[n].inference_mode for n in names if n in self.peft_config)
        super().set_adapter(adapter_name, inference_mode=inference_mode or frozen)

    def _mark_only_adapters_as_trainable(self, model: nn.Module) -> None:
        super()._mark_only_adapters_as_trainable(model)
        if any(self.peft_config[n].inference_mode for n in self.active_adapters
               if n in self.peft_config):
            model.requires_grad_(False)

    # --- merging --------------------------------------------------------------------------

    def _check_merge_allowed(self) -> None:
        for name in self.active_adapters:
            if isinstance(self.peft_config.get(name), LorettaAdpConfig):
                raise ValueError("merge_and_unload: LoRETTA_adp adapters contain a non-linearity "
                                 "and cannot be merged into the base weights; use LoRETTA_rep, "
                                 "or unload() to drop them")
        for layer in self.model.modules():
            if isinstance(layer, LorettaLayer) and is_quantized(layer.get_base_layer().weight):
                raise quantized_error(layer)
        super()._check_merge_allowed()

    def merge_and_unload(self, progressbar: bool = False, safe_merge: bool = False,
                         adapter_names: list[str] | None = None,
                         dequantize: bool = False) -> nn.Module:
        """Fold the active LoRETTA_rep adapter into the weights; return the plain model.

        TT updates are added to the base weights, trained norms and heads replace the
        originals, and a TT pooler becomes the dense layer's new weight and bias. Nothing of
        the returned model trains (``requires_grad`` is off everywhere).

        Args:
            progressbar: Show a progress bar (PEFT's).
            safe_merge: Check the merged weights for NaN/inf before writing them.
            adapter_names: Adapters to merge (default: the active one).
            dequantize: Replace quantized base weights of the adapted layers by their float
                dequantisation first (else merging into a quantized base is refused).
        """
        if dequantize:
            for layer in self.model.modules():
                base = layer.get_base_layer() if isinstance(layer, LorettaLayer) else None
                if base is not None and is_quantized(base.weight):
                    base.weight = nn.Parameter(base.weight.dequantize(), requires_grad=False)
        return super().merge_and_unload(progressbar=progressbar, safe_merge=safe_merge,
                                        adapter_names=adapter_names).requires_grad_(False)

    def unload(self) -> nn.Module:
        """Remove every adapter and return the base model as it was (nothing merged; trained
        norms and heads are dropped for the originals; nothing trains)."""
        for key, module in list(self.model.named_modules()):
            if isinstance(module, AuxiliaryTrainingWrapper):
                parent, _, name = _get_submodules(self.model, key)
                setattr(parent, name, module.original_module)
        return super().unload().requires_grad_(False)

    # --- state-dict keys ------------------------------------------------------------------

    @classmethod
    def _remove_adapter_name_from_key(cls, key: str, adapter_name: str) -> str:
        """Drop the adapter name after the container: ``x.loretta_adp.<name>.up.cores.0`` ->
        ``x.loretta_adp.up.cores.0`` (transformers' loader puts any name back there)."""
        parts = key.split(".")
        for i in range(len(parts) - 1):
            if parts[i] in CONTAINERS and parts[i + 1] == adapter_name:
                return ".".join(parts[: i + 1] + parts[i + 2:])
        return key

    @classmethod
    def _remap_adapter_state_dict_for_load(cls, model: nn.Module, config: Any, adapter_name: str,
                                           state_dict: dict[str, torch.Tensor]) -> dict:
        """PEFT's remapping, then every tensor checked against the model before anything loads
        (PEFT itself loads with ``strict=False``).

        Raises:
            ValueError: naming the tensor, when the file has one the model lacks, lacks one
                the adapter has, or holds one of another shape.
        """
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
    """``modules_to_save`` as PEFT gets it: a head holding the TT pooler becomes its other
    children, and with ``train_norms`` the norms' names are added."""
    heads = {h for task in TASK_HEADS.values() for h in task}
    out: list[str] = []
    for entry in config.modules_to_save or []:
        hits = [n for n, _ in modules if n.endswith(entry)]
        if not hits and entry not in heads:
            raise ValueError(f"modules_to_save: {entry!r} matched no module of the model")
        splits = [n for n in hits if pooler is not None and pooler.startswith(n + ".")]
        if not splits:
            out.append(entry)
        for head in splits:
            children = dict(modules)[head].named_children()
            out += [f"{head}.{c}" for c, m in children
                    if f"{head}.{c}" != pooler and any(True for _ in m.parameters())]
    if config.norms_trained:
        out += sorted({n.rsplit(".", 1)[-1] for n, m in modules if n and is_norm(m)})
    return list(dict.fromkeys(out))
