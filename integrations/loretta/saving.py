"""A saved adapter's files in PEFT's layout, written as one atomic change, and checked on load.

Per adapter, ``adapter_config.json`` and ``adapter_model.safetensors`` (``"default"`` in the
folder, any other adapter in a subfolder of its name) holding PEFT's own selection of tensors
(``peft.get_peft_model_state_dict``), written by :func:`ttnet.atomic_folder.write_folder`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from peft import get_peft_model_state_dict
from safetensors import safe_open
from safetensors.torch import save

from ttnet.atomic_folder import write_folder
from .config import CONFIG_NAME

WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


def check_tensors(expected: Mapping[str, tuple], found: Mapping[str, tuple], source: str) -> None:
    """Compare a file's ``{key: shape}`` with what the model expects: ValueError naming a
    tensor the model lacks or shapes otherwise, or one the file lacks.

    Example:
        >>> from loretta.saving import check_tensors
        >>> check_tensors({"a": (2, 3)}, {"a": (3, 2)}, "f.safetensors")
        Traceback (most recent call last):
        ...
        ValueError: f.safetensors: tensor 'a': the model expects shape (2, 3), the file has (3, 2) (a model of another size?)
    """
    for key, shape in found.items():
        if key not in expected:
            raise ValueError(f"{source}: tensor {key!r} of shape {tuple(shape)} has no counterpart "
                             "in the model (a different architecture or adapter config?)")
        if tuple(expected[key]) != tuple(shape):
            raise ValueError(f"{source}: tensor {key!r}: the model expects shape "
                             f"{tuple(expected[key])}, the file has {tuple(shape)} (a model of "
                             "another size?)")
    for key in sorted(set(expected) - set(found)):
        raise ValueError(f"{source}: the model expects tensor {key!r} of shape "
                         f"{tuple(expected[key])}, the file lacks it (a different architecture?)")


def check_file(model: Any, adapter_name: str, path: str) -> None:
    """Check the weights file at ``path`` against adapter ``adapter_name`` of PEFT model
    ``model`` from its header alone (no tensor is read); ValueError naming ``path`` for a file
    safetensors cannot parse, else as :func:`check_tensors`."""
    try:
        with safe_open(path, framework="pt") as fh:
            found = {k.removeprefix(PEFT_PREFIX): tuple(fh.get_slice(k).get_shape())
                     for k in fh.keys()}  # noqa: SIM118 (safe_open is no dict)
    except Exception as err:  # noqa: BLE001 (safetensors' own error types for bad headers)
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    state = {f"base_model.{k}": v for k, v in model.base_model.state_dict().items()}
    expected = get_peft_model_state_dict(model, state_dict=state, adapter_name=adapter_name)
    check_tensors({k.removeprefix(PEFT_PREFIX): tuple(v.shape) for k, v in expected.items()},
                  found, path)


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, each with storage of its own (safetensors refuses aliases)."""
    seen: set[int] = set()
    out = {}
    for key, value in state.items():
        value = value.detach().to("cpu").contiguous()
        if value.untyped_storage().data_ptr() in seen and value.numel():
            value = value.clone()
        seen.add(value.untyped_storage().data_ptr())
        out[key] = value
    return out


def adapter_files(model: Any, adapter_names: Sequence[str],
                  state_dict: dict[str, torch.Tensor] | None = None,
                  save_embedding_layers: str | bool = "auto") -> dict[str, bytes]:
    """``{relative path: bytes}`` of adapters ``adapter_names`` of PEFT model ``model``
    (``state_dict`` and ``save_embedding_layers`` as for ``PeftModel.save_pretrained``)."""
    files = {}
    for name in adapter_names:
        folder = "" if name == "default" else name
        state = get_peft_model_state_dict(model, state_dict=state_dict, adapter_name=name,
                                          save_embedding_layers=save_embedding_layers)
        config = copy.copy(model.peft_config[name])
        config.inference_mode = True
        if config.base_model_name_or_path is None:
            config.base_model_name_or_path = getattr(model.get_base_model(), "name_or_path",
                                                     None) or None
        files[os.path.join(folder, WEIGHTS_NAME)] = save(_unshared(state),
                                                         metadata={"format": "pt"})
        files[os.path.join(folder, CONFIG_NAME)] = config.to_json_string().encode("utf-8")
    return files


def save_adapters(model: Any, save_directory: str | os.PathLike, adapter_names: Sequence[str],
                  **kwargs: Any) -> None:
    """Write :func:`adapter_files` into ``save_directory`` as one atomic change."""
    write_folder(save_directory, adapter_files(model, adapter_names, **kwargs))
