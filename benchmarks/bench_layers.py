"""Benchmark the ttnet_nn layers against dense layers and TT peers; prints markdown tables.

Part ``linear``: TTLinear 4096x4096, TT rank 8, batch 64, float32, forward + backward (input and
weights require grad), against ``nn.Linear`` of the same size and, where they import, torchtt's
``LinearLayerTT`` and tensorly-torch's ``FactorizedLinear`` (``blocktt``: a TT matrix, the same
format; ``implementation="factorized"``: contracted without building the weight).

Part ``bottleneck``: the TT branch against the dense bottleneck it replaces, forward + backward
(input requires grad; the backward starts from a fixed random output gradient, as inside a
network): ``TTAdapter(H, 64, tt_rank=5)`` vs a dense adapter ``x + up(relu(down(x)))``
(``nn.Linear`` H->64->H with biases), and ``TTLoRAUpdate(H, H, r=8, lora_alpha=16, tt_rank=5)`` vs
a dense LoRA branch ``B(A(x) * scaling)`` (bias-free ``nn.Linear`` H->8->H), for H in 384, 768,
2048, 4096 and 64, 1,024, 4,096 rows, planned (default) and paper shapes. Each case runs TT and
dense alternately in rounds; the table shows the median over rounds of the per-round ratio
TT/dense (the box is shared: the ratio inside a round is what is comparable), the median times,
and the executor of each TT factor. Column ``infer``: the same ratio in eval mode under
``torch.no_grad()``, where the layers reuse their built factors.

Part ``calibrate`` (``--calibrate``, instead of the others): fits the CPU cost model of
:mod:`ttnet.cost`. Times forward + backward of the TT network (``"steps"``) and the dense route
(``"dense"``) of the TT factors of adapters, LoRA updates (paper and planned shapes, hidden 384 to
4096) and square TT layers at 8 to 4,096 rows, each forced through
``ttnet.ttm_expression(..., executor=...)``, fits ``seconds_per_flop``, ``seconds_per_element``,
``seconds_per_call`` and ``seconds_per_fused_call`` by non-negative least squares on the relative
error, and prints per case
the measured and modelled times, the route the fitted model picks and the faster measured one.

Usage: ``python benchmarks/bench_layers.py [--threads 1] [--rounds 7] [--parts linear,bottleneck]
[--hidden 384,768,2048,4096] [--rows 64,1024,4096] [--shapes planned,paper] [--calibrate]
[--einsum-min-seconds S]``. torchtt is best run from a separate venv that sees this one (see
benchmarks/RESULTS.md). Only public API of ttnet and ttnet_nn is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ttnet import default_cost_model, ttm_expression
from ttnet.expression import evaluate
from ttnet_nn import TTAdapter, TTLinear, TTLoRAUpdate


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


#: The clock: ``time.process_time`` (CPU seconds of this process) by default; on a shared box
#: it leaves out the time spent waiting for a core, which wall time counts. ``--clock wall``
#: (and always on CUDA, where the work runs on the device) uses ``time.perf_counter``.
CLOCK = {"cpu": time.process_time, "wall": time.perf_counter}
clock = time.process_time


def _timed(fn: Callable[[], None], calls: int, device: str) -> float:
    _sync(device)
    start = clock()
    for _ in range(calls):
        fn()
    _sync(device)
    return (clock() - start) / calls


def _median_time(fn: Callable[[], None], repeats: int, budget_s: float, device: str) -> float:
    """Median wall time of ``fn`` after one warm-up call; stops early once ``budget_s`` is spent."""
    fn()
    times: list[float] = []
    while len(times) < repeats and (len(times) < 3 or sum(times) < budget_s):
        times.append(_timed(fn, 1, device))
    return statistics.median(times)


def _train_step(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """Forward + backward from a fixed random output gradient (set_to_none, as optimizers do)."""
    params = [p for p in module.parameters() if p.requires_grad]
    grad = torch.randn(x.shape[0], module(x).shape[-1], device=x.device,
                       generator=torch.Generator(x.device).manual_seed(1))

    def step() -> None:
        for p in params:
            p.grad = None
        x.grad = None
        module(x).backward(grad)

    return step


def _infer_step(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        with torch.no_grad():
            module(x)

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


def _interleaved(fns: dict[str, Callable[[], None]], rounds: int, budget_s: float,
                 device: str) -> dict[str, list[float]]:
    """Per-round times of each function, run alternately (enough calls for ~20 ms per round)."""
    for fn in fns.values():
        fn()
    calls = {name: max(1, int(0.02 / max(_timed(fn, 1, device), 1e-6)))
             for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    start = clock()
    for done in range(rounds):
        for name, fn in fns.items():
            times[name].append(_timed(fn, calls[name], device))
        if done >= 2 and clock() - start > budget_s:
            break
    return times


def _ratio(times: dict[str, list[float]], ours: str, theirs: str) -> float:
    return statistics.median(a / b for a, b in zip(times[ours], times[theirs]))


def bench_linear(args: argparse.Namespace) -> None:
    """TTLinear vs nn.Linear and the peers."""
    size, rank, batch, modes = 4096, 8, 64, (8, 8, 8, 8)
    torch.manual_seed(0)
    layers: dict[str, nn.Module] = {
        "nn.Linear (dense)": nn.Linear(size, size, device=args.device),
        "ttnet_nn TTLinear": TTLinear(size, size, tt_rank=rank, device=args.device),
        **_peers(modes, rank, args.device),
    }
    x = torch.randn(batch, size, device=args.device, requires_grad=True)
    times = _interleaved({name: _train_step(layer, x) for name, layer in layers.items()},
                         args.rounds, args.budget * len(layers), args.device)
    info = layers["ttnet_nn TTLinear"].contraction_info(batch)
    print(f"\n### TTLinear {size}x{size}, TT rank {rank}, batch {batch}, float32, forward+backward")
    print(f"TTLinear: executor {info.executor}, {info.tt_flops:,} FLOPs (dense would be "
          f"{info.dense_flops:,}); ratios are medians of per-round ratios over "
          f"{len(times['nn.Linear (dense)'])} rounds\n")
    print("| layer | params | median ms | vs nn.Linear | vs TTLinear |")
    print("|---|---:|---:|---:|---:|")
    for name, layer in layers.items():
        params = sum(p.numel() for p in layer.parameters())
        print(f"| {name} | {params:,} | {statistics.median(times[name]) * 1e3:.3f} | "
              f"{_ratio(times, name, 'nn.Linear (dense)'):.3f}x | "
              f"{_ratio(times, name, 'ttnet_nn TTLinear'):.2f}x |")


class DenseAdapter(nn.Module):
    """The dense bottleneck adapter a TTAdapter replaces: ``x + up(relu(down(x)))``."""

    def __init__(self, hidden: int, bottleneck: int, device: str) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck, device=device)
        self.up = nn.Linear(bottleneck, hidden, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(F.relu(self.down(x)))


class DenseLoRA(nn.Module):
    """The dense LoRA branch a TTLoRAUpdate replaces: ``B(A(x) * scaling)``."""

    def __init__(self, hidden: int, r: int, scaling: float, device: str) -> None:
        super().__init__()
        self.lora_A = nn.Linear(hidden, r, bias=False, device=device)
        self.lora_B = nn.Linear(r, hidden, bias=False, device=device)
        self.scaling = scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lora_B(self.lora_A(x) * self.scaling)


def _executors(factors: tuple[TTLinear, TTLinear], rows: int) -> str:
    infos = [f.contraction_info(rows) for f in factors]
    return "/".join("full" if i is None else i.executor for i in infos)


def bench_bottleneck(args: argparse.Namespace) -> None:
    """TTAdapter and TTLoRAUpdate vs the dense bottleneck, training and inference."""
    print("\n### TT branch vs the dense bottleneck it replaces, float32, forward+backward")
    print("(adapter: bottleneck 64, ReLU, biases; LoRA: r 8; TT rank 5. `train`: median over "
          "rounds of the per-round ratio TT/dense, forward+backward; `infer`: the same in eval "
          "mode without gradients; executors: down/up or A/B)\n")
    print("| module | shapes | H | rows | dense ms | TT ms | train | infer | executors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for shapes in args.shapes:
        for hidden in args.hidden:
            for rows in args.rows:
                _bottleneck_rows(args, None if shapes == "planned" else shapes, hidden, rows)


def _bottleneck_rows(args: argparse.Namespace, shapes: str | None, hidden: int,
                     rows: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(rows, hidden, device=args.device, requires_grad=True)
    pairs = {
        "TTAdapter": (TTAdapter(hidden, 64, tt_rank=5, shapes=shapes, device=args.device),
                      DenseAdapter(hidden, 64, args.device)),
        "TTLoRAUpdate": (TTLoRAUpdate(hidden, hidden, r=8, lora_alpha=16, tt_rank=5,
                                      shapes=shapes, device=args.device),
                         DenseLoRA(hidden, 8, 2.0, args.device)),
    }
    for name, (ours, dense) in pairs.items():
        with torch.no_grad():  # a trained state: no zero core
            for p in ours.parameters():
                p.normal_(0.0, 0.1)
        if args.cost_model is not None:
            for module in ours.modules():
                if isinstance(module, TTLinear):
                    module.cost_model = args.cost_model
        train = _interleaved({"tt": _train_step(ours, x), "dense": _train_step(dense, x)},
                             args.rounds, args.budget, args.device)
        ours.eval()
        dense.eval()
        infer = _interleaved({"tt": _infer_step(ours, x), "dense": _infer_step(dense, x)},
                             args.rounds, args.budget, args.device)
        factors = (ours.down, ours.up) if name == "TTAdapter" else (ours.lora_A, ours.lora_B)
        print(f"| {name} | {shapes or 'planned'} | {hidden} | {rows} | "
              f"{statistics.median(train['dense']) * 1e3:.3f} | "
              f"{statistics.median(train['tt']) * 1e3:.3f} | "
              f"{_ratio(train, 'tt', 'dense'):.2f}x | {_ratio(infer, 'tt', 'dense'):.2f}x | "
              f"{_executors(factors, rows)} |", flush=True)


CALIBRATION_LAYERS = [  # (in, out, shapes, tt_rank): adapter and LoRA factors, square layers
    *[(h, b, s, 5) for h in (384, 768, 4096) for b in (8, 64) for s in ("paper", None)],
    *[(b, h, s, 5) for h in (384, 768, 4096) for b in (8, 64) for s in ("paper", None)],
    (512, 512, None, 8), (768, 3072, None, 8), (4096, 4096, None, 8),
]
CALIBRATION_ROWS = (8, 64, 512, 4096)


def calibrate(args: argparse.Namespace) -> None:
    """Measure both routes, fit the cost model constants, print the table."""
    from scipy.optimize import nnls

    current = default_cost_model(torch.device(args.device).type)
    print("\n### Cost model calibration: forward+backward of both routes, float32\n")
    print("| layer | rows | steps ms | dense ms | model steps | model dense | model picks | "
          "faster |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    features, times, cases = [], [], []
    for fan_in, fan_out, shapes, rank in CALIBRATION_LAYERS:
        torch.manual_seed(0)
        layer = TTLinear(fan_in, fan_out, bias=False, tt_rank=rank, shapes=shapes,
                         device=args.device)
        cores = list(layer.cores)
        product = layer.layout.product(tuple(tuple(c.shape) for c in cores))
        if product is None:
            continue
        matrix_shapes, kind = product
        for rows in CALIBRATION_ROWS:
            x = torch.randn(rows, fan_in, device=args.device, requires_grad=True)
            grad = torch.randn(rows, fan_out, device=args.device)
            measured, costs = {}, {}
            for route in ("steps", "dense"):
                expression = ttm_expression(matrix_shapes, rows, kind=kind, cost_model=current,
                                            executor=route)
                cost = expression.info.tt_cost if route == "steps" else expression.info.dense_cost
                if current.seconds(cost) > 1.0:  # the current model says: far too slow, skip
                    continue

                def step(expression: object = expression, cores: list = cores,
                         x: torch.Tensor = x, grad: torch.Tensor = grad) -> None:
                    for core in cores:
                        core.grad = None
                    x.grad = None
                    evaluate(expression, cores, x).backward(grad)

                measured[route] = _median_time(step, args.repeats, args.budget, args.device)
                costs[route] = cost
                features.append([cost.narrow_flops, cost.elements, cost.calls, cost.fused_calls])
                times.append(measured[route])
            if measured:
                cases.append((f"{fan_in}->{fan_out} {shapes or 'planned'} r{rank}", rows, costs,
                              measured))
    a = torch.tensor(features, dtype=torch.float64).numpy()
    t = torch.tensor(times, dtype=torch.float64).numpy()
    coef, _ = nnls(a / t[:, None], t / t)
    fitted = dataclasses.replace(current, seconds_per_flop=float(coef[0]),
                                 seconds_per_element=float(coef[1]),
                                 seconds_per_call=float(coef[2]),
                                 seconds_per_fused_call=float(coef[3]), source="fitted")
    # total measured time when each rule picks the route, relative to always picking the faster
    spent = {"fitted model": 0.0, "current model": 0.0, "fewer FLOPs": 0.0, "best": 0.0}
    for name, rows, costs, measured in cases:
        model = {k: fitted.seconds(c) for k, c in costs.items()}
        pick = min(model, key=model.get)
        faster = min(measured, key=measured.get) if len(measured) == 2 else "(one timed)"
        cells = [f"{measured[k] * 1e3:.3f}" if k in measured else "-" for k in ("steps", "dense")]
        modelled = [f"{model[k] * 1e3:.3f}" if k in model else "-" for k in ("steps", "dense")]
        print(f"| {name} | {rows} | {cells[0]} | {cells[1]} | {modelled[0]} | {modelled[1]} | "
              f"{pick} | {faster} |")
        if len(measured) == 2:
            by_current = min(costs, key=lambda k: current.seconds(costs[k]))
            by_flops = min(costs, key=lambda k: costs[k].flops)
            for rule, route in (("fitted model", pick), ("current model", by_current),
                                ("fewer FLOPs", by_flops), ("best", faster)):
                spent[rule] += measured[route]
    errors = abs(a @ coef - t) / t
    print(f"\nfit: seconds_per_flop = {coef[0]:.3g}, seconds_per_element = {coef[1]:.3g}, "
          f"seconds_per_call = {coef[2]:.3g}, seconds_per_fused_call = {coef[3]:.3g}; relative "
          f"error mean {float(errors.mean()):.0%}, max {float(errors.max()):.0%} over {len(t)} "
          "timings")
    print("time spent with each rule / always the faster route: " + ", ".join(
        f"{rule} {spent[rule] / spent['best']:.3f}" for rule in spent if rule != "best"))


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main() -> None:
    """Parse arguments, set the thread count, run the chosen parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per case (7)")
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed calls per route when calibrating (15)")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="stop a case after this many seconds once 3 rounds are done (3.0)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--clock", choices=sorted(CLOCK), default="cpu",
                        help="cpu: CPU seconds of this process (default; robust on a shared "
                        "box with --threads 1); wall: elapsed seconds (always on cuda)")
    parser.add_argument("--calibrate", action="store_true",
                        help="fit the cost model instead of the other parts")
    parser.add_argument("--parts", default="linear,bottleneck",
                        help="comma-separated parts: linear, bottleneck (default both)")
    parser.add_argument("--hidden", type=_ints, default=[384, 768, 2048, 4096])
    parser.add_argument("--rows", type=_ints, default=[64, 1024, 4096])
    parser.add_argument("--shapes", default="planned,paper",
                        help="comma-separated: planned (the default layout), paper")
    parser.add_argument("--einsum-min-seconds", type=float, default=None,
                        help="run the layers with the default cost model but this einsum "
                        "threshold (inf: never the single einsum call)")
    args = parser.parse_args()
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    if not parts or not parts <= {"linear", "bottleneck"}:
        parser.error(f"--parts must name linear and/or bottleneck, received {args.parts!r}")
    args.shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    if not set(args.shapes) <= {"planned", "paper"}:
        parser.error(f"--shapes must name planned and/or paper, received {args.shapes!r}")
    args.cost_model = None
    if args.einsum_min_seconds is not None:
        args.cost_model = dataclasses.replace(default_cost_model(torch.device(args.device).type),
                                              einsum_min_seconds=args.einsum_min_seconds)
    global clock
    clock = CLOCK["wall" if args.device == "cuda" else args.clock]
    torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device_name}, "
          f"clock {'wall' if clock is time.perf_counter else 'process CPU time'}")
    if args.calibrate:
        calibrate(args)
        return
    if "linear" in parts:
        bench_linear(args)
    if "bottleneck" in parts:
        bench_bottleneck(args)


if __name__ == "__main__":
    main()
