"""LorettaModel: a transformers model with named LoRETTA adapters, in PEFT's shape.

``get_peft_model(model, config)`` wraps a model; the wrapper forwards calls (``forward``,
``generate``, ``config``, ...) to it and adds PEFT's verbs: ``print_trainable_parameters``,
``save_pretrained`` / ``from_pretrained``, ``merge_and_unload`` / ``unload``,
``disable_adapter()``, ``add_adapter`` / ``set_adapter`` / ``delete_adapter`` and
``round_ranks`` (rank adaptation after training).

Its ``state_dict`` is the adapter state only, which is what the ``Trainer`` and accelerate
checkpoint (see :class:`LorettaModel`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ttnet_nn import TTLinear

from .config import LorettaConfig, LorettaRepConfig
from .injection import inject, mark_trainable, wrappers
from .layer import AdapterWrapper, LoraWrapper
from .ranks import RankReport, round_ranks
from .saving import adapter_state, load_adapter_file, save_adapter_file


class LorettaModel(nn.Module):
    """A transformers model carrying LoRETTA adapters (see :func:`get_peft_model`).

    Checkpoints: ``state_dict()`` is the adapter state, as PEFT's ``get_peft_model_state_dict``
    gives it: every tensor of every adapter (TT factors, trained norms, heads, pooler,
    ``modules_to_save``) and the base biases that train, never the frozen base model (that is
    ``base_model.state_dict()``). ``load_state_dict`` takes such a dict, ``strict`` included.
    Hugging Face's ``Trainer`` saves a model that is not a ``PreTrainedModel`` as its
    ``state_dict`` (``checkpoint-N/model.safetensors``) and resumes with ``load_state_dict``;
    accelerate's ``save_state`` / ``load_state`` do the same. So their checkpoints hold only
    the adapter, models with tied weights (GPT-2, tied-embedding Llamas) checkpoint without
    safetensors' shared-tensor error, and resuming continues exactly. To turn a checkpoint
    into adapter files: ``model.load_state_dict(safetensors.torch.load_file(path))``, then
    :meth:`save_pretrained`.

    Attributes:
        base_model: The wrapped transformers model (adapted in place).
        peft_config: ``{adapter name: config}``.
        active_adapter: Name of the adapter in use.

    Example:
        >>> import torch
        >>> from transformers import LlamaConfig, LlamaForCausalLM
        >>> from loretta import LorettaRepConfig, get_peft_model
        >>> _ = torch.manual_seed(0)
        >>> base = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64,
        ...     num_hidden_layers=2, num_attention_heads=4, vocab_size=64))
        >>> model = get_peft_model(base, LorettaRepConfig(r=4, tensor_rank=2))
        >>> model.print_trainable_parameters()
        trainable params: 384 || all params: 25,120 || trainable%: 1.5287
        >>> ids = torch.tensor([[1, 2, 3]])
        >>> model(input_ids=ids).logits.shape
        torch.Size([1, 3, 64])
        >>> sorted(model.state_dict())[0]  # the adapter state, not the frozen base model
        'base_model.model.layers.0.self_attn.q_proj.loretta_rep.default.lora_A.cores.0'
        >>> model.load_state_dict(model.state_dict())
        <All keys matched successfully>
    """

    def __init__(self, model: nn.Module, config: LorettaConfig, adapter_name: str = "default"):
        super().__init__()
        self.base_model = model
        self.peft_config: dict[str, LorettaConfig] = {}
        self.active_adapter = adapter_name
        self.add_adapter(adapter_name, config)
        self.train(model.training)
        self.register_state_dict_post_hook(_keep_adapter_state)
        self.register_load_state_dict_post_hook(_frozen_base_is_not_missing)

    # --- plumbing -------------------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped model."""
        return self.base_model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        """Forward unknown attributes (``config``, ``generate``, ...) to the wrapped model."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_model":
                raise
            return getattr(self.base_model, name)

    def get_base_model(self) -> nn.Module:
        """The wrapped transformers model (with the adapters in it)."""
        return self.base_model

    def _state_names(self) -> tuple[set[str], set[str]]:
        """Return ``(adapter names, frozen names)``: the ``state_dict`` keys (relative to this
        model) of the adapter state, and those of the frozen base model that it leaves out."""
        adapter: set[str] = set()
        for name, config in self.peft_config.items():
            adapter.update(
                f"base_model.{key}"
                for key, _ in adapter_state(self.base_model, config, name).values()
            )
        every = {f"base_model.{key}" for key in self.base_model.state_dict(keep_vars=True)}
        return adapter, every - adapter

    # --- adapters -------------------------------------------------------------------------

    def add_adapter(self, adapter_name: str, config: LorettaConfig) -> None:
        """Add a new adapter; the active adapter stays as it is (the first one becomes active).

        Example:
            >>> import torch
            >>> from transformers import BertConfig, BertModel
            >>> from loretta import LorettaAdpConfig, get_peft_model
            >>> bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1,
            ...     num_attention_heads=4, intermediate_size=64, vocab_size=50))
            >>> model = get_peft_model(bert, LorettaAdpConfig(bottleneck_size=4))
            >>> model.add_adapter("task_b", LorettaAdpConfig(bottleneck_size=8))
            >>> model.set_adapter("task_b"); model.active_adapter
            'task_b'
        """
        if not isinstance(config, LorettaConfig):
            raise TypeError(
                f"config: expected a LorettaAdpConfig or LorettaRepConfig, "
                f"received {type(config).__name__}"
            )
        if not isinstance(adapter_name, str) or not adapter_name or "." in adapter_name:
            raise ValueError(
                f"adapter_name: expected a non-empty name without dots, received {adapter_name!r}"
            )
        if adapter_name in self.peft_config:
            raise ValueError(f"adapter_name: {adapter_name!r} exists already")
        if self.peft_config and type(config) is not type(self._config):
            raise ValueError(
                f"config: this model holds {self._config.peft_type} adapters, "
                f"received a {config.peft_type} config; one model uses one method"
            )
        config.base_model_name_or_path = getattr(self.base_model, "name_or_path", None) or None
        inject(self.base_model, config, adapter_name)
        self.peft_config[adapter_name] = config
        self.set_adapter(self.active_adapter if self.active_adapter in self.peft_config
                         else adapter_name)

    @property
    def _config(self) -> LorettaConfig:
        return self.peft_config[self.active_adapter]

    def set_adapter(self, adapter_name: str) -> None:
        """Use adapter ``adapter_name`` (and make only its parameters trainable)."""
        self._check_name(adapter_name)
        self.active_adapter = adapter_name
        for _, module in wrappers(self.base_model):
            module.active_adapter = adapter_name
        mark_trainable(self.base_model, self.peft_config[adapter_name], adapter_name)

    def delete_adapter(self, adapter_name: str) -> None:
        """Remove adapter ``adapter_name``; another one becomes active if it was."""
        self._check_name(adapter_name)
        if len(self.peft_config) == 1:
            raise ValueError(f"adapter_name: {adapter_name!r} is the only adapter; use unload()")
        for _, module in wrappers(self.base_model):
            if adapter_name in module.adapter_names():
                module.delete(adapter_name)
        del self.peft_config[adapter_name]
        if self.active_adapter == adapter_name:
            self.active_adapter = next(iter(self.peft_config))
        self.set_adapter(self.active_adapter)

    def _check_name(self, adapter_name: str) -> None:
        if adapter_name not in self.peft_config:
            raise ValueError(
                f"adapter_name: expected one of {sorted(self.peft_config)}, "
                f"received {adapter_name!r}"
            )

    @contextlib.contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """Context manager in which the model computes exactly what the base model computes.

        Adapters are skipped and the original norms, heads and pooler are used. (Base biases
        trained with ``bias="all"`` / ``"loretta_only"`` are trained in place and stay.)
        """
        modules = [m for _, m in wrappers(self.base_model)]
        before = [m.disabled for m in modules]
        for m in modules:
            m.disabled = True
        try:
            yield
        finally:
            for m, state in zip(modules, before):
                m.disabled = state

    # --- counting -------------------------------------------------------------------------

    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """Return ``(trainable parameters, all parameters)`` as PEFT counts them."""
        trainable = total = 0
        for _, param in self.named_parameters():
            total += param.numel()
            if param.requires_grad:
                trainable += param.numel()
        return trainable, total

    def print_trainable_parameters(self) -> None:
        """Print ``trainable params: N || all params: M || trainable%: P`` (PEFT's format)."""
        trainable, total = self.get_nb_trainable_parameters()
        print(
            f"trainable params: {trainable:,d} || all params: {total:,d} || "
            f"trainable%: {100 * trainable / total:.4f}"
        )

    # --- saving ---------------------------------------------------------------------------

    def save_pretrained(
        self, save_directory: str | os.PathLike, selected_adapters: list[str] | None = None
    ) -> None:
        """Write ``adapter_config.json`` and ``adapter_model.safetensors`` per adapter (atomically).

        PEFT's layout: the adapter named ``"default"`` goes in ``save_directory`` itself, any
        other adapter ``name`` in ``save_directory/name``. Each file holds every trainable
        tensor of its adapter: TT factors, norms, heads, the TT pooler, ``modules_to_save``
        and trained biases.

        Args:
            save_directory: Folder to write (created if missing).
            selected_adapters: Names of the adapters to save; ``None`` saves all of them.

        Raises:
            ValueError: ``selected_adapters`` names an adapter this model does not have.

        Example:
            >>> import tempfile, torch
            >>> from transformers import BertConfig, BertModel
            >>> from loretta import LorettaAdpConfig, LorettaModel, get_peft_model
            >>> def bert():
            ...     torch.manual_seed(0)
            ...     return BertModel(BertConfig(hidden_size=32, num_hidden_layers=1,
            ...         num_attention_heads=4, intermediate_size=64, vocab_size=50))
            >>> model = get_peft_model(bert(), LorettaAdpConfig(bottleneck_size=4))
            >>> model.add_adapter("task_b", LorettaAdpConfig(bottleneck_size=8))
            >>> folder = tempfile.mkdtemp()
            >>> model.save_pretrained(folder)  # default in folder, task_b in folder/task_b
            >>> reloaded = LorettaModel.from_pretrained(bert(), f"{folder}/task_b", "task_b")
            >>> reloaded.peft_config["task_b"].bottleneck_size
            8
        """
        names = list(self.peft_config) if selected_adapters is None else list(selected_adapters)
        for name in names:
            self._check_name(name)
        for name in names:
            directory = os.fspath(save_directory)
            if name != "default":
                directory = os.path.join(directory, name)
            os.makedirs(directory, exist_ok=True)
            config = self.peft_config[name]
            save_adapter_file(self.base_model, config, name, directory)
            config.save_pretrained(directory)

    @classmethod
    def from_pretrained(
        cls,
        model: nn.Module,
        model_id: str | os.PathLike,
        adapter_name: str = "default",
        is_trainable: bool = False,
    ) -> LorettaModel:
        """Rebuild a saved adapter on ``model`` (a fresh base model of the same architecture).

        Args:
            model: The base transformers model.
            model_id: Directory written by :meth:`save_pretrained`.
            adapter_name: Name for the loaded adapter.
            is_trainable: Keep it trainable (else ``inference_mode``: nothing trains).

        Raises:
            ValueError: naming the tensor when the saved adapter does not fit ``model``.
        """
        config = LorettaConfig.from_pretrained(model_id)
        config.inference_mode = not is_trainable
        peft = cls(model, config, adapter_name)
        load_adapter_file(peft.base_model, config, adapter_name, model_id)
        if not is_trainable:
            peft.eval()
        return peft

    def load_adapter(
        self, model_id: str | os.PathLike, adapter_name: str, is_trainable: bool = False
    ) -> None:
        """Load a saved adapter into this model as a new adapter ``adapter_name``."""
        config = LorettaConfig.from_pretrained(model_id)
        config.inference_mode = not is_trainable
        self.add_adapter(adapter_name, config)
        load_adapter_file(self.base_model, config, adapter_name, model_id)

    # --- unwrapping -----------------------------------------------------------------------

    def _unwrap(self, merge: bool) -> nn.Module:
        name = self.active_adapter
        if merge and not isinstance(self._config, LorettaRepConfig):
            raise ValueError(
                "merge_and_unload: LoRETTA_adp adapters contain a non-linearity and cannot be "
                "merged into the base weights; use LoRETTA_rep, or unload() to drop them"
            )
        for path, module in list(wrappers(self.base_model)):
            if isinstance(module, (AdapterWrapper, LoraWrapper)):
                if merge and name in module.adapter_names():
                    module.merge(name)
                new = module.base_layer
            else:
                new = module.loretta_copies[name] if merge and name in module.adapter_names() \
                    else module.original_module
                if isinstance(new, TTLinear):
                    new = new.to_linear()
            parent, _, child = path.rpartition(".")
            setattr(self.base_model.get_submodule(parent) if parent else self.base_model,
                    child, new)
        for param in self.base_model.parameters():
            param.requires_grad_(False)
        return self.base_model

    def merge_and_unload(self) -> nn.Module:
        """Fold the active LoRETTA_rep adapter into the weights; return the plain model.

        The TT LoRA updates are added to the base weights, trained norms and heads replace
        the originals, and a TT pooler becomes a dense ``nn.Linear``: the result holds only
        transformers' own modules. Outputs match the adapted model within float tolerance.
        """
        return self._unwrap(merge=True)

    def unload(self) -> nn.Module:
        """Remove every adapter and return the base model as it was (nothing merged)."""
        return self._unwrap(merge=False)

    # --- rank adaptation ------------------------------------------------------------------

    def round_ranks(
        self,
        eps: float | None = None,
        max_rank: int | None = None,
        inputs: dict[str, torch.Tensor] | None = None,
    ) -> RankReport:
        """Re-round every TT factor of the active adapter (:func:`loretta.ranks.round_ranks`)."""
        return round_ranks(self, eps=eps, max_rank=max_rank, inputs=inputs)


def _keep_adapter_state(
    module: LorettaModel, state_dict: dict[str, Any], prefix: str, local_metadata: dict
) -> None:
    """``state_dict`` post-hook: drop the frozen base model's entries (in place)."""
    keep, _ = module._state_names()
    for key in [k for k in state_dict if k.startswith(prefix) and k[len(prefix):] not in keep]:
        del state_dict[key]


def _frozen_base_is_not_missing(module: LorettaModel, incompatible_keys: Any) -> None:
    """``load_state_dict`` post-hook: the frozen base model is no part of the state.

    The hook sees full keys (with the prefix of any module around this one, e.g. DDP's
    ``module.``), so a key is the base model's when a dotted suffix of it is a frozen name.
    """
    _, frozen = module._state_names()
    missing = incompatible_keys.missing_keys

    def is_frozen(key: str) -> bool:
        parts = key.split(".")
        return any(".".join(parts[i:]) in frozen for i in range(len(parts)))

    missing[:] = [key for key in missing if not is_frozen(key)]


def get_peft_model(
    model: nn.Module, peft_config: LorettaConfig, adapter_name: str = "default"
) -> LorettaModel:
    """Wrap ``model`` with a LoRETTA adapter (the model is adapted in place).

    Args:
        model: A transformers model (built from a config or loaded with ``from_pretrained``).
        peft_config: A :class:`~loretta.LorettaAdpConfig` or :class:`~loretta.LorettaRepConfig`.
        adapter_name: Name of the first adapter.

    Example:
        >>> import torch
        >>> from transformers import DebertaConfig, DebertaForSequenceClassification
        >>> from loretta import LorettaAdpConfig, get_peft_model
        >>> _ = torch.manual_seed(0)
        >>> base = DebertaForSequenceClassification(DebertaConfig(hidden_size=768,
        ...     num_hidden_layers=1, num_attention_heads=12, intermediate_size=64,
        ...     vocab_size=32, num_labels=2))
        >>> ids = torch.tensor([[1, 2, 3, 4]])
        >>> model = get_peft_model(base, LorettaAdpConfig(task_type="SEQ_CLS", preset="paper"))
        >>> model.get_nb_trainable_parameters()[0]  # 2 adapters, 3 LayerNorms, pooler, head
        12778
    """
    return LorettaModel(model, peft_config, adapter_name)
