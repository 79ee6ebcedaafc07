"""One rank of the 2-process gloo DDP test (run by test_distributed.py, not collected by pytest).

Usage: ddp_worker.py RANK WORLD_SIZE PORT OUT_DIR; trains a LoRETTA_adp and a LoRETTA_rep model
and writes each rank's trainable parameters to OUT_DIR/rank{RANK}_{method}.pt.
"""

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from transformers import LlamaConfig, LlamaForCausalLM

from gloo_setup import init_from_argv
from loretta import LorettaAdpConfig, LorettaRepConfig, get_peft_model


def train(rank: int, method: str, out_dir: str) -> None:
    """Three DDP steps on rank-dependent data; save the trainable parameters."""
    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, vocab_size=64))
    torch.manual_seed(100 + rank)  # different adapter init per rank: DDP must broadcast rank 0's
    config = (LorettaAdpConfig(bottleneck_size=8, train_norms=True) if method == "adp"
              else LorettaRepConfig(r=4, lora_dropout=0.0))
    model = DistributedDataParallel(get_peft_model(base, config))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    gen = torch.Generator().manual_seed(rank)  # each rank sees different data
    for _ in range(3):
        ids = torch.randint(0, 64, (4, 8), generator=gen)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    state = {n: p.detach() for n, p in model.module.named_parameters() if p.requires_grad}
    torch.save(state, f"{out_dir}/rank{rank}_{method}.pt")


def main() -> None:
    rank, _, out_dir = init_from_argv()
    for method in ("adp", "rep"):
        train(rank, method, out_dir)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
