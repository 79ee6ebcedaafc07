"""Tiny transformers models built from configs (no downloads) for the loretta tests."""

from __future__ import annotations

import pytest
import torch

#: model_type -> extra config kwargs that a 1-layer, hidden-32 model of that family needs.
FAMILIES = {
    "llama": dict(num_key_value_heads=2),
    "mistral": dict(num_key_value_heads=2),
    "qwen2": dict(num_key_value_heads=2),
    "gemma": dict(num_key_value_heads=2, head_dim=8),
    "gemma2": dict(num_key_value_heads=2, head_dim=8),
    "phi3": dict(num_key_value_heads=2, pad_token_id=0, bos_token_id=1, eos_token_id=2),
    "gpt2": dict(n_embd=32, n_layer=1, n_head=4, bos_token_id=1, eos_token_id=2),
    "gpt_neox": dict(),
    "opt": dict(ffn_dim=64, word_embed_proj_dim=32, pad_token_id=0),
    "bert": dict(),
    "roberta": dict(pad_token_id=0),
    "distilbert": dict(dim=32, n_layers=1, n_heads=4, hidden_dim=64, pad_token_id=0),
    "deberta": dict(pad_token_id=0),
    "deberta-v2": dict(pad_token_id=0),
}
ENCODERS = ("bert", "roberta", "distilbert", "deberta", "deberta-v2")


def tiny_model(model_type: str, *, hidden: int = 32, layers: int = 1, seq_cls: bool | None = None,
               seed: int = 0, **overrides):
    """A small randomly initialised model of ``model_type`` (SEQ_CLS head for encoders)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                  intermediate_size=64, vocab_size=100, num_labels=2)
    kwargs.update(FAMILIES[model_type])
    kwargs.update(overrides)
    config = AutoConfig.for_model(model_type, **kwargs)
    torch.manual_seed(seed)
    seq_cls = model_type in ENCODERS if seq_cls is None else seq_cls
    cls = AutoModelForSequenceClassification if seq_cls else AutoModelForCausalLM
    return cls.from_config(config).eval()


@pytest.fixture
def batch():
    """Token ids (2 x 6) and attention mask."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 100, (2, 6), generator=gen)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def train_steps(model, batch, steps: int = 3, lr: float = 1e-2) -> None:
    """A few AdamW steps on the sum of squares of the output (any task)."""
    torch.manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    model.train()
    for _ in range(steps):
        out = model(**batch)
        loss = out.logits.float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()


@pytest.fixture
def make_model():
    """The :func:`tiny_model` builder."""
    return tiny_model


@pytest.fixture
def train():
    """The :func:`train_steps` helper."""
    return train_steps
