"""Real 2-process gloo runs: DDP and FSDP2 (the Trainer and accelerate: test_trainer.py)."""

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


def _run_ranks(worker_name: str, out_dir: Path) -> None:
    worker = Path(__file__).with_name(worker_name)
    port = str(_free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(worker), str(rank), "2", port, str(out_dir)],
                              env=env, stderr=subprocess.PIPE, text=True)
             for rank in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]


def test_ddp_two_processes_keep_parameters_identical(tmp_path):
    _run_ranks("ddp_worker.py", tmp_path)
    for method in ("adp", "rep"):
        first, second = (torch.load(tmp_path / f"rank{r}_{method}.pt") for r in range(2))
        assert first.keys() == second.keys() and len(first) > 0
        for name in first:
            assert torch.equal(first[name], second[name]), (method, name)


def test_fsdp2_two_processes_match_one_process_on_whole_batches(tmp_path):
    """fully_shard over gloo: sharded frozen and trainable parameters side by side in one FSDP
    unit; two ranks on half batches end where one process on whole batches ends."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import fsdp_worker
    finally:
        sys.path.pop(0)
    _run_ranks("fsdp_worker.py", tmp_path)
    for method in ("adp", "rep"):
        sharded = torch.load(tmp_path / f"fsdp_{method}.pt")
        expected = fsdp_worker.reference(method, world=2)
        assert sharded.keys() == expected.keys() and len(expected) > 0
        start = fsdp_worker.build(method).state_dict()
        moved = [n for n in expected if not torch.equal(expected[n], start[n])]
        assert moved, method  # training changed the parameters being compared
        for name in expected:
            torch.testing.assert_close(sharded[name], expected[name], rtol=1e-5, atol=1e-6,
                                       msg=f"{method} {name}")
