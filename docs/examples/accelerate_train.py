"""
Train with Hugging Face accelerate
==================================

A LoRETTA_adp adapter trained through ``accelerate``; the main process saves it.

Run ``accelerate launch --cpu --num_processes 2 docs/examples/accelerate_train.py`` for two
processes, or ``python docs/examples/accelerate_train.py`` for one. The docs build shows this
script without running it, since it is meant for several processes; the test suite runs its
``main`` with one process and two steps.
"""

from __future__ import annotations

import torch
from accelerate import Accelerator
from loretta import LorettaAdpConfig, get_peft_model
from torch.utils.data import DataLoader, TensorDataset
from transformers import BertConfig, BertForSequenceClassification


def main(steps: int = 10, out_dir: str = "accelerate-adapter") -> None:
    """Train ``steps`` steps on random token data and save the adapter on the main process."""
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    base = BertForSequenceClassification(BertConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        vocab_size=100, num_labels=2))
    model = get_peft_model(base, LorettaAdpConfig(bottleneck_size=16, task_type="SEQ_CLS"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    input_ids = torch.randint(3, 100, (8 * steps, 16), generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(input_ids, input_ids[:, 1] % 2), batch_size=8)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()
    for batch_ids, labels in loader:
        loss = model(input_ids=batch_ids, labels=labels).loss
        optimizer.zero_grad()
        accelerator.backward(loss)
        optimizer.step()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(out_dir)


if __name__ == "__main__":
    main()
