"""
Train with DistributedDataParallel
==================================

A LoRETTA_rep adapter trained with DistributedDataParallel on CPU processes (gloo backend).
Each rank sees its own data; DDP averages the adapter's gradients, so every rank ends with
the same adapter, which rank 0 saves.

Run ``python docs/examples/ddp_train.py`` (two processes on this machine). The docs build
shows this script without running it, since it starts several processes; the test suite
runs its ``main`` with one process and two steps.
"""

from __future__ import annotations

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from loretta import LorettaRepConfig, get_peft_model
from torch.nn.parallel import DistributedDataParallel
from transformers import BertConfig, BertForSequenceClassification


def build_model() -> torch.nn.Module:
    """A small BERT classifier with a LoRETTA_rep adapter (same initial weights on every rank)."""
    torch.manual_seed(0)
    base = BertForSequenceClassification(BertConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        vocab_size=100, num_labels=2))
    return get_peft_model(base, LorettaRepConfig(r=8, task_type="SEQ_CLS"))


def train(rank: int, world_size: int, port: int, steps: int, out_dir: str) -> None:
    """One rank: join the process group, train ``steps`` steps, save the adapter on rank 0."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size)
    model = DistributedDataParallel(build_model())
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    data = torch.Generator().manual_seed(rank)  # each rank draws its own batches
    for _ in range(steps):
        input_ids = torch.randint(3, 100, (8, 16), generator=data)
        labels = input_ids[:, 1] % 2
        loss = model(input_ids=input_ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if rank == 0:
        model.module.save_pretrained(out_dir)
    dist.barrier()
    dist.destroy_process_group()


def free_port() -> int:
    """A free TCP port on this machine for the process group's rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(world_size: int = 2, steps: int = 10, out_dir: str = "ddp-adapter") -> None:
    """Train on ``world_size`` processes (one runs in this process, more are spawned)."""
    port = free_port()
    if world_size == 1:
        train(0, 1, port, steps, out_dir)
    else:
        mp.spawn(train, args=(world_size, port, steps, out_dir), nprocs=world_size)


if __name__ == "__main__":
    main()
