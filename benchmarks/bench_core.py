"""Core benchmark: TT-SVD against one read of its input; rounding; TT-matrix x batch.

TT-SVD rows give, for ttnet (numpy and CPU torch) and the peers torchtt, tensorly, teneva and
tntorch: the median time as a multiple of one read of the same input (``x.sum()``, timed
right before each run in the same process), the extra peak memory as a multiple of the input
(RssAnon of /proc/self/status sampled every millisecond, minus its level before the run:
anonymous memory only, so a memmap's page cache does not count; one run per library in a fresh
child process with ``MALLOC_MMAP_THRESHOLD_=131072``, so freed arrays leave RssAnon), the relative error against
the dense input and the ranks. ``floor`` is the arithmetic ttnet's passes cannot avoid, timed
alone, slab by slab as in the sweep: the Gram of the first thick unfolding and the projection
onto the chosen frame, or, where the first frame comes from a sample (one pass), the
projection and the product its exact residual needs. ``--out-of-core`` adds a 2 GiB float32 memmap of exact TT rank 6 and the
same tensor as a lazy dask array on a dask.distributed LocalCluster of 2 worker processes.

Run: ``python benchmarks/bench_core.py --threads 1 [--big] [--out-of-core]`` (see
benchmarks/RESULTS.md; ``make bench`` installs the peers). Peers that are missing are listed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument("--repeats", type=int, default=3, help="TT-SVD rounds (round-robin)")
    parser.add_argument("--fast-repeats", type=int, default=30, help="repeats of the matvec case")
    parser.add_argument("--skip", default="", help="sections to skip: svd,round,mv")
    parser.add_argument("--no-peers", action="store_true", help="ttnet rows only")
    parser.add_argument("--big", action="store_true", help="add the 1 GiB (2,)^27 case")
    parser.add_argument("--big-peers", action="store_true", help="run the peers on it too")
    parser.add_argument("--out-of-core", action="store_true", help="add the 2 GiB memmap/dask rows")
    parser.add_argument("--workdir", default=None, help="where the 2 GiB file goes (deleted after)")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "LIB"), help=argparse.SUPPRESS)
    return parser.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(ARGS.threads)

import numpy as np  # (imported after the thread variables are set)
from bench_core_ops import bench_ops, optional

import ttnet
from ttnet import tt_full

warnings.filterwarnings("ignore")
ROWS: list[tuple[Any, ...]] = []
HEAD = ("case", "library", "median", "x one read", "extra mem", "rel. error", "ranks / notes")


def anon_bytes() -> int:
    """Anonymous resident memory of this process (bytes), from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_extra(fn: Callable[[], Any]) -> tuple[Any, float, int]:
    """``fn()``, its wall time and the peak of RssAnon above the level before it."""
    base, peak, done = anon_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], anon_bytes())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        thread.join()
    return out, seconds, max(peak[0], anon_bytes()) - base


class Candidate(NamedTuple):
    """A library's way to do a case: ``run()`` is timed; ``report(out)`` gives (full, ranks)."""

    lib: str
    run: Callable[[], Any]
    report: Callable[[Any], tuple[Any, str]]


def rel_err(ref: np.ndarray, approx: Any) -> float:
    if hasattr(approx, "detach"):
        approx = approx.detach().numpy()
    return float(np.linalg.norm(ref - np.asarray(approx, dtype=ref.dtype)) / np.linalg.norm(ref))


def add(case: str, lib: str, sec: float | None, read: float | None, mem: float | str | None,
        err: float | None, note: str) -> None:
    ROWS.append((case, lib, sec, read, mem, err, note))


def measure_svd(index: int, case: Case, repeats: int) -> None:
    """Round-robin rounds (each run timed right after one read of the input); the memory of
    each candidate is measured once, in a fresh child process (see :func:`child`)."""
    cands = case_candidates(case)
    x = case.x
    stats: dict[str, list[tuple[float, float]]] = {c.lib: [] for c in cands}
    outs: dict[str, Any] = {}
    for _ in range(repeats):
        for c in cands:
            t0 = time.perf_counter()
            x.sum()
            read = time.perf_counter() - t0
            t0 = time.perf_counter()
            outs[c.lib] = c.run()
            sec = time.perf_counter() - t0
            stats[c.lib].append((sec, sec / read))
    for c in cands:
        full, note = c.report(outs.pop(c.lib))
        sec, ratio = (statistics.median(v) for v in zip(*stats[c.lib]))
        err = None if full is None else rel_err(x, full)
        add(case.name, c.lib, sec, ratio, _child_memory(index, c.lib) / x.nbytes, err, note)


def _child_memory(index: int, lib: str) -> float:
    """Peak extra anonymous memory of one run of ``lib`` on case ``index``, in a new process
    (so that nothing earlier in this one is reused), with glibc returning freed blocks."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 << 10)}
    flags = [f for f, on in (("--big", ARGS.big), ("--big-peers", ARGS.big_peers),
                             ("--no-peers", ARGS.no_peers)) if on]
    cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(ARGS.threads), *flags,
           "--child", str(index), lib]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def child(index: int, lib: str) -> None:
    """``--child``: print the peak extra memory (bytes) of one run of ``lib`` on a case."""
    case = make_cases()[index]
    (cand,) = [c for c in case_candidates(case) if c.lib == lib]
    _, _, extra = peak_extra(cand.run)
    print(extra)


def exact_tensor(shape: tuple[int, ...], rank: int, seed: int) -> tuple[np.ndarray, tuple]:
    """A unit-norm float64 tensor of exact TT ranks: (left half) @ (right half) of the
    train, so nothing larger than the result is allocated."""
    rng = np.random.default_rng(seed)
    ranks = ttnet.ranks.useful_ranks(shape, (1, *[rank] * (len(shape) - 1), 1))
    cores = [rng.standard_normal((ranks[k], n, ranks[k + 1])) for k, n in enumerate(shape)]
    split = len(shape) // 2
    left = cores[0].reshape(-1, ranks[1])
    for c in cores[1:split]:
        left = (left @ c.reshape(c.shape[0], -1)).reshape(-1, c.shape[2])
    right = cores[-1].reshape(ranks[-2], -1)
    for c in cores[split:-1][::-1]:
        right = (c.reshape(-1, c.shape[2]) @ right).reshape(c.shape[0], -1)
    out = np.empty(shape)
    np.matmul(left, right, out=out.reshape(left.shape[0], -1))
    out /= np.linalg.norm(out)
    return out, ranks


def ranks_note(ranks: tuple, expected: tuple | None) -> str:
    note = f"max {max(ranks)}"
    if expected is not None:
        note += ", exact" if tuple(ranks) == tuple(expected) else ", NOT exact"
    return note


def _one_pass(case: Case) -> bool:
    """Whether ttnet takes the first group from a sample (one pass) on this case."""
    import ttnet._decompose as decompose

    used, real = [], decompose.sample_left

    def spy(*args: Any) -> Any:
        out = real(*args)
        used.append(out is not None)
        return out

    decompose.sample_left = spy
    try:
        ttnet.tt_svd(case.x, eps=case.eps, max_rank=case.max_rank)
    finally:
        decompose.sample_left = real
    return any(used)


def floor_candidate(case: Case) -> Candidate:
    """The arithmetic ttnet's first passes cannot avoid, timed alone, slab by slab as in the
    sweep: the Gram of the first thick unfolding and the projection onto a frame of the
    final rank (two passes), or, when the frame comes from a sample, the projection and the
    product ``F (F^H x)`` its exact residual needs (one pass)."""
    from ttnet._decompose import default_width
    from ttnet._kernels import Gram, Project
    from ttnet._sources import LocalSource
    from ttnet._sweep import plan_group

    x, rank = case.x, case.max_rank or max(case.expected)
    src = LocalSource(x)
    k = plan_group(x.shape, default_width([case.max_rank] * (x.ndim - 1)))
    rows = int(np.prod(x.shape[:k]))
    f = np.linalg.qr(np.random.default_rng(0).standard_normal((rows, rank)))[0]
    out = np.empty((rank, x.size // rows))
    one_pass = _one_pass(case)

    def residual_gemm(slab: np.ndarray, where: str, view: Any = None) -> tuple[None, tuple]:
        y = np.matmul(f.T, slab, out=view)
        return None, (float((f @ y)[0, 0]),)

    def run() -> None:
        if one_pass:
            src.run(rows, 1, residual_gemm, out=out)
        else:
            src.run(rows, 1, Gram(x.dtype))
            src.run(rows, 1, Project(f.T, f), out=out)

    what = "projection + F(F^H x), one pass" if one_pass else "Gram + projection, two passes"
    return Candidate("floor (GEMMs alone)", run, lambda _: (None, f"{what}; {rows} rows, r {rank}"))


def svd_candidates(x: np.ndarray, eps: float | None, max_rank: int | None,
                   expected: tuple | None) -> list[Candidate]:
    import torch

    names = () if ARGS.no_peers else ("torchtt", "tensorly", "teneva", "tntorch")
    peers = {name: optional(name) for name in ("torchtt", "tensorly", "teneva", "tntorch")
             if name in names}
    peers.update({name: None for name in ("torchtt", "tensorly", "teneva", "tntorch")
                  if name not in names})
    xt = torch.from_numpy(x)
    report = lambda tt: (tt.full(), ranks_note(tt.ranks, expected))
    cands = [
        Candidate("ttnet", lambda: ttnet.tt_svd(x, eps=eps, max_rank=max_rank), report),
        Candidate("ttnet (torch)", lambda: ttnet.tt_svd(xt, eps=eps, max_rank=max_rank), report),
    ]
    tt_rank = max_rank or max(expected or (8,))
    if peers["torchtt"] is not None:
        kw_tt = {"eps": eps if eps is not None else 1e-14, "rmax": max_rank or sys.maxsize}
        cands.append(Candidate("torchtt", lambda: peers["torchtt"].TT(xt, **kw_tt),
                               lambda f: (f.full(), ranks_note(tuple(f.R), expected))))
    if peers["tensorly"] is not None:
        from tensorly.decomposition import tensor_train

        rank = list(expected) if expected else [1] + [tt_rank] * (x.ndim - 1) + [1]
        cands.append(Candidate(
            "tensorly", lambda: tensor_train(x, rank=rank),
            lambda f: (peers["tensorly"].tt_to_tensor(f), ranks_note(tuple(f.rank), expected)
                       + " (ranks given: no eps)")))
    if peers["teneva"] is not None:
        kw_te = {"e": eps if eps is not None else 1e-14, "r": max_rank or 10**12}
        cands.append(Candidate(
            "teneva", lambda: peers["teneva"].svd(x, **kw_te),
            lambda f: (tt_full(f), ranks_note((1, *(c.shape[2] for c in f)), expected))))
    if peers["tntorch"] is not None:
        kw_tn = {"ranks_tt": max_rank} if max_rank else {"eps": eps}
        cands.append(Candidate(
            "tntorch", lambda: peers["tntorch"].Tensor(xt, **kw_tn),
            lambda f: (f.torch(), ranks_note((1, *f.ranks_tt.tolist()[1:]), expected))))
    return cands


class Case(NamedTuple):
    """A TT-SVD case: input, tolerance, rank cap and the exact ranks when known."""

    name: str
    x: np.ndarray
    eps: float | None
    max_rank: int | None
    expected: tuple | None
    peers: bool = True


def make_cases() -> list[Case]:
    shape = (4,) * 12
    exact, ranks = exact_tensor(shape, 8, 1)
    cases = [
        Case("TT-SVD (4,)^12 random f64, max rank 16",
             np.random.default_rng(0).standard_normal(shape), None, 16, None),
        Case("TT-SVD (4,)^12 exact rank 8 f64, eps 1e-12", exact, 1e-12, None, ranks),
    ]
    if ARGS.big:
        big, ranks = exact_tensor((2,) * 27, 10, 2)
        cases.append(Case("TT-SVD (2,)^27 exact rank 10 f64 (1 GiB), eps 1e-12", big, 1e-12,
                          None, ranks, ARGS.big_peers))
    return cases


def case_candidates(case: Case) -> list[Candidate]:
    cands = svd_candidates(case.x, case.eps, case.max_rank, case.expected)
    if not case.peers:
        cands = cands[:2]
    return [*cands, floor_candidate(case)]


def bench_svd() -> None:
    for index, case in enumerate(make_cases()):
        measure_svd(index, case, ARGS.repeats)


def print_table() -> None:
    import torch

    load = os.getloadavg()
    versions = []
    for name, dist in (("torchtt", "torchTT"), ("tensorly", "tensorly"), ("teneva", "teneva"),
                       ("tntorch", "tntorch")):
        versions.append(f"{name} {_version(dist)}")
    print(f"ttnet core benchmark | threads={ARGS.threads} | load average {load[0]:.1f} "
          f"{load[1]:.1f} {load[2]:.1f} at the end | numpy {np.__version__} | torch "
          f"{torch.__version__}")
    print("peers: " + ", ".join(versions))
    print("times are medians of round-robin rounds; 'x one read' = time / x.sum() of the same "
          "input timed just before; 'extra mem' = peak anonymous memory above the level before, "
          "/ input size")
    print()
    print("| " + " | ".join(HEAD) + " |")
    print("|" + "---|" * len(HEAD))
    for case, lib, sec, read, mem, err, note in ROWS:
        t = "-" if sec is None else (f"{sec * 1e3:.1f} ms" if sec < 1 else f"{sec:.2f} s")
        r = "-" if read is None else f"{read:.2f}x"
        m = "-" if mem is None else (mem if isinstance(mem, str) else f"{mem:.2f}x")
        e = "-" if err is None else f"{err:.2e}"
        print(f"| {case} | {lib} | {t} | {r} | {m} | {e} | {note} |")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def main() -> None:
    import torch

    torch.set_num_threads(ARGS.threads)
    if ARGS.child:
        child(int(ARGS.child[0]), ARGS.child[1])
        return
    skip = set(filter(None, ARGS.skip.split(",")))
    if "svd" not in skip:
        bench_svd()
    if ARGS.out_of_core:
        from bench_core_ooc import bench_out_of_core

        bench_out_of_core(ARGS, add, peak_extra)
    if "round" not in skip or "mv" not in skip:
        bench_ops(ARGS, skip, add)
    print_table()


if __name__ == "__main__":
    main()
