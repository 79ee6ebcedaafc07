"""Core benchmark, part 2: TT rounding and TT-matrix x batch, ttnet vs peers.

Run through ``benchmarks/bench_core.py`` (sections ``round`` and ``mv``). Times are medians
after a warm-up, round-robin; the table's "x one read" column holds time / ttnet's time here.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import ttnet
from ttnet import contraction_info, ttm_dense, ttm_expression, ttm_matvec

Add = Callable[..., None]


def optional(name: str) -> Any:
    """The module ``name``, or None when it is not installed (a missing peer is listed)."""
    try:
        return __import__(name)
    except ImportError:
        return None


def _timed(cands: list[tuple[str, Callable[[], Any]]], repeats: int) -> dict[str, tuple]:
    """Median time and last output per library (warm-up, then round-robin)."""
    outs = {lib: run() for lib, run in cands}
    times: dict[str, list[float]] = {lib: [] for lib, _ in cands}
    for _ in range(repeats):
        for lib, run in cands:
            t0 = time.perf_counter()
            outs[lib] = run()
            times[lib].append(time.perf_counter() - t0)
    return {lib: (statistics.median(times[lib]), outs[lib]) for lib, _ in cands}


def _tt_error(ref: ttnet.TensorTrain, cores: list) -> float:
    approx = ttnet.TensorTrain([np.asarray(c.detach().numpy(), dtype=np.float64) for c in cores])
    return float((ref - approx).norm() / ref.norm())


def _random_tt(rng: np.random.Generator, shape: tuple[int, ...], rank: int) -> ttnet.TensorTrain:
    ranks = [1] + [rank] * (len(shape) - 1) + [1]
    return ttnet.TensorTrain([
        rng.standard_normal((ranks[k], n, ranks[k + 1])) / np.sqrt(n * ranks[k])
        for k, n in enumerate(shape)
    ])


def bench_round(add: Add, name: str, s: ttnet.TensorTrain, max_rank: int, repeats: int) -> None:
    torchtt, tntorch = optional("torchtt"), optional("tntorch")
    torch_cores = [torch.from_numpy(np.ascontiguousarray(c)) for c in s.cores]
    cands: list[tuple[str, Callable[[], Any]]] = [("ttnet", lambda: s.round(max_rank=max_rank))]
    if torchtt is not None:
        src = torchtt.TT(torch_cores)
        cands.append(("torchtt", lambda: src.round(1e-14, max_rank)))
    if tntorch is not None:
        def run() -> Any:
            t = tntorch.Tensor([c.clone() for c in torch_cores])
            t.round_tt(eps=1e-14, rmax=max_rank)
            return t

        cands.append(("tntorch", run))
    results = _timed(cands, repeats)
    ours = results["ttnet"][0]
    for lib, (sec, out) in results.items():
        if lib == "ttnet":
            err, ranks = float((s - out).norm() / s.norm()), out.ranks
        else:
            cores = out.cores
            err, ranks = _tt_error(s, cores), (1, *(int(c.shape[2]) for c in cores))
        add(name, lib, sec, sec / ours, None, err, f"max rank {max(ranks)} (x = / ttnet)")
    add(name, "tensorly", None, None, None, None, "no TT rounding")


def bench_matvec(add: Add, repeats: int) -> None:
    name = "TT-matrix x batch 4096x4096 r8 b64 f32"
    gen = torch.Generator().manual_seed(0)
    ranks = [1, 8, 8, 8, 1]
    cores = [torch.randn(ranks[k], 8, 8, ranks[k + 1], generator=gen) / 8 for k in range(4)]
    x = torch.randn(64, 4096, generator=gen)
    w = ttm_dense(cores).contiguous()
    ref = (x.double() @ ttm_dense([c.double() for c in cores]).T).numpy()
    ttm_expression.cache_clear()  # time a first call, path search included
    t0 = time.perf_counter()
    ttm_matvec(cores, x)
    first = time.perf_counter() - t0
    info = contraction_info(cores, 64)
    cands: list[tuple[str, Callable[[], Any]]] = [
        ("ttnet", lambda: ttm_matvec(cores, x)),
        ("dense X @ W.T", lambda: x @ w.T),
    ]
    torchtt, tntorch = optional("torchtt"), optional("tntorch")
    if torchtt is not None:
        a = torchtt.TT(cores)
        cands.append(("torchtt", lambda: (a @ x.reshape(64, 8, 8, 8, 8)).reshape(64, 4096)))
    if tntorch is not None:
        from tntorch.matrix import TTMatrix, tt_multiply

        tn_cores = [c.permute(0, 2, 1, 3).contiguous() for c in cores]  # (r, in, out, r)
        m = TTMatrix(tn_cores, [8, 8, 8], [8, 8, 8, 8], [8, 8, 8, 8])
        cands.append(("tntorch", lambda: tt_multiply(m, x)))
    results = _timed(cands, repeats)
    ours = results["ttnet"][0]
    notes = {
        "ttnet": f"{info.strategy} path, {info.tt_flops / 1e6:.0f} MFLOP; 1st call "
        f"{first * 1e3:.1f} ms",
        "dense X @ W.T": f"{2 * 64 * 4096 * 4096 / 1e6:.0f} MFLOP",
    }
    for lib, (sec, out) in results.items():
        err = float(np.linalg.norm(ref - out.detach().numpy()) / np.linalg.norm(ref))
        add(name, lib, sec, sec / ours, None, err, notes.get(lib, "") + " (x = / ttnet)")


def bench_ops(args: Any, skip: set[str], add: Add) -> None:
    """The rounding and TT-matrix x batch rows."""
    rng = np.random.default_rng(0)
    if "round" not in skip:
        s = _random_tt(rng, (4,) * 12, 8) + _random_tt(rng, (4,) * 12, 8)
        bench_round(add, "round (4,)^12 r8+r8 -> 8", s, 8, 3 * args.repeats)
        bench_round(add, "round (8,)^10 r64 -> 32", _random_tt(rng, (8,) * 10, 64), 32,
                    3 * args.repeats)
    if "mv" not in skip:
        bench_matvec(add, args.fast_repeats)
