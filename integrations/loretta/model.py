"""LorettaModel: a ``peft.PeftModel`` holding LoRETTA adapters, and ``get_peft_model``.

Everything PEFT's wrapper does, it does (``print_trainable_parameters``, ``disable_adapter()``,
``add_adapter`` / ``set_adapter`` / ``delete_adapter``, ``merge_and_unload`` / ``unload``,
``peft.save_as_lora``), and the Trainer treats it as the PEFT model it is. On top:
``save_pretrained`` is one atomic change; ``from_pretrained`` / ``load_adapter`` name the file
in every error and check every size before allocating; ``round_ranks``; and ``state_dict()`` is
the adapter state only (what accelerate checkpoints).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from peft import PeftModel
from torch import nn

from .config import LorettaConfig
from .layer import held_adapters
from .rank_adaptation import RankReport, round_ranks
from .saving import WEIGHTS_NAME, check_file, save_adapters
from .tuner import LorettaTuner, adapter_key_prefixes, check_adapter_name, under


def _weights_file(model_id: str | os.PathLike, subfolder: str | None) -> str | None:
    """The local weights file of a saved adapter (None for a Hub id)."""
    folder = os.path.join(os.fspath(model_id), subfolder or "")
    path = os.path.join(folder, WEIGHTS_NAME)
    if os.path.isdir(folder) and not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: not found (save_pretrained writes {WEIGHTS_NAME})")
    return path if os.path.isdir(folder) else None


class LorettaModel(PeftModel):
    """A transformers model carrying LoRETTA adapters (see :func:`get_peft_model`).

    ``state_dict()`` is the adapter state (PEFT's selection, adapter names kept in the keys):
    every tensor of every adapter and the base biases that train, never the frozen base model;
    ``load_state_dict`` takes such a dict, ``strict`` included. So accelerate's ``save_state``
    / ``load_state`` checkpoint only the adapter, tied-weight models included.

    Raises:
        TypeError: ``peft_config`` is not a LoRETTA config.
        ValueError: ``model`` carries LoRETTA adapters already (it was wrapped before).

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
        >>> sorted(model.state_dict())[0]  # the adapter state, not the frozen base model
        'base_model.model.model.layers.0.self_attn.q_proj.loretta_rep.default.lora_A.cores.0'
        >>> model.load_state_dict(model.state_dict())
        <All keys matched successfully>
    """

    def __init__(self, model: nn.Module, peft_config: LorettaConfig, adapter_name: str = "default",
                 **kwargs: Any) -> None:
        if not isinstance(peft_config, LorettaConfig):
            raise TypeError("peft_config: expected a LorettaAdpConfig or LorettaRepConfig, "
                            f"received {type(peft_config).__name__}")
        if held_adapters(model):
            raise ValueError(f"model: carries LoRETTA adapters {held_adapters(model)} already (it "
                             "was wrapped before); wrap a fresh base model, or add another "
                             "adapter with add_adapter(name, config) on the existing wrapper")
        super().__init__(model, peft_config, adapter_name, **kwargs)
        self.train(model.training)  # the wrapper reports the model's mode
        self.register_state_dict_post_hook(_keep_adapter_state)
        self.register_load_state_dict_post_hook(_frozen_base_is_not_missing)

    def add_adapter(self, adapter_name: str, peft_config: LorettaConfig, **kwargs: Any) -> None:
        """PEFT's ``add_adapter`` (a new, inactive adapter), the name checked first."""
        super().add_adapter(check_adapter_name(adapter_name), peft_config, **kwargs)

    def _adapter_keys(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` (relative to this model) are adapter state."""
        out = {k for k in keys if under(k, adapter_key_prefixes(self))}
        for config in self.peft_config.values():
            out.update(LorettaTuner._get_learnable_bias_state_dict(self, dict.fromkeys(keys),
                                                                    config))
        return out

    def save_pretrained(self, save_directory: str | os.PathLike, safe_serialization: bool = True,
                        selected_adapters: list[str] | None = None,
                        save_embedding_layers: str | bool = "auto", is_main_process: bool = True,
                        **kwargs: Any) -> None:
        """Write ``adapter_config.json`` and ``adapter_model.safetensors`` per adapter.

        PEFT's layout (``"default"`` in ``save_directory``, any other adapter in a subfolder of
        its name) and arguments (``state_dict`` among ``kwargs``); the save is one atomic
        change of ``save_directory`` (:func:`ttnet.atomic_folder.write_folder`) that keeps
        its other files. ValueError for an adapter name this model lacks.

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
        if not safe_serialization:
            raise ValueError("safe_serialization: LoRETTA adapters are saved as safetensors only")
        names = list(self.peft_config) if selected_adapters is None else list(selected_adapters)
        for name in names:
            if name not in self.peft_config:
                raise ValueError(f"adapter_name: expected one of {sorted(self.peft_config)}, "
                                 f"received {name!r}")
        state = kwargs.get("state_dict")
        if state is None:  # the full state: PEFT takes embeddings from it where it saves them
            state = {f"base_model.{k}": v for k, v in self.base_model.state_dict().items()}
        if is_main_process:
            save_adapters(self, save_directory, names, state_dict=state,
                          save_embedding_layers=save_embedding_layers)

    @classmethod
    def from_pretrained(cls, model: nn.Module, model_id: str | os.PathLike,
                        adapter_name: str = "default", is_trainable: bool = False,
                        config: LorettaConfig | None = None, **kwargs: Any) -> LorettaModel:
        """Rebuild a saved adapter on ``model``, a fresh base model of the same architecture
        (``is_trainable=False``: nothing trains). FileNotFoundError or ValueError naming the
        file and field, or the tensor, when the folder is incomplete, malformed or does not
        fit ``model``; ``kwargs`` go to :meth:`load_adapter` (e.g. ``subfolder``)."""
        if config is None:
            config = LorettaConfig.from_pretrained(model_id, subfolder=kwargs.get("subfolder"))
        _weights_file(model_id, kwargs.get("subfolder"))
        config.inference_mode = not is_trainable
        peft_model = cls(model, config, adapter_name)
        peft_model.load_adapter(model_id, adapter_name, is_trainable=is_trainable, **kwargs)
        return peft_model

    def load_adapter(self, model_id: str | os.PathLike, adapter_name: str,
                     is_trainable: bool = False, **kwargs: Any) -> Any:
        """Load a saved adapter as (new, inactive) adapter ``adapter_name``: the config read and
        checked as in :meth:`from_pretrained`, the weights file's header (names and shapes)
        checked against the model, then PEFT's ``load_adapter``. A refused load leaves the
        model as it was."""
        new = adapter_name not in self.peft_config
        config = LorettaConfig.from_pretrained(model_id, subfolder=kwargs.get("subfolder")) \
            if new else None
        path = _weights_file(model_id, kwargs.get("subfolder"))
        if new:
            config.inference_mode = not is_trainable
            self.add_adapter(adapter_name, config)
            if is_trainable:
                self.set_requires_grad(adapter_name)
        try:
            if path is not None:
                check_file(self, adapter_name, path)
        except ValueError:
            if new:
                self.delete_adapter(adapter_name)
            raise
        return super().load_adapter(model_id, adapter_name, is_trainable=is_trainable, **kwargs)

    def round_ranks(self, eps: float | None = None, max_rank: int | None = None,
                    inputs: dict[str, torch.Tensor] | None = None) -> RankReport:
        """Round the active adapter's TT factors (:func:`loretta.rank_adaptation.round_ranks`)."""
        return round_ranks(self, self.active_adapter, eps=eps, max_rank=max_rank, inputs=inputs)


def _keep_adapter_state(module: LorettaModel, state_dict: dict[str, Any], prefix: str,
                        local_metadata: dict) -> None:
    """``state_dict`` post-hook: drop the frozen base model's entries (in place)."""
    relative = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
    keep = module._adapter_keys(relative)
    for key in relative:
        if key not in keep:
            del state_dict[prefix + key]


def _frozen_base_is_not_missing(module: LorettaModel, incompatible_keys: Any) -> None:
    """``load_state_dict`` post-hook: the frozen base model is no part of the state. Keys come
    with the prefix of any module around this one (e.g. DDP's ``module.``), so a key is the
    base model's when a dotted suffix of it is a frozen name."""
    every = [f"base_model.{k}" for k in module.base_model.state_dict(keep_vars=True)]
    frozen = set(every) - module._adapter_keys(every)
    missing = incompatible_keys.missing_keys
    missing[:] = [key for key in missing if not any(
        ".".join(key.split(".")[i:]) in frozen for i in range(key.count(".") + 1))]


def get_peft_model(model: nn.Module, peft_config: LorettaConfig,
                   adapter_name: str = "default") -> LorettaModel:
    """Wrap ``model`` (adapted in place) with a LoRETTA adapter; ``peft.get_peft_model`` does
    the same through PEFT, returning PEFT's task-specific wrapper class.

    Example:
        >>> import torch
        >>> from transformers import DebertaConfig, DebertaForSequenceClassification
        >>> from loretta import LorettaAdpConfig, get_peft_model
        >>> _ = torch.manual_seed(0)
        >>> base = DebertaForSequenceClassification(DebertaConfig(hidden_size=768,
        ...     num_hidden_layers=1, num_attention_heads=12, intermediate_size=64,
        ...     vocab_size=32, num_labels=2))
        >>> model = get_peft_model(base, LorettaAdpConfig(task_type="SEQ_CLS", preset="paper"))
        >>> model.get_nb_trainable_parameters()[0]  # 2 adapters, 3 LayerNorms, pooler, head
        12778
    """
    if isinstance(peft_config, LorettaConfig):
        peft_config.base_model_name_or_path = getattr(model, "name_or_path", None) or None
    return LorettaModel(model, peft_config, adapter_name)
