"""``loretta-train --study``: accuracy per trainable parameter over seeds, with honest intervals.

Every method of :data:`~loretta.demo.methods.STUDY_METHODS` (or a subset) is fine-tuned on the
same training sentences with several seeds (initialisation, dropout, batch order; the split is
fixed) and scored on the held-out sentences. Learning rates are chosen on the *development*
sentences (those the split leaves over; never the held-out ones): every method gets the same
number of candidates, half, one and two times its default rate, each run with the first
``select_seeds`` seeds, and keeps the one with the best mean development accuracy; those runs
are reused as the study's first seeds. Every finished run is cached (:mod:`loretta.demo.runs`),
so a killed study resumes.

The summary (``study.json``) gives per method the parameters, the chosen rate with every
candidate's development accuracy, the held-out accuracy of every seed, mean ± sd, a bootstrap
interval, and the paired difference to the reference (LoRA r 8) with its bootstrap interval
(:mod:`loretta.demo.stats`), and the issue's targets, met or not.

Example:
    >>> from loretta.demo.study import lr_candidates
    >>> lr_candidates("lora")
    [0.002, 0.004, 0.008]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import development_set, split_examples
from .experiment import RunOptions, Workbench
from .methods import METHODS, STUDY_METHODS, Settings, default_lr
from .runs import RunCache, execute
from .stats import bootstrap_interval, mean_sd

__all__ = ["LR_FACTORS", "StudyConfig", "StudyJob", "lr_candidates", "run_study", "summarise"]

LR_FACTORS = (0.5, 1.0, 2.0)
"""Every method's learning-rate candidates are these multiples of its default rate."""

Pairs = Sequence[tuple[str, int]]


@dataclass(frozen=True)
class StudyConfig(RunOptions):
    """Settings of a study (the CLI's options), besides those of
    :class:`~loretta.demo.experiment.RunOptions`.

    Attributes:
        methods: Methods to compare.
        select_seeds: Seeds per learning-rate candidate on the development set (the first ones).
        train_size: Training sentences.
        eval_size: Held-out sentences (only for the reported accuracies).
        dev_size: Development sentences (only for choosing learning rates).
        epochs: Passes over the training set.
        reference: The method every other is compared with (paired).
    """

    methods: tuple[str, ...] = STUDY_METHODS
    select_seeds: int = 2
    train_size: int = 2000
    eval_size: int = 1000
    dev_size: int = 1000
    epochs: int = 1
    reference: str = "lora"


@dataclass(frozen=True)
class StudyJob:
    """One run: a method with a seed and a learning rate, and what training needs."""

    method: str
    seed: int
    lr: float
    settings: Settings
    batch_size: int
    epochs: int
    max_steps: int | None


def lr_candidates(method: str) -> list[float]:
    """The learning rates tried for ``method``: :data:`LR_FACTORS` times its default."""
    return [float(f"{default_lr(method, causal=False) * f:.3g}") for f in LR_FACTORS]


def _make_state(model: str, max_length: int, sets: dict[str, Pairs]) -> tuple:
    bench = Workbench(model, max_length, progress=False)
    return bench, {name: bench.encode(pairs) for name, pairs in sets.items()}


def _work(state: tuple, job: StudyJob) -> dict[str, Any]:
    bench, data = state
    run = bench.run(job.method, data["train"], {"dev": data["dev"], "held_out": data["held_out"]},
                    lr=job.lr, seed=job.seed, settings=job.settings, batch_size=job.batch_size,
                    epochs=job.epochs, max_steps=job.max_steps)
    record: dict[str, Any] = {"trainable_params": run.trainable_params, "steps": len(run.losses),
                              "seconds": run.train_seconds + run.eval_seconds}
    for name in ("dev", "held_out"):
        right = [int(p == y) for p, y in zip(run.predictions[name], data[name].labels)]
        record[name] = "".join(map(str, right))
        record[f"{name}_accuracy"] = sum(right) / len(right)
    return record


def _key(config: StudyConfig, job: StudyJob) -> dict[str, Any]:
    data = {f: getattr(config, f) for f in ("model", "train_size", "eval_size", "dev_size",
                                            "split_seed", "max_length")}
    return {**dataclasses.asdict(job), **data, "overrides": METHODS[job.method].overrides}


def run_study(
    config: StudyConfig, pairs: Pairs, output_dir: Path, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run (or resume) the study; return the summary that ``study.json`` holds.

    Args:
        config: The study's settings.
        pairs: The whole labelled corpus; split here with ``config.split_seed``.
        output_dir: Folder of the run cache (``runs/``).
        log: Called with one line per finished run and per phase.

    Raises:
        ValueError: A method is unknown or the sizes do not fit the corpus.

    Example:
        >>> summary = run_study(StudyConfig(seeds=2), pairs, Path("out"))  # doctest: +SKIP
        >>> [m["method"] for m in summary["methods"]][:2]  # doctest: +SKIP
        ['loretta_adp', 'loretta_adp_t2']
    """
    for method in config.methods:
        if method not in STUDY_METHODS and method != "full":
            raise ValueError(f"--methods for the study must be among {list(STUDY_METHODS)} or "
                             f"'full', received {method!r}")
    if config.select_seeds > config.seeds:
        raise ValueError(f"--select-seeds must be <= --seeds ({config.seeds}), received "
                         f"{config.select_seeds}")
    train, held_out = split_examples(pairs, config.train_size, config.eval_size,
                                     seed=config.split_seed)
    dev = development_set(pairs, config.train_size, config.eval_size, config.dev_size,
                          seed=config.split_seed)
    cache = RunCache(Path(output_dir) / "runs")
    records: dict[tuple[str, int, float], dict[str, Any]] = {}
    start = time.perf_counter()
    state_args = (config.model, config.max_length,
                  {"train": train, "dev": dev, "held_out": held_out})

    def job(method: str, seed: int, lr: float) -> StudyJob:
        return StudyJob(method, seed, lr, config.settings, config.batch_size, config.epochs,
                        config.max_steps)

    def run_all(jobs: list[StudyJob], phase: str) -> None:
        todo = []
        for item in jobs:
            record = cache.load(_key(config, item))
            if record is None:
                todo.append(item)
            else:
                records[item.method, item.seed, item.lr] = record
        log(f"{phase}: {len(jobs)} runs, {len(jobs) - len(todo)} cached, {len(todo)} to train")

        def done(item: StudyJob, record: dict[str, Any]) -> None:
            cache.store(_key(config, item), record)
            records[item.method, item.seed, item.lr] = record
            log(f"  {item.method} seed {item.seed} lr {item.lr:g}: dev "
                f"{record['dev_accuracy']:.4f}, held-out {record['held_out_accuracy']:.4f} "
                f"({record['seconds']:.0f} s)")

        execute(todo, _work, _make_state, state_args, processes=config.jobs, on_done=done,
                threads=config.threads)

    selection = [job(m, s, lr) for m in config.methods for lr in lr_candidates(m)
                 for s in range(config.select_seeds)]
    run_all(selection, "learning rates on the development set")
    chosen = {}
    for method in config.methods:
        means = [np.mean([records[method, s, lr]["dev_accuracy"]
                          for s in range(config.select_seeds)]) for lr in lr_candidates(method)]
        chosen[method] = lr_candidates(method)[int(np.argmax(means))]
    run_all([job(m, s, chosen[m]) for m in config.methods for s in range(config.seeds)],
            "study on the held-out set")
    summary = summarise(config, records, chosen)
    summary["wall_seconds"] = time.perf_counter() - start
    return summary


def _correct(records: dict, method: str, lr: float, seeds: int, name: str) -> np.ndarray:
    return np.array([[int(c) for c in records[method, s, lr][name]] for s in range(seeds)])


def summarise(
    config: StudyConfig, records: dict[tuple[str, int, float], dict[str, Any]],
    chosen: dict[str, float],
) -> dict[str, Any]:
    """Build the study summary from the finished runs (see the module docstring)."""
    seeds = config.seeds
    correct = {m: _correct(records, m, chosen[m], seeds, "held_out") for m in config.methods}
    reference = config.reference if config.reference in correct else None
    rows = []
    for method in sorted(config.methods, key=list(METHODS).index):
        lr = chosen[method]
        accuracies = [records[method, s, lr]["held_out_accuracy"] for s in range(seeds)]
        mean, sd = mean_sd(accuracies)
        _, low, high = bootstrap_interval(correct[method], resamples=config.resamples)
        candidates = [{"lr": c, "dev_accuracy": float(np.mean(
            [records[method, s, c]["dev_accuracy"] for s in range(config.select_seeds)]))}
            for c in lr_candidates(method)]
        row = {
            "method": method,
            "description": METHODS[method].description,
            "trainable_params": records[method, 0, lr]["trainable_params"],
            "lr": lr,
            "lr_candidates": candidates,
            "lr_at_edge": lr in (candidates[0]["lr"], candidates[-1]["lr"]),
            "seeds": list(range(seeds)),
            "accuracies": accuracies,
            "dev_accuracies": [records[method, s, lr]["dev_accuracy"] for s in range(seeds)],
            "mean": mean,
            "sd": sd,
            "interval": [low, high],
            "seconds_per_run": float(np.mean([records[method, s, lr]["seconds"]
                                              for s in range(seeds)])),
            "diff_to_reference": None,
        }
        if reference is not None and method != reference:
            diff, low, high = bootstrap_interval(correct[method], correct[reference],
                                                 resamples=config.resamples)
            row["diff_to_reference"] = {"mean": diff, "low": low, "high": high}
        rows.append(row)
    settings = {**dataclasses.asdict(config), "lr_factors": list(LR_FACTORS)}
    return {"settings": settings, "reference": reference, "methods": rows,
            "targets": targets(rows, correct, reference, config.resamples)}


def targets(
    rows: list[dict[str, Any]], correct: dict[str, np.ndarray], reference: str | None,
    resamples: int,
) -> list[dict[str, Any]]:
    """The issue's targets, each with ``met`` (True/False, None when it cannot be decided).

    1. LoRETTA_adp at most a third of the reference's parameters and within 1 point of it on
       the mean over seeds.
    2. Every LoRETTA point above every baseline within ±25 % of its parameter count by at least
       1 point, with the paired bootstrap interval above zero (one entry per pair).
    """
    by_name = {row["method"]: row for row in rows}
    out = []
    if "loretta_adp" in by_name and reference is not None:
        adp, ref = by_name["loretta_adp"], by_name[reference]
        small = adp["trainable_params"] <= ref["trainable_params"] / 3
        close = adp["mean"] >= ref["mean"] - 0.01
        out.append({"target": f"loretta_adp <= 1/3 of {reference}'s parameters and within 1 "
                              f"point of its mean", "met": bool(small and close),
                    "detail": f"{adp['trainable_params']:,} vs {ref['trainable_params']:,} "
                              f"params; mean {adp['mean']:.4f} vs {ref['mean']:.4f}"})
    baselines = [r for r in rows if not r["method"].startswith("loretta")
                 and r["method"] not in ("head", "full")]
    for point in (r for r in rows if r["method"].startswith("loretta")):
        params = point["trainable_params"]
        near = [b for b in baselines if 0.75 * params <= b["trainable_params"] <= 1.25 * params]
        for base in near:
            diff, low, high = bootstrap_interval(correct[point["method"]], correct[base["method"]],
                                                 resamples=resamples)
            out.append({"target": f"{point['method']} >= {base['method']} + 1 point, "
                                  "interval above 0",
                        "met": bool(diff >= 0.01 and low > 0),
                        "detail": f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]"})
        if not near:
            out.append({"target": f"{point['method']}: no baseline within ±25 % of "
                                  f"{params:,} parameters", "met": None, "detail": ""})
    return out
