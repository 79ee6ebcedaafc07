"""The adapter file: every trainable tensor of one adapter in ``adapter_model.safetensors``.

Keys are the parameter names inside the transformers model with the adapter name removed
(``...output.dense.loretta_adp.down.cores.0``), so a file loads under any adapter name.
Writes go through a temporary file and ``os.replace``. Loading checks every key and shape and
names the first tensor that does not fit; TT cores whose ranks differ (an adapter saved after
:meth:`~loretta.LorettaModel.round_ranks`) are resized to the file's ranks.
"""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file, save
from torch import nn

from ttnet.atomic import atomic_write

from .config import LorettaConfig
from .injection import bias_names
from .layer import CONTAINERS

WEIGHTS_NAME = "adapter_model.safetensors"


def adapter_state(
    model: nn.Module, config: LorettaConfig, adapter_name: str
) -> dict[str, tuple[str, torch.Tensor]]:
    """Map saved key -> (name in ``model``, live tensor) for adapter ``adapter_name``.

    Example:
        >>> import torch
        >>> from transformers import BertConfig, BertModel
        >>> from loretta import LorettaAdpConfig, get_peft_model
        >>> from loretta.saving import adapter_state
        >>> bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1,
        ...     num_attention_heads=4, intermediate_size=64, vocab_size=50))
        >>> peft = get_peft_model(bert, LorettaAdpConfig(bottleneck_size=4, train_norms=True))
        >>> state = adapter_state(peft.base_model, peft.peft_config["default"], "default")
        >>> sorted(state)[0]
        'embeddings.LayerNorm.loretta_copies.bias'
    """
    out: dict[str, tuple[str, torch.Tensor]] = {}
    for key, value in model.state_dict(keep_vars=True).items():
        parts = key.split(".")
        for i in range(len(parts) - 1):
            if parts[i] in CONTAINERS and parts[i + 1] == adapter_name:
                out[".".join(parts[: i + 1] + parts[i + 2 :])] = (key, value)
                break
    for name in bias_names(model, config):
        out[name] = (name, model.get_parameter(name))
    return out


def save_adapter_file(
    model: nn.Module, config: LorettaConfig, adapter_name: str, directory: str | os.PathLike
) -> str:
    """Write the adapter's tensors to ``directory/adapter_model.safetensors``; return the path."""
    tensors = {
        key: value.detach().to("cpu").contiguous()
        for key, (_, value) in adapter_state(model, config, adapter_name).items()
    }
    path = os.path.join(directory, WEIGHTS_NAME)
    atomic_write(path, save(tensors, metadata={"format": "pt", "peft_type": config.peft_type}))
    return path


def replace_parameter(model: nn.Module, name: str, value: torch.Tensor) -> None:
    """Put a new parameter holding ``value`` at ``name`` (its shape may differ from the old one).

    Keeps ``requires_grad``, dtype and device of the parameter it replaces; the new tensor is
    contiguous (safetensors and checkpointing need that).
    """
    owner, _, attr = name.rpartition(".")
    module = model.get_submodule(owner)
    old = module.get_parameter(attr) if not attr.isdigit() else module[int(attr)]
    new = nn.Parameter(value.to(dtype=old.dtype, device=old.device).contiguous(),
                       requires_grad=old.requires_grad)
    if attr.isdigit():
        module[int(attr)] = new
    else:
        setattr(module, attr, new)


def _rank_change_only(old: torch.Size, new: torch.Size) -> bool:
    return len(old) == len(new) >= 3 and old[1:-1] == new[1:-1]


def load_adapter_file(
    model: nn.Module, config: LorettaConfig, adapter_name: str, directory: str | os.PathLike
) -> None:
    """Copy the tensors of ``directory/adapter_model.safetensors`` into adapter ``adapter_name``.

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: naming the tensor when a key is missing, unexpected or of another shape.
    """
    path = os.path.join(directory, WEIGHTS_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model_id: expected {WEIGHTS_NAME} in it, not found: {path}")
    saved = load_file(path)
    expected = adapter_state(model, config, adapter_name)
    for key, value in saved.items():
        if key not in expected:
            raise ValueError(
                f"{WEIGHTS_NAME}: tensor {key!r} of shape {tuple(value.shape)} has no "
                "counterpart in the model (a different architecture or adapter config?)"
            )
    resized = []
    for key, (name, target) in expected.items():
        if key not in saved:
            raise ValueError(
                f"{WEIGHTS_NAME}: the model expects tensor {key!r} of shape "
                f"{tuple(target.shape)}, the file lacks it (a different architecture?)"
            )
        value = saved[key]
        if value.shape == target.shape:
            continue
        if ".cores." in key and _rank_change_only(target.shape, value.shape):
            resized.append((name, value))
            continue
        raise ValueError(
            f"{WEIGHTS_NAME}: tensor {key!r}: the model expects shape {tuple(target.shape)}, "
            f"the file has {tuple(value.shape)} (a model of another size?)"
        )
    for name, value in resized:  # only once every tensor is known to fit
        replace_parameter(model, name, value)
    with torch.no_grad():
        for key, (_, target) in adapter_state(model, config, adapter_name).items():
            target.copy_(saved[key])
