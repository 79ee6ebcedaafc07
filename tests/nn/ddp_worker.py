"""Two-process DDP run (gloo, CPU) for ``test_distributed.py``; run as a script, not collected.

Usage: ``python ddp_worker.py PORT OUT_DIR``. Each rank trains a small network holding a
TTLinear, a TTAdapter and a TTLoRA for a few steps on its own data and saves its parameters
to ``OUT_DIR/rank{r}.pt``.
"""

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ttnet_nn import TTAdapter, TTLinear, TTLoRA

WORLD_SIZE = 2
STEPS = 3


def run(rank: int, port: int, out_dir: str) -> None:
    """Train on rank ``rank`` and save the parameters."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE
    )
    torch.manual_seed(rank)  # different initial values per rank: DDP must broadcast rank 0's
    model = nn.Sequential(
        TTLinear(12, 16, tt_rank=3),
        TTAdapter(16, 4, tt_rank=2),
        TTLoRA(nn.Linear(16, 6), r=2, lora_alpha=4, tt_rank=2),
    )
    initial = [p.detach().clone() for p in model.parameters()]
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.1)
    data = torch.Generator().manual_seed(100 + rank)
    for _ in range(STEPS):
        x, y = torch.randn(8, 12, generator=data), torch.randn(8, 6, generator=data)
        optimizer.zero_grad()
        nn.functional.mse_loss(ddp(x), y).backward()
        optimizer.step()
    state = {name: p.detach() for name, p in model.named_parameters()}
    changed = [not torch.equal(a, b) for a, b in zip(initial, model.parameters())]
    torch.save({"params": state, "changed": changed}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


if __name__ == "__main__":
    # fork: the children reuse this process's imports (it has run no torch op yet)
    mp.start_processes(run, args=(int(sys.argv[1]), sys.argv[2]), nprocs=WORLD_SIZE,
                       start_method="fork")
