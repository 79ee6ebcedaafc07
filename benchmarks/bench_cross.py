"""TT-cross benchmark: ttnet.tt_cross vs teneva's cross + truncate, one run.

For each function on a uniform grid, both libraries approximate the tensor of its values to
1e-8: ttnet with ``tt_cross(fn, shape, eps=1e-8, seed=s)``; teneva with its defaults as its
documentation shows them (``cross(f, rand(n, r=1), e=1e-8, dr_min=1, dr_max=1, cache={})``,
large ``m``) followed by ``truncate(Y, 1e-8)``. Rounds are interleaved (seed ``s`` = round
number; both libraries start from random pivots) and the table shows medians over rounds of
the function evaluations (distinct multi-indices; ttnet's count includes its 1,000 held-out
samples), the wall time (function time included, same function for both) and the relative
error on 10,000 random entries that neither library saw; ``ratio`` is teneva / ttnet.
Targets: error <= 1e-8, evaluations <= teneva's, wall time <= 1.5x teneva's.

Then the 30-dimensional example of the docs (16 points per mode, about 1e36 entries, 1e-6).

Run: ``python benchmarks/bench_cross.py --threads 1`` (teneva: ``pip install teneva``)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (seeds)")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    return parser.parse_args()


ARGS = _parse()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # after the thread variables

import ttnet

try:
    import teneva
except ImportError:  # reported in the table
    teneva = None

EPS = 1e-8
TEST_ENTRIES = 10_000


def _inverse_square(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.sum(x * x, axis=1))


def _rosenbrock(x: np.ndarray) -> np.ndarray:
    return np.sum(100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1.0 - x[:, :-1]) ** 2, axis=1)


def _gauss_cos_chain(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.sum(x * x, axis=1)) * np.cos(np.sum(x[:, 1:] * x[:, :-1], axis=1))


#: name -> (d, n, interval, function of points (batch, d)), the issue's two, then ours.
CASES: dict[str, tuple[int, int, tuple[float, float], Callable]] = {
    "1/(1+sum x^2) d=8": (8, 32, (-1.0, 1.0), _inverse_square),
    "Rosenbrock d=6": (6, 32, (-2.0, 2.0), _rosenbrock),
    "exp(-sum x^2/2) cos(sum x_i x_i+1) d=10": (10, 32, (-1.0, 1.0), _gauss_cos_chain),
    "1/(1+sum x^2) d=12 on [-3,3]": (12, 32, (-3.0, 3.0), _inverse_square),
}
LARGE = ("1/(1+sum x^2) d=30 n=16", 30, 16, (-1.0, 1.0), _inverse_square, 1e-6)


def oracle(d: int, n: int, interval: tuple[float, float], f: Callable) -> Callable:
    grid = np.linspace(*interval, n)
    return lambda idx: f(grid[idx])


def run_ttnet(fn: Callable, shape: list[int], seed: int, eps: float = EPS) -> tuple:
    t0 = time.perf_counter()
    tt = ttnet.tt_cross(fn, shape, eps=eps, seed=seed)
    seconds = time.perf_counter() - t0
    return seconds, tt.info.evals, max(tt.ranks), tt.gather


def run_teneva(fn: Callable, shape: list[int], seed: int) -> tuple:
    t0 = time.perf_counter()
    info: dict = {}
    y0 = teneva.rand(shape, r=1, seed=seed)
    y = teneva.cross(fn, y0, m=10**9, e=EPS, dr_min=1, dr_max=1, cache={}, info=info)
    y = teneva.truncate(y, EPS)
    seconds = time.perf_counter() - t0
    return seconds, info["m"], max(teneva.ranks(y)), lambda idx: teneva.get_many(y, idx)


def main() -> None:
    chosen = [c for c in ARGS.cases.split(",") if c] or list(CASES)
    print(f"ttnet TT-cross benchmark | threads={ARGS.threads} | rounds={ARGS.rounds} | "
          f"numpy {np.__version__} | teneva {getattr(teneva, '__version__', 'not installed')}")
    print(f"target: error <= {EPS:g} on {TEST_ENTRIES:,} random entries, evaluations <= "
          "teneva's, wall <= 1.5x teneva's; medians over rounds; ratio = teneva / ttnet\n")
    print("| case | library | evaluations | ratio | wall s | ratio | max error | max rank |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    verdicts = []
    for name in chosen:
        d, n, interval, f = CASES[name]
        fn, shape = oracle(d, n, interval, f), [n] * d
        test = np.random.default_rng(12345).integers(0, n, size=(TEST_ENTRIES, d))
        ref = fn(test)
        runs: dict[str, list[tuple]] = {"ttnet": [], "teneva": []}
        for seed in range(ARGS.rounds):
            for lib, runner in (("ttnet", run_ttnet), ("teneva", run_teneva)):
                if lib == "teneva" and teneva is None:
                    continue
                seconds, evals, rank, gather = runner(fn, shape, seed)
                error = float(np.linalg.norm(np.asarray(gather(test)) - ref) / np.linalg.norm(ref))
                runs[lib].append((seconds, evals, rank, error))
        med = {lib: [statistics.median(col) for col in zip(*rows)] for lib, rows in runs.items()
               if rows}
        worst = {lib: max(r[3] for r in rows) for lib, rows in runs.items() if rows}
        for lib, (seconds, evals, rank, _) in med.items():
            base = med.get("teneva")
            r_evals = f"{base[1] / evals:.2f}x" if base else "-"
            r_wall = f"{base[0] / seconds:.2f}x" if base else "-"
            print(f"| {name} | {lib} | {evals:,.0f} | {r_evals} | {seconds:.2f} | {r_wall} | "
                  f"{worst[lib]:.2e} | {rank:.0f} |")
        if "teneva" in med:
            ours, theirs = med["ttnet"], med["teneva"]
            verdicts.append((name, worst["ttnet"] <= EPS, ours[1] <= theirs[1],
                             ours[0] <= 1.5 * theirs[0]))
    print("\n| case | error <= 1e-8 | evaluations <= teneva | wall <= 1.5x teneva |")
    print("|---|---|---|---|")
    for name, *met in verdicts:
        print(f"| {name} | " + " | ".join("met" if m else "MISSED" for m in met) + " |")

    name, d, n, interval, f, eps = LARGE
    fn = oracle(d, n, interval, f)
    seconds, evals, rank, gather = run_ttnet(fn, [n] * d, 0, eps)
    test = np.random.default_rng(12345).integers(0, n, size=(TEST_ENTRIES, d))
    ref = fn(test)
    error = float(np.linalg.norm(gather(test) - ref) / np.linalg.norm(ref))
    print(f"\n{name}, {float(n) ** d:.1e} entries, eps {eps:g}: ttnet {evals:,} evaluations, "
          f"{seconds:.2f} s, error {error:.2e} on {TEST_ENTRIES:,} random entries, max rank {rank}")


if __name__ == "__main__":
    main()
