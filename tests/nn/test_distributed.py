"""A real 2-process DistributedDataParallel run (gloo, CPU) over TTLinear, TTAdapter and TTLoRA."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_two_processes_keep_parameters_identical(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _attempt in range(2):  # a second try with a new port if another process took the first
        proc = subprocess.run(
            [sys.executable, str(WORKER), str(_free_port()), str(tmp_path)],
            check=False, env=env, capture_output=True, text=True, timeout=120,
        )
        if proc.returncode == 0:
            break
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    params0, params1 = ranks[0]["params"], ranks[1]["params"]
    assert params0.keys() == params1.keys() and len(params0) > 0
    for name in params0:
        assert torch.equal(params0[name], params1[name]), name
    # the trainable parameters moved (training happened); the frozen base did not
    names = list(params0)
    moved = dict(zip(names, ranks[0]["changed"]))
    assert not moved["2.base_layer.weight"] and not moved["2.base_layer.bias"]
    assert all(v for n, v in moved.items() if "base_layer" not in n), moved
