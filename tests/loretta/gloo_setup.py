"""Process-group setup shared by the distributed test workers (not collected by pytest)."""

import sys

import torch
import torch.distributed as dist


def init_from_argv() -> tuple[int, int, str]:
    """Join the gloo group named by ``argv``: RANK WORLD_SIZE PORT OUT_DIR; one torch thread.

    Returns:
        ``(rank, world_size, out_dir)``.
    """
    rank, world, port, out_dir = sys.argv[1:5]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=int(rank),
                            world_size=int(world))
    return int(rank), int(world), out_dir
