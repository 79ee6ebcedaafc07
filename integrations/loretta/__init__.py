"""loretta: LoRETTA tensor-train adapters for Hugging Face transformers, as a PEFT method.

Importing ``loretta`` registers LORETTA_ADP and LORETTA_REP with PEFT, so PEFT's and
transformers' own entry points (``peft.get_peft_model``, ``peft.PeftModel.from_pretrained``,
``model.load_adapter``, ``peft.save_as_lora``) work with them. The LoRETTA quick start runs
as written (here on a small model built from a config):

Example:
    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> from loretta import LorettaAdpConfig, LorettaRepConfig, get_peft_model, TaskType
    >>> _ = torch.manual_seed(0)
    >>> model = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128,
    ...     num_hidden_layers=2, num_attention_heads=4, vocab_size=100))
    >>> peft_config = LorettaAdpConfig(
    ...     bottleneck_size=64,
    ...     non_linearity="relu",
    ...     adapter_dropout=0.0,
    ...     target_modules=None,
    ...     scaling=1.0,
    ...     bias="none",
    ...     task_type="CAUSAL_LM",
    ...     tensor_rank=5,
    ... )
    >>> model = get_peft_model(model, peft_config)
    >>> model.print_trainable_parameters()
    trainable params: 5,632 || all params: 100,672 || trainable%: 5.5944
"""

import peft

from .config import LorettaAdpConfig, LorettaConfig, LorettaRepConfig, LorettaType
from .model import LorettaModel, get_peft_model
from .rank_adaptation import RankReport, round_ranks
from .registration import register
from .tuner import LorettaTuner

register()

#: PEFT's own ``TaskType`` (``SEQ_CLS``, ``CAUSAL_LM``, ``TOKEN_CLS``, ...): the task a model is
#: tuned for; ``SEQ_CLS``, ``TOKEN_CLS`` and ``QUESTION_ANS`` make the task head trainable.
TaskType = peft.TaskType

PeftModel = LorettaModel
"""PEFT's name for the wrapper class, for code written against PEFT."""

__all__ = [
    "LorettaAdpConfig",
    "LorettaConfig",
    "LorettaModel",
    "LorettaRepConfig",
    "LorettaTuner",
    "LorettaType",
    "PeftModel",
    "RankReport",
    "TaskType",
    "get_peft_model",
    "round_ranks",
]
