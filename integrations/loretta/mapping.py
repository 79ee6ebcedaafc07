"""Where LoRETTA goes in each model family, and how module names are matched.

Defaults (``preset=None``): LoRETTA_adp puts one adapter on the output of the attention output
projection and one on the output of the feed-forward output projection of each layer
(Houlsby's placement; the paper's for the BERT family); LoRETTA_rep takes PEFT's own LoRA
defaults (and, for phi3 and distilbert, which PEFT's table lacks, the fused QKV or the query
and value projections). ``preset="paper"`` puts a decoder's adapters where the official code
does: all in the MLP, on the inputs of the gate and up projections and the output of the down
projection. Any other model works with explicit ``target_modules``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

_LLAMA_LIKE = ("llama", "mistral", "qwen2", "gemma", "gemma2")


@dataclass(frozen=True)
class FamilyDefaults:
    """Default LoRETTA placement of one ``model_type``.

    Attributes:
        adapter_targets: LoRETTA_adp targets (adapter on their output) without a preset.
        paper_adapter_targets: ``{target: "input" | "output"}`` of the official placement.
        lora_targets: LoRETTA_rep targets where PEFT's LoRA table has no entry.
        pooler: Path of the SEQ_CLS pooler dense layer that ``tt_pooler`` replaces, or None.
    """

    adapter_targets: tuple[str, ...]
    paper_adapter_targets: Mapping[str, str]
    lora_targets: tuple[str, ...] = ()
    pooler: str | None = None


def _bert_like(pooler: str) -> FamilyDefaults:
    return FamilyDefaults(
        adapter_targets=("attention.output.dense", "output.dense"),
        paper_adapter_targets={"attention.output.dense": "output", "output.dense": "output"},
        pooler=pooler,
    )


_DECODER = ("self_attn.o_proj", "mlp.down_proj")
DEFAULTS: dict[str, FamilyDefaults] = {
    **{name: FamilyDefaults(_DECODER, {"gate_proj": "input", "up_proj": "input",
                                       "down_proj": "output"}) for name in _LLAMA_LIKE},
    "phi3": FamilyDefaults(_DECODER, {"gate_up_proj": "input", "down_proj": "output"},
                           lora_targets=("qkv_proj",)),
    "gpt2": FamilyDefaults(("attn.c_proj", "mlp.c_proj"),
                           {"mlp.c_fc": "input", "mlp.c_proj": "output"}),
    "gpt_neox": FamilyDefaults(("attention.dense", "mlp.dense_4h_to_h"),
                               {"dense_h_to_4h": "input", "dense_4h_to_h": "output"}),
    "opt": FamilyDefaults(("self_attn.out_proj", "fc2"), {"fc1": "input", "fc2": "output"}),
    "bert": _bert_like("bert.pooler.dense"),
    "roberta": _bert_like("classifier.dense"),
    "deberta": _bert_like("pooler.dense"),
    "deberta-v2": _bert_like("pooler.dense"),
    "distilbert": FamilyDefaults(
        adapter_targets=("attention.out_lin", "ffn.lin2"),
        paper_adapter_targets={"attention.out_lin": "output", "ffn.lin2": "output"},
        lora_targets=("q_lin", "v_lin"),
        pooler="pre_classifier",
    ),
}

#: Task heads made trainable (and saved) per task type, PEFT's names for them.
TASK_HEADS: dict[str, tuple[str, ...]] = {
    "SEQ_CLS": ("classifier", "score"),
    "TOKEN_CLS": ("classifier", "score"),
    "QUESTION_ANS": ("qa_outputs",),
}


def family_defaults(model_type: str | None, what: str) -> FamilyDefaults:
    """Return the defaults of ``model_type``, or raise a ``ValueError`` that says how to fix it.

    Args:
        model_type: ``model.config.model_type``.
        what: What needed the default (used in the message), e.g. ``"target_modules"``.

    Example:
        >>> from loretta.mapping import family_defaults
        >>> family_defaults("llama", "target_modules").adapter_targets
        ('self_attn.o_proj', 'mlp.down_proj')
    """
    if model_type in DEFAULTS:
        return DEFAULTS[model_type]
    raise ValueError(
        f"{what}: model_type {model_type!r} has no LoRETTA default (known: {sorted(DEFAULTS)}). "
        "Pass target_modules explicitly: a list of module names or dotted suffixes "
        "(e.g. ['q_proj', 'v_proj']) or a regex string matched against full names "
        "(e.g. r'.*\\.mlp\\.down_proj')."
    )


def lora_targets(model_type: str | None) -> tuple[str, ...]:
    """LoRETTA_rep's default targets: PEFT's LoRA table, else this module's fallback.

    Example:
        >>> from loretta.mapping import lora_targets
        >>> lora_targets("deberta"), lora_targets("distilbert")
        (('in_proj',), ('q_lin', 'v_lin'))
    """
    peft_default = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    if peft_default:
        return tuple(peft_default)
    fallback = family_defaults(model_type, "target_modules").lora_targets
    if not fallback:
        raise ValueError(f"target_modules: model_type {model_type!r} has no LoRA default")
    return fallback


def matches(name: str, targets: Sequence[str] | str) -> bool:
    """PEFT's rule: a regex string must match the whole name; list entries match the name
    exactly or as a dotted suffix.

    Example:
        >>> from loretta.mapping import matches
        >>> matches("model.layers.0.self_attn.q_proj", ["q_proj"])
        True
        >>> matches("model.layers.0.self_attn.q_proj", ["proj"])
        False
        >>> matches("encoder.layer.3.output.dense", r".*\\.output\\.dense")
        True
    """
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def position_of(name: str, positions: Mapping[str, str] | None) -> str:
    """Return where the adapter of module ``name`` goes: ``"input"`` or ``"output"`` (default).

    The longest matching key of ``positions`` decides (``"attention.output.dense"`` beats
    ``"output.dense"``).

    Example:
        >>> from loretta.mapping import position_of
        >>> position_of("model.layers.0.mlp.gate_proj", {"gate_proj": "input"})
        'input'
        >>> position_of("model.layers.0.mlp.down_proj", {"gate_proj": "input"})
        'output'
    """
    found = [k for k in (positions or {}) if matches(name, [k])]
    return positions[max(found, key=len)] if found else "output"


def is_norm(module: object) -> bool:
    """Whether ``module`` is a LayerNorm / RMSNorm (by class name, so any family's own norm).

    Example:
        >>> import torch
        >>> from loretta.mapping import is_norm
        >>> is_norm(torch.nn.LayerNorm(4)), is_norm(torch.nn.Linear(4, 4))
        (True, False)
    """
    return type(module).__name__.endswith("Norm")
