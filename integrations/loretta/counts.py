"""Trainable-parameter counts of published model sizes, built on the ``meta`` device.

No weights are downloaded or allocated: each model is built from its published configuration
under ``torch.device("meta")`` and adapted; only parameter shapes are counted. LoRA counts
come from the real ``peft`` package. ``python -m loretta.counts`` prints the table of
``docs/parameter_counts.rst``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .config import LorettaAdpConfig, LorettaConfig, LorettaRepConfig
from .model import get_peft_model

#: Published sizes: (transformers config class name, model class name, config kwargs, task).
MODELS: dict[str, tuple[str, str, dict, str]] = {
    "LLaMA-2-7B": ("LlamaConfig", "LlamaForCausalLM", dict(
        hidden_size=4096, num_hidden_layers=32, intermediate_size=11008,
        num_attention_heads=32, vocab_size=32000), "CAUSAL_LM"),
    "LLaMA-2-13B": ("LlamaConfig", "LlamaForCausalLM", dict(
        hidden_size=5120, num_hidden_layers=40, intermediate_size=13824,
        num_attention_heads=40, vocab_size=32000), "CAUSAL_LM"),
    "LLaMA-2-70B": ("LlamaConfig", "LlamaForCausalLM", dict(
        hidden_size=8192, num_hidden_layers=80, intermediate_size=28672,
        num_attention_heads=64, num_key_value_heads=8, vocab_size=32000), "CAUSAL_LM"),
    "DeBERTa-base": ("DebertaConfig", "DebertaForSequenceClassification", dict(
        hidden_size=768, num_hidden_layers=12, intermediate_size=3072, num_attention_heads=12,
        vocab_size=50265, max_position_embeddings=512, relative_attention=True,
        pos_att_type=["c2p", "p2c"], position_biased_input=False, num_labels=2), "SEQ_CLS"),
    "RoBERTa-base": ("RobertaConfig", "RobertaForSequenceClassification", dict(
        hidden_size=768, num_hidden_layers=12, intermediate_size=3072, num_attention_heads=12,
        vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, num_labels=2),
        "SEQ_CLS"),
    "RoBERTa-large": ("RobertaConfig", "RobertaForSequenceClassification", dict(
        hidden_size=1024, num_hidden_layers=24, intermediate_size=4096, num_attention_heads=16,
        vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, num_labels=2),
        "SEQ_CLS"),
}

#: Figures printed in the paper (LoRETTA_adp, LoRETTA_rep), where it gives them.
PAPER: dict[str, tuple[str, str]] = {
    "LLaMA-2-7B": ("0.88M", "-"),
    "LLaMA-2-13B": ("-", "-"),
    "LLaMA-2-70B": ("4.79M", "-"),
    "DeBERTa-base": ("0.10M", "0.05M"),
    "RoBERTa-base": ("-", "-"),
    "RoBERTa-large": ("-", "-"),
}


def build_meta(name: str) -> nn.Module:
    """Build the model ``name`` of :data:`MODELS` on the ``meta`` device (no memory used).

    Example:
        >>> from loretta.counts import build_meta
        >>> build_meta("LLaMA-2-7B").model.layers[0].mlp.up_proj.weight.shape
        torch.Size([11008, 4096])
    """
    import transformers

    config_cls, model_cls, kwargs, _ = MODELS[name]
    config = getattr(transformers, config_cls)(**kwargs)
    with torch.device("meta"):
        return getattr(transformers, model_cls)(config)


def trainable(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def loretta_count(name: str, config: LorettaConfig) -> int:
    """Trainable parameters of model ``name`` adapted with ``config`` (task type of the model).

    Example:
        >>> from loretta import LorettaAdpConfig
        >>> from loretta.counts import loretta_count
        >>> loretta_count("DeBERTa-base", LorettaAdpConfig(preset="paper"))
        99194
    """
    config.task_type = MODELS[name][3]
    return trainable(get_peft_model(build_meta(name), config))


def lora_count(name: str, r: int = 8) -> int:
    """Trainable parameters of PEFT's LoRA (default targets, rank ``r``) on model ``name``."""
    import peft

    config = peft.LoraConfig(r=r, lora_alpha=2 * r, task_type=MODELS[name][3])
    return trainable(peft.get_peft_model(build_meta(name), config))


def count_table() -> list[tuple[str, int, int, int, str, str]]:
    """Rows ``(model, adp, rep, LoRA r=8, paper adp, paper rep)``, paper presets, rank 5."""
    rows = []
    makers: tuple[Callable[[], LorettaConfig], ...] = (
        lambda: LorettaAdpConfig(preset="paper"),
        lambda: LorettaRepConfig(preset="paper"),
    )
    for name in MODELS:
        adp, rep = (loretta_count(name, make()) for make in makers)
        rows.append((name, adp, rep, lora_count(name), *PAPER[name]))
    return rows


def main() -> None:
    """Print :func:`count_table` as the reStructuredText table of the docs."""
    header = ("Model", "LoRETTA_adp", "LoRETTA_rep", "LoRA r=8 (PEFT)", "paper adp", "paper rep")
    rows = [header] + [(n, f"{a:,}", f"{b:,}", f"{c:,}", pa, pr)
                       for n, a, b, c, pa, pr in count_table()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows[1:]]
    print("\n".join([*lines, rule]))


if __name__ == "__main__":
    main()
