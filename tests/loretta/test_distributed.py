"""A real 2-process gloo DDP run (the Trainer and accelerate: test_trainer.py)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_two_processes_keep_parameters_identical(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    port = str(_free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(worker), str(rank), "2", port, str(tmp_path)],
                              env=env, stderr=subprocess.PIPE, text=True)
             for rank in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    for method in ("adp", "rep"):
        first, second = (torch.load(tmp_path / f"rank{r}_{method}.pt") for r in range(2))
        assert first.keys() == second.keys() and len(first) > 0
        for name in first:
            assert torch.equal(first[name], second[name]), (method, name)
