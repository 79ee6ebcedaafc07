"""LorettaModel: a ``peft.PeftModel`` holding LoRETTA adapters, and ``get_peft_model``.

Everything PEFT's wrapper does, it does (``print_trainable_parameters``, ``disable_adapter()``,
``add_adapter`` / ``set_adapter`` / ``delete_adapter``, ``merge_and_unload`` / ``unload``,
``peft.save_as_lora``), and the Trainer treats it as the PEFT model it is. On top:

* ``save_pretrained`` replaces the adapter files as one atomic change (a killed save leaves the
  old adapter or the new one, never a mix);
* ``from_pretrained`` / ``load_adapter`` read ``adapter_config.json`` with errors that name the
  file, and check every size before anything is allocated;
* ``round_ranks`` (rank adaptation after training);
* ``state_dict()`` is the adapter state only, which is what accelerate checkpoints.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from peft import PeftModel
from torch import nn

from .config import LorettaConfig
from .layer import LorettaLayer
from .rank_adaptation import RankReport, round_ranks
from .saving import WEIGHTS_NAME, check_file, save_adapters
from .tuner import LorettaTuner, adapter_key_prefixes, check_adapter_name, under


def _weights_file(model_id: str | os.PathLike, subfolder: str | None) -> str | None:
    """The local weights file of a saved adapter (None for a Hub id); FileNotFoundError if
    the folder exists without it."""
    folder = os.path.join(os.fspath(model_id), subfolder or "")
    path = os.path.join(folder, WEIGHTS_NAME)
    if os.path.isdir(folder) and not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: not found (save_pretrained writes {WEIGHTS_NAME})")
    return path if os.path.isdir(folder) else None


class LorettaModel(PeftModel):
    """A transformers model carrying LoRETTA adapters (see :func:`get_peft_model`).

    Checkpoints: ``state_dict()`` is the adapter state, as PEFT's ``get_peft_model_state_dict``
    selects it but with the adapter names in the keys: every tensor of every adapter (TT
    factors, trained norms, heads, pooler, ``modules_to_save``) and the base biases that train,
    never the frozen base model. ``load_state_dict`` takes such a dict, ``strict`` included.
    accelerate's ``save_state`` / ``load_state`` thus checkpoint only the adapter (models with
    tied weights included). The Trainer saves it with :meth:`save_pretrained`.

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
        >>> model(input_ids=torch.tensor([[1, 2, 3]])).logits.shape
        torch.Size([1, 3, 64])
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
        held = sorted({a for m in model.modules() if isinstance(m, LorettaLayer)
                       for a in m.adapters})
        if held:
            raise ValueError(f"model: carries LoRETTA adapters {held} already (it was wrapped "
                             "before); wrap a fresh base model, or add another adapter with "
                             "add_adapter(name, config) on the existing wrapper")
        super().__init__(model, peft_config, adapter_name, **kwargs)
        self.register_state_dict_post_hook(_keep_adapter_state)
        self.register_load_state_dict_post_hook(_frozen_base_is_not_missing)

    def add_adapter(self, adapter_name: str, peft_config: LorettaConfig, **kwargs: Any) -> None:
        """Add a new, inactive adapter (PEFT's ``add_adapter``, the name checked first).

        Raises:
            ValueError: ``adapter_name`` is not letters, digits, ``_`` and ``-``.
        """
        super().add_adapter(check_adapter_name(adapter_name), peft_config, **kwargs)

    def _adapter_keys(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` (relative to this model) are adapter state."""
        prefixes = adapter_key_prefixes(self)
        out = {k for k in keys if under(k, prefixes)}
        for config in self.peft_config.values():
            out.update(LorettaTuner._get_learnable_bias_state_dict(self, dict.fromkeys(keys),
                                                                    config))
        return out

    def save_pretrained(self, save_directory: str | os.PathLike, safe_serialization: bool = True,
                        selected_adapters: list[str] | None = None,
                        save_embedding_layers: str | bool = "auto", is_main_process: bool = True,
                        **kwargs: Any) -> None:
        """Write ``adapter_config.json`` and ``adapter_model.safetensors`` per adapter.

        PEFT's layout: the adapter named ``"default"`` goes in ``save_directory`` itself, any
        other adapter ``name`` in ``save_directory/name``. The whole save is one atomic change
        of ``save_directory`` (:func:`loretta.atomic_folder.write_folder`); other files in it
        are kept.

        Args:
            save_directory: Folder to write (created if missing).
            safe_serialization: Must be True (safetensors).
            selected_adapters: Names of the adapters to save; ``None`` saves all of them.
            save_embedding_layers: As for PEFT.
            is_main_process: Only the main process writes.
            **kwargs: ``state_dict`` (the model's, e.g. gathered by the Trainer).

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
        if not safe_serialization:
            raise ValueError("safe_serialization: LoRETTA adapters are saved as safetensors only")
        names = list(self.peft_config) if selected_adapters is None else list(selected_adapters)
        for name in names:
            if name not in self.peft_config:
                raise ValueError(f"adapter_name: expected one of {sorted(self.peft_config)}, "
                                 f"received {name!r}")
        if not is_main_process:
            return
        state = kwargs.get("state_dict")
        if state is None:  # the full state: PEFT picks embeddings from it where it saves them
            state = {f"base_model.{k}": v for k, v in self.base_model.state_dict().items()}
        save_adapters(self, save_directory, names, state_dict=state,
                      save_embedding_layers=save_embedding_layers)

    @classmethod
    def from_pretrained(cls, model: nn.Module, model_id: str | os.PathLike,
                        adapter_name: str = "default", is_trainable: bool = False,
                        config: LorettaConfig | None = None, **kwargs: Any) -> LorettaModel:
        """Rebuild a saved adapter on ``model`` (a fresh base model of the same architecture).

        Args:
            model: The base transformers model.
            model_id: Folder written by :meth:`save_pretrained`.
            adapter_name: Name for the loaded adapter.
            is_trainable: Keep it trainable (else ``inference_mode``: nothing trains).
            config: The config to use instead of the folder's.
            **kwargs: Passed to :meth:`load_adapter` (e.g. ``subfolder``).

        Raises:
            FileNotFoundError: naming the missing file.
            ValueError: naming the file and field, or the tensor, when the saved adapter is
                malformed or does not fit ``model``.
        """
        if config is None:
            config = LorettaConfig.from_pretrained(model_id, subfolder=kwargs.get("subfolder"))
        _weights_file(model_id, kwargs.get("subfolder"))
        config.inference_mode = not is_trainable
        peft_model = cls(model, config, adapter_name)
        peft_model.load_adapter(model_id, adapter_name, is_trainable=is_trainable, **kwargs)
        return peft_model

    def load_adapter(self, model_id: str | os.PathLike, adapter_name: str,
                     is_trainable: bool = False, **kwargs: Any) -> Any:
        """Load a saved adapter as adapter ``adapter_name`` (created first if new).

        The config is read and checked as in :meth:`from_pretrained`; the weights go through
        PEFT's ``load_adapter`` once the file's header (names and shapes of all tensors) is
        known to fit. The new adapter is not activated (PEFT's rule).

        Raises:
            FileNotFoundError: naming the missing file.
            ValueError: naming the file and field or the tensor that does not fit.
        """
        new = adapter_name not in self.peft_config
        if new:
            config = LorettaConfig.from_pretrained(model_id, subfolder=kwargs.get("subfolder"))
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
            if new:  # leave the model as it was
                self.delete_adapter(adapter_name)
            raise
        return super().load_adapter(model_id, adapter_name, is_trainable=is_trainable, **kwargs)

    def round_ranks(self, eps: float | None = None, max_rank: int | None = None,
                    inputs: dict[str, torch.Tensor] | None = None) -> RankReport:
        """Re-round every TT factor of the active adapter
        (:func:`loretta.rank_adaptation.round_ranks`)."""
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
    """``load_state_dict`` post-hook: the frozen base model is no part of the state.

    The hook sees full keys (with the prefix of any module around this one, e.g. DDP's
    ``module.``), so a key is the base model's when a dotted suffix of it is a frozen name.
    """
    every = [f"base_model.{k}" for k in module.base_model.state_dict(keep_vars=True)]
    frozen = set(every) - module._adapter_keys(every)

    def is_frozen(key: str) -> bool:
        parts = key.split(".")
        return any(".".join(parts[i:]) in frozen for i in range(len(parts)))

    missing = incompatible_keys.missing_keys
    missing[:] = [key for key in missing if not is_frozen(key)]


def get_peft_model(model: nn.Module, peft_config: LorettaConfig,
                   adapter_name: str = "default") -> LorettaModel:
    """Wrap ``model`` with a LoRETTA adapter (the model is adapted in place).

    ``peft.get_peft_model(model, peft_config)`` does the same through PEFT (and returns PEFT's
    task-specific wrapper class).

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
        >>> model = get_peft_model(base, LorettaAdpConfig(task_type="SEQ_CLS", preset="paper"))
        >>> model.get_nb_trainable_parameters()[0]  # 2 adapters, 3 LayerNorms, pooler, head
        12778
    """
    if isinstance(peft_config, LorettaConfig):
        peft_config.base_model_name_or_path = getattr(model, "name_or_path", None) or None
    return LorettaModel(model, peft_config, adapter_name)
