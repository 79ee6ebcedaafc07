"""Benchmark the ttnet_nn layers against dense layers and TT peers; prints markdown tables.

Part 1: TTLinear 4096x4096, TT rank 8, batch 64, float32, forward + backward (input and weights
require grad), against ``nn.Linear`` of the same size and, where they import, torchtt's
``LinearLayerTT`` and tensorly-torch's ``FactorizedLinear`` (``blocktt``: a TT matrix, the same
format; ``implementation="factorized"``: contracted without building the weight).

Part 2: overhead of TTAdapter and TTLoRA over their frozen base layer (``nn.Linear(H, H)``) at
hidden size 768 and 4096 with 8 and 4096 rows (batch x sequence). ``base`` is the frozen layer's
forward + backward to its input (what it costs inside a network being fine-tuned); ``branch`` is
the extra work of the module, timed alone, forward + backward (the adapter on the base's output,
``TTLoRAUpdate`` on the input; both with an input that requires grad). The table shows the
strategy :func:`ttnet.contraction.ttm_matvec` picks for each TT factor at that row count.

Part 3 (``--calibrate``, instead of parts 1-2): fits the cost model of
:mod:`ttnet.contraction`. Times forward + backward of both routes ("tt" network and "dense" W
then one matmul) of the TT factors of adapters, LoRA updates (paper and planned shapes, hidden
384 to 4096) and square TT layers at 8 to 4,096 rows, fits ``SECONDS_PER_FLOP``,
``SECONDS_PER_ELEMENT`` and ``SECONDS_PER_CALL`` by non-negative least squares on the relative
error, and prints per case the measured and modelled times, the route the fitted model picks and
the faster measured one.

Usage: ``python benchmarks/bench_layers.py [--threads 1] [--repeats 15] [--calibrate]
[--parts linear,overhead] [--einsum-min-seconds S]``. torchtt is best run from a separate venv
that sees this one (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from ttnet import contraction
from ttnet_nn import TTAdapter, TTLinear, TTLoRAUpdate


def _median_time(fn: Callable[[], None], repeats: int, budget_s: float, device: str) -> float:
    """Median wall time of ``fn`` after one warm-up call; stops early once ``budget_s`` is spent."""
    fn()
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats and (len(times) < 3 or spent < budget_s):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return statistics.median(times)


def _train_step(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).sum().backward()

    return step


def _peers(modes: tuple[int, ...], rank: int, device: str) -> dict[str, nn.Module]:
    """Peer TT linear layers that import here (each adapted to take a flat ``(B, 4096)`` input)."""
    peers: dict[str, nn.Module] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchtt.nn import LinearLayerTT

        class TorchTT(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                ranks = [1, *[rank] * (len(modes) - 1), 1]
                self.layer = LinearLayerTT(list(modes), list(modes), ranks)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.layer(x.reshape(x.shape[0], *modes)).reshape(x.shape[0], -1)

        peers["torchtt LinearLayerTT"] = TorchTT().to(device)
    except ImportError as exc:
        print(f"(torchtt not available: {exc})")
    try:
        from tltorch import FactorizedLinear

        peers["tensorly-torch FactorizedLinear (blocktt)"] = FactorizedLinear(
            modes, modes, factorization="blocktt", rank=rank, implementation="factorized",
            device=device,
        )
    except ImportError as exc:
        print(f"(tensorly-torch not available: {exc})")
    return peers


def bench_linear(args: argparse.Namespace) -> None:
    """Part 1: TTLinear vs nn.Linear and the peers."""
    size, rank, batch, modes = 4096, 8, 64, (8, 8, 8, 8)
    torch.manual_seed(0)
    layers: dict[str, nn.Module] = {
        "nn.Linear (dense)": nn.Linear(size, size, device=args.device),
        "ttnet_nn TTLinear": TTLinear(size, size, tt_rank=rank, device=args.device),
        **_peers(modes, rank, args.device),
    }
    x = torch.randn(batch, size, device=args.device, requires_grad=True)
    times = {
        name: _median_time(_train_step(layer, x), args.repeats, args.budget, args.device)
        for name, layer in layers.items()
    }
    ours = times["ttnet_nn TTLinear"]
    dense = times["nn.Linear (dense)"]
    info = layers["ttnet_nn TTLinear"].contraction_info(batch)
    print(f"\n### TTLinear {size}x{size}, TT rank {rank}, batch {batch}, float32, forward+backward")
    print(f"TTLinear path: {info.strategy}, {info.tt_flops:,} FLOPs (dense would be "
          f"{info.dense_flops:,})\n")
    print("| layer | params | median ms | vs nn.Linear | vs TTLinear |")
    print("|---|---:|---:|---:|---:|")
    for name, layer in layers.items():
        params = sum(p.numel() for p in layer.parameters())
        t = times[name]
        print(f"| {name} | {params:,} | {t * 1e3:.3f} | {t / dense:.4f}x | {t / ours:.2f}x |")


def bench_overhead(args: argparse.Namespace) -> None:
    """Part 2: adapter / LoRA branch cost relative to the frozen base layer."""
    print("\n### Overhead over the frozen base nn.Linear(H, H), float32, forward+backward")
    print("(branch alone vs base; adapter: bottleneck 64, LoRA: r 8, TT rank 5; path per TT "
          "factor = strategy of ttm_matvec at that row count)\n")
    print("| H | rows | module | shapes | base ms | branch ms | overhead | paths |")
    print("|---:|---:|---|---|---:|---:|---:|---|")
    for hidden in (768, 4096):
        for rows in (8, 4096):
            torch.manual_seed(0)
            base = nn.Linear(hidden, hidden, device=args.device).requires_grad_(False)
            x = torch.randn(rows, hidden, device=args.device, requires_grad=True)
            t_base = _median_time(_train_step(base, x), args.repeats, args.budget, args.device)
            for shapes in ("paper", None):
                branches = {
                    "TTAdapter": TTAdapter(hidden, 64, tt_rank=5, shapes=shapes),
                    "TTLoRA": TTLoRAUpdate(hidden, hidden, r=8, lora_alpha=16, tt_rank=5,
                                           shapes=shapes),
                }
                for name, branch in branches.items():
                    branch.to(args.device)
                    with torch.no_grad():  # a trained state: no zero core
                        for p in branch.parameters():
                            p.normal_(0.0, 0.1)
                    t = _median_time(_train_step(branch, x), args.repeats, args.budget,
                                     args.device)
                    factors = (branch.down, branch.up) if name == "TTAdapter" else (
                        branch.lora_A, branch.lora_B)
                    paths = " / ".join(_strategy(f, rows) for f in factors)
                    print(f"| {hidden} | {rows} | {name} | {shapes or 'planned'} | "
                          f"{t_base * 1e3:.3f} | {t * 1e3:.3f} | {t / t_base:.1%} | {paths} |")


def _strategy(layer: TTLinear, rows: int) -> str:
    info = layer.contraction_info(rows)
    return "dense (layout)" if info is None else info.strategy


CALIBRATION_LAYERS = [  # (in, out, shapes, tt_rank): adapter and LoRA factors, square layers
    *[(h, b, s, 5) for h in (384, 768, 4096) for b in (8, 64) for s in ("paper", None)],
    *[(b, h, s, 5) for h in (384, 768, 4096) for b in (8, 64) for s in ("paper", None)],
    (512, 512, None, 8), (768, 3072, None, 8), (4096, 4096, None, 8),
]
CALIBRATION_ROWS = (8, 64, 512, 4096)


def calibrate(args: argparse.Namespace) -> None:
    """Part 3: measure both routes, fit the cost model constants, print the table."""
    from scipy.optimize import nnls

    print("\n### Cost model calibration: forward+backward of both routes, float32\n")
    print("| layer | rows | tt ms | dense ms | model tt | model dense | model picks | faster |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    rows_a, times, cases = [], [], []
    for fan_in, fan_out, shapes, rank in CALIBRATION_LAYERS:
        torch.manual_seed(0)
        layer = TTLinear(fan_in, fan_out, bias=False, tt_rank=rank, shapes=shapes,
                         device=args.device)
        cores = layer.layout.matrix_cores(list(layer.cores))
        if cores is None:
            continue
        core_shapes = tuple(tuple(c.shape) for c in cores)
        for rows in CALIBRATION_ROWS:
            plan = contraction.contraction_info(cores, rows)
            x = torch.randn(rows, fan_in, device=args.device, requires_grad=True)
            measured = {}
            for route in ("tt", "dense"):
                cost = plan.tt_cost if route == "tt" else plan.dense_cost
                if cost.seconds > 1.0:  # the old constants say: far too slow, skip
                    continue
                forced = dataclasses.replace(plan, strategy=route)

                def step(forced: contraction.ContractionInfo = forced) -> None:
                    layer.zero_grad(set_to_none=True)
                    x.grad = None
                    cores = layer.layout.matrix_cores(list(layer.cores))
                    contraction._execute(forced, cores, core_shapes, x).sum().backward()

                measured[route] = _median_time(step, args.repeats, args.budget, args.device)
                rows_a.append([cost.narrow_flops, cost.elements, cost.calls])
                times.append(measured[route])
            if measured:
                    cases.append((f"{fan_in}->{fan_out} {shapes or 'planned'} r{rank}", rows, plan,
                              measured))
    a = torch.tensor(rows_a, dtype=torch.float64).numpy()
    t = torch.tensor(times, dtype=torch.float64).numpy()
    coef, _ = nnls(a / t[:, None], t / t)
    def model(cost: contraction.Cost) -> float:
        return float(coef @ [cost.narrow_flops, cost.elements, cost.calls])

    # total measured time when each rule picks the route, relative to always picking the faster
    spent = {"fitted model": 0.0, "ttnet constants": 0.0, "fewer FLOPs": 0.0, "best": 0.0}
    for name, rows, plan, measured in cases:
        tt, dense = model(plan.tt_cost), model(plan.dense_cost)
        pick = "tt" if tt < dense else "dense"
        faster = min(measured, key=measured.get) if len(measured) == 2 else "(one timed)"
        cells = [f"{measured[k] * 1e3:.3f}" if k in measured else "-" for k in ("tt", "dense")]
        print(f"| {name} | {rows} | {cells[0]} | {cells[1]} | {tt * 1e3:.3f} | "
              f"{dense * 1e3:.3f} | {pick} | {faster} |")
        if len(measured) == 2:
            by_flops = "tt" if plan.tt_flops < plan.dense_flops else "dense"
            for rule, route in (("fitted model", pick), ("ttnet constants", plan.strategy),
                                ("fewer FLOPs", by_flops), ("best", faster)):
                spent[rule] += measured[route]
    errors = abs(a @ coef - t) / t
    print(f"\nfit: SECONDS_PER_FLOP = {coef[0]:.3g}, SECONDS_PER_ELEMENT = {coef[1]:.3g}, "
          f"SECONDS_PER_CALL = {coef[2]:.3g}; relative error mean {float(errors.mean()):.0%}, "
          f"max {float(errors.max()):.0%} over {len(t)} timings")
    print("time spent with each rule / always the faster route: " + ", ".join(
        f"{rule} {spent[rule] / spent['best']:.3f}" for rule in spent if rule != "best"))


def main() -> None:
    """Parse arguments, set the thread count, run the chosen parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per case (15)")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="stop a case after this many seconds once 3 calls are timed (3.0)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--calibrate", action="store_true",
                        help="fit the contraction cost model instead of parts 1-2")
    parser.add_argument("--parts", default="linear,overhead",
                        help="comma-separated parts to run: linear (1), overhead (2) "
                        "(default both)")
    parser.add_argument("--einsum-min-seconds", type=float, default=None,
                        help="override ttnet.contraction.EINSUM_MIN_SECONDS (inf: never use the "
                        "single einsum call, run the tensordot steps)")
    args = parser.parse_args()
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    if not parts or not parts <= {"linear", "overhead"}:
        parser.error(f"--parts must name linear and/or overhead, received {args.parts!r}")
    if args.einsum_min_seconds is not None:
        contraction.EINSUM_MIN_SECONDS = args.einsum_min_seconds
    torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device_name}, "
          f"median of up to {args.repeats} calls after one warm-up")
    if args.calibrate:
        calibrate(args)
        return
    if "linear" in parts:
        bench_linear(args)
    if "overhead" in parts:
        bench_overhead(args)


if __name__ == "__main__":
    main()
