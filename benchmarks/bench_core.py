"""Core benchmark (issue 2): TT-SVD, rounding, TT-matrix x batch; ttnet vs tensorly/torchtt/tntorch.

Prints one table: median wall time over repeats, the peer/ours time ratio, the relative Frobenius
error of each result, the ranks reached and the thread setting. Peers that are not installed are
listed as such (install them with ``pip install ".[bench]"``, or in a separate environment; see
``benchmarks/RESULTS.md``).

Run: ``python benchmarks/bench_core.py --threads 1``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument("--repeats", type=int, default=3, help="TT-SVD repeats (rounding: 3x)")
    parser.add_argument("--fast-repeats", type=int, default=30, help="repeats of the matvec case")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: svd,round,mv")
    return parser.parse_args()


ARGS = _parse()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread variables)
import torch  # noqa: E402

import ttnet  # noqa: E402
from ttnet import contraction_info, ttm_dense, ttm_expression, ttm_matvec  # noqa: E402

torch.set_num_threads(ARGS.threads)
warnings.filterwarnings("ignore")


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except Exception:  # a peer that fails to import for any reason is reported as missing
        return None


tl = _optional("tensorly")
torchtt = _optional("torchtt")
tntorch = _optional("tntorch")
if tl is not None:
    from tensorly.decomposition import tensor_train as tl_tensor_train

ROWS: list[tuple[str, str, float | None, float | None, str]] = []


class Candidate(NamedTuple):
    """One library's way to do a case: ``run(setup())`` is timed; ``report(out)`` is not."""

    lib: str
    run: Callable[[Any], Any]
    report: Callable[[Any], tuple[float, str]]
    setup: Callable[[], Any] = lambda: None


def measure(case: str, candidates: list[Candidate], repeats: int, warmup: bool) -> None:
    """Time the candidates round-robin (fair under a changing machine load); record medians."""
    outs = {c.lib: c.run(c.setup()) for c in candidates} if warmup else {}
    times: dict[str, list[float]] = {c.lib: [] for c in candidates}
    for _ in range(repeats):
        for c in candidates:
            arg = c.setup()
            t0 = time.perf_counter()
            outs[c.lib] = c.run(arg)
            times[c.lib].append(time.perf_counter() - t0)
    for c in candidates:
        err, note = c.report(outs[c.lib])
        add(case, c.lib, statistics.median(times[c.lib]), err, note)


def rel_err(ref: np.ndarray, approx: Any) -> float:
    approx = approx.detach().numpy() if isinstance(approx, torch.Tensor) else np.asarray(approx)
    return float(np.linalg.norm(ref - approx) / np.linalg.norm(ref))


def add(case: str, lib: str, seconds: float | None, err: float | None, note: str = "") -> None:
    ROWS.append((case, lib, seconds, err, note))


def missing(case: str, lib: str, why: str = "not installed") -> None:
    add(case, lib, None, None, why)


def random_tt_cores(rng: np.random.Generator, shape: tuple[int, ...], rank: int) -> list:
    ranks = [1] + [rank] * (len(shape) - 1) + [1]
    return [
        rng.standard_normal((ranks[k], n, ranks[k + 1])) / np.sqrt(n * ranks[k])
        for k, n in enumerate(shape)
    ]


def bench_svd(name: str, a: np.ndarray, eps: float | None, max_rank: int | None) -> None:
    at = torch.from_numpy(a)
    cands = [
        Candidate(
            "ttnet",
            lambda _: ttnet.tt_svd(a, eps=eps, max_rank=max_rank),
            lambda f: (rel_err(a, f.full()), f"max rank {max(f.ranks)}"),
        )
    ]
    if tl is None:
        missing(name, "tensorly")
    else:
        rank = [1] + [max_rank or 8] * (a.ndim - 1) + [1]
        cands.append(
            Candidate(
                "tensorly",
                lambda _: tl_tensor_train(a, rank=rank),
                lambda f: (rel_err(a, tl.tt_to_tensor(f)), f"rank {rank[1]} given (no eps)"),
            )
        )
    if torchtt is None:
        missing(name, "torchtt")
    else:
        kw = {"eps": eps if eps is not None else 1e-14, "rmax": max_rank or sys.maxsize}
        cands.append(
            Candidate(
                "torchtt",
                lambda _: torchtt.TT(at, **kw),
                lambda f: (rel_err(a, f.full()), f"max rank {max(f.R)}"),
            )
        )
    if tntorch is None:
        missing(name, "tntorch")
    else:
        kw2 = {"ranks_tt": max_rank} if max_rank else {"eps": eps}
        cands.append(
            Candidate(
                "tntorch",
                lambda _: tntorch.Tensor(at, **kw2),
                lambda f: (rel_err(a, f.torch()), f"max rank {max(f.ranks_tt.tolist())}"),
            )
        )
    measure(name, cands, ARGS.repeats, warmup=False)  # seconds-long runs: no warm-up


def tt_error(ref: ttnet.TensorTrain, cores: list) -> float:
    approx = ttnet.TensorTrain([np.asarray(c.detach().numpy(), dtype=np.float64) for c in cores])
    return float((ref - approx).norm() / ref.norm())


def bench_round(name: str, s: ttnet.TensorTrain, max_rank: int) -> None:
    cands = [
        Candidate(
            "ttnet",
            lambda _: s.round(max_rank=max_rank),
            lambda r: (float((s - r).norm() / s.norm()), f"max rank {max(r.ranks)}"),
        )
    ]
    missing(name, "tensorly", "no TT rounding")
    torch_cores = [torch.from_numpy(np.ascontiguousarray(c)) for c in s.cores]
    if torchtt is None:
        missing(name, "torchtt")
    else:
        src = torchtt.TT(torch_cores)
        cands.append(
            Candidate(
                "torchtt",
                lambda _: src.round(1e-14, max_rank),
                lambda f: (tt_error(s, f.cores), f"max rank {max(f.R)}"),
            )
        )
    if tntorch is None:
        missing(name, "tntorch")
    else:

        def run(t: Any) -> Any:
            t.round_tt(eps=1e-14, rmax=max_rank)  # in place: setup hands a fresh copy (untimed)
            return t

        cands.append(
            Candidate(
                "tntorch",
                run,
                lambda f: (tt_error(s, f.cores), f"max rank {max(f.ranks_tt.tolist())}"),
                lambda: tntorch.Tensor([c.clone() for c in torch_cores]),
            )
        )
    measure(name, cands, ARGS.repeats * 3, warmup=True)


def bench_matvec() -> None:
    name = "TT-matrix x batch 4096x4096 r8 b64 f32"
    gen = torch.Generator().manual_seed(0)
    ranks = [1, 8, 8, 8, 1]
    cores = [torch.randn(ranks[k], 8, 8, ranks[k + 1], generator=gen) / 8 for k in range(4)]
    x = torch.randn(64, 4096, generator=gen)
    w = ttm_dense(cores).contiguous()
    ref = (x.double() @ ttm_dense([c.double() for c in cores]).T).numpy()
    ttm_expression.cache_clear()
    t0 = time.perf_counter()
    ttm_matvec(cores, x)
    first = time.perf_counter() - t0
    info = contraction_info(cores, 64)
    note = f"{info.strategy} path, {info.tt_flops / 1e6:.0f} MFLOP; 1st call {first * 1e3:.1f} ms"
    cands = [
        Candidate("ttnet", lambda _: ttm_matvec(cores, x), lambda y: (rel_err(ref, y), note)),
        Candidate(
            "dense X @ W.T",
            lambda _: x @ w.T,
            lambda y: (rel_err(ref, y), f"{2 * 64 * 4096 * 4096 / 1e6:.0f} MFLOP"),
        ),
    ]
    missing(name, "tensorly", "no TT-matrix x dense batch")
    if torchtt is None:
        missing(name, "torchtt")
    else:
        a = torchtt.TT(cores)
        cands.append(
            Candidate(
                "torchtt",
                lambda _: (a @ x.reshape(64, 8, 8, 8, 8)).reshape(64, 4096),
                lambda y: (rel_err(ref, y), ""),
            )
        )
    if tntorch is None:
        missing(name, "tntorch")
    else:
        from tntorch.matrix import TTMatrix, tt_multiply

        tn_cores = [c.permute(0, 2, 1, 3).contiguous() for c in cores]  # (r, in, out, r)
        m = TTMatrix(tn_cores, [8, 8, 8], [8, 8, 8, 8], [8, 8, 8, 8])
        cands.append(
            Candidate("tntorch", lambda _: tt_multiply(m, x), lambda y: (rel_err(ref, y), ""))
        )
    measure(name, cands, ARGS.fast_repeats, warmup=True)


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version({"torchtt": "torchTT"}.get(module, module))
    except PackageNotFoundError:
        return "?"


def print_table() -> None:
    print(f"ttnet core benchmark | threads={ARGS.threads} (torch.set_num_threads, OMP/BLAS)")
    print(f"| torch {torch.__version__} | numpy {np.__version__} | repeats {ARGS.repeats}"
          f" (matvec {ARGS.fast_repeats}); times are medians; ratio = time / ttnet time")
    versions = {m.__name__: _version(m.__name__) for m in (tl, torchtt, tntorch) if m}
    print("peers: " + (", ".join(f"{k} {v}" for k, v in versions.items()) or "none installed"))
    print()
    head = ("case", "library", "median", "ratio", "rel. error", "notes")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    ours: dict[str, float] = {}
    for case, lib, sec, _, _ in ROWS:
        if lib == "ttnet" and sec is not None:
            ours[case] = sec
    order = ["ttnet", "dense X @ W.T", "tensorly", "torchtt", "tntorch"]
    cases = list(dict.fromkeys(row[0] for row in ROWS))
    rows = sorted(ROWS, key=lambda row: (cases.index(row[0]), order.index(row[1])))
    for case, lib, sec, err, note in rows:
        t = "-" if sec is None else (f"{sec * 1e3:.2f} ms" if sec < 1 else f"{sec:.3f} s")
        ratio = "-" if sec is None else f"{sec / ours[case]:.2f}x"
        e = "-" if err is None else f"{err:.4e}"
        print(f"| {case} | {lib} | {t} | {ratio} | {e} | {note} |")


def main() -> None:
    skip = set(filter(None, ARGS.skip.split(",")))
    rng = np.random.default_rng(0)
    shape = (4,) * 12
    if "svd" not in skip:
        a = rng.standard_normal(shape)
        bench_svd("TT-SVD (4,)^12 random, max rank 16", a, None, 16)
        exact = ttnet.tt_full(random_tt_cores(rng, shape, 8))
        exact /= np.linalg.norm(exact)
        bench_svd("TT-SVD (4,)^12 exact rank 8, eps 1e-12", exact, 1e-12, None)
        del a, exact
    if "round" not in skip:
        s = ttnet.TensorTrain(random_tt_cores(rng, shape, 8)) + ttnet.TensorTrain(
            random_tt_cores(rng, shape, 8)
        )
        bench_round("round (4,)^12 r8+r8 -> 8", s, 8)
        big = ttnet.TensorTrain(random_tt_cores(rng, (8,) * 10, 64))
        bench_round("round (8,)^10 r64 -> 32", big, 32)
    if "mv" not in skip:
        bench_matvec()
    print_table()


if __name__ == "__main__":
    main()
