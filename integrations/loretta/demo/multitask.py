"""``loretta-train --experiment multitask``: what a method keeps of earlier tasks after later ones.

Three binary tasks are trained in sequence on one model (:mod:`loretta.demo.data`): sentence
polarity, hedge detection (CoNLL-2010) and spam. Each method keeps *one* adapter for the whole
sequence (full fine-tuning: the whole model) and gives each task its own classifier head: before
a task, the head starts again from the seed's initial head; after it, the task's head is stored.
Once the whole sequence is trained, each task is scored on its held-out set with its own head
and the shared adapter as the last task left it; the accuracy right after the task's own
training is recorded too, so the table shows what later tasks cost. Splits are fixed (seed 0);
the seeds vary initialisation, dropout and batch order. Spam has 250 e-mails in all, so its
held-out set is 100 e-mails and its bootstrap interval is wide; it is trained for 3 epochs (fixed
before any run).

Example:
    >>> from loretta.demo.multitask import MultitaskConfig
    >>> [task.name for task in MultitaskConfig().tasks]
    ['polarity', 'uncertainty', 'spam']
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import CORPORA, split_examples
from .engine import Encoded, predict, train
from .experiment import RunOptions, Workbench
from .methods import METHODS, resolve_lr
from .methods import trainable_params as count_trainable
from .runs import RunCache, execute
from .stats import bootstrap_interval, mean_sd

__all__ = ["MultitaskConfig", "Task", "head_parameters", "run_multitask"]

Pairs = Sequence[tuple[str, int]]


@dataclass(frozen=True)
class Task:
    """One task of the sequence: a corpus of :data:`~loretta.demo.data.CORPORA` and its split."""

    name: str
    train_size: int
    eval_size: int
    epochs: int = 1


@dataclass(frozen=True)
class MultitaskConfig(RunOptions):
    """Settings of the multitask experiment (the CLI's options), besides those of
    :class:`~loretta.demo.experiment.RunOptions` (here ``seeds`` defaults to 3).

    Attributes:
        methods: Methods compared (one adapter each, trained through the whole sequence).
        tasks: The tasks, in training order.
        lr: One learning rate for every method, ``{method: rate}`` (the rates a study chose on
            its development set), or None for the per-method defaults.
    """

    seeds: int = 3
    methods: tuple[str, ...] = ("loretta_adp", "loretta_rep", "lora", "full")
    tasks: tuple[Task, ...] = (Task("polarity", 2000, 1000), Task("uncertainty", 2000, 1000),
                               Task("spam", 150, 100, epochs=3))
    lr: float | Mapping[str, float] | None = None


@dataclass(frozen=True)
class _Job:
    method: str
    seed: int
    lr: float
    config: MultitaskConfig


def head_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The trainable parameters of the classifier head (a ``classifier`` or ``score`` module).

    Raises:
        ValueError: The model has no trainable head.

    Example:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> bert = BertForSequenceClassification(BertConfig(hidden_size=8, num_hidden_layers=1,
        ...     num_attention_heads=2, intermediate_size=8, vocab_size=20))
        >>> sorted(head_parameters(bert))
        ['classifier.bias', 'classifier.weight']
    """
    found = {name: p for name, p in model.named_parameters()
             if p.requires_grad and {"classifier", "score"} & set(name.split("."))}
    if not found:
        raise ValueError(f"model: expected a trainable classifier head, received "
                         f"{type(model).__name__} without one")
    return found


def _make_state(model: str, max_length: int, sets: Mapping[str, tuple[Pairs, Pairs]]) -> tuple:
    bench = Workbench(model, max_length, progress=False)
    return bench, {name: (bench.encode(a), bench.encode(b)) for name, (a, b) in sets.items()}


def _correct(predicted: list[int], data: Encoded) -> str:
    return "".join(str(int(p == y)) for p, y in zip(predicted, data.labels))


def _work(state: tuple, job: _Job) -> dict[str, Any]:
    bench, data = state
    config = job.config
    start = time.perf_counter()
    model = bench.fresh_model(job.method, config.settings, job.seed)
    head = head_parameters(model)
    initial = {name: p.detach().clone() for name, p in head.items()}
    heads, own = {}, {}
    for task in config.tasks:
        train_data, held = data[task.name]
        with torch.no_grad():
            for name, p in head.items():
                p.copy_(initial[name])
        train(model, bench.task, train_data, lr=job.lr, batch_size=config.batch_size,
              seed=job.seed, epochs=task.epochs, max_steps=config.max_steps)
        heads[task.name] = {name: p.detach().clone() for name, p in head.items()}
        own[task.name] = _correct(predict(model, bench.task, held), held)
    final = {}
    for task in config.tasks:
        with torch.no_grad():
            for name, p in head.items():
                p.copy_(heads[task.name][name])
        final[task.name] = _correct(predict(model, bench.task, data[task.name][1]),
                                    data[task.name][1])
    return {"trainable_params": count_trainable(model), "final": final, "own": own,
            "seconds": time.perf_counter() - start}


def _key(job: _Job) -> dict[str, Any]:
    config = dataclasses.asdict(job.config)
    for name in ("methods", "seeds", "jobs", "threads", "resamples", "lr"):
        config.pop(name)
    return {"method": job.method, "seed": job.seed, "lr": job.lr, **config,
            "overrides": METHODS[job.method].overrides}


def run_multitask(
    config: MultitaskConfig,
    corpora: Mapping[str, Pairs],
    output_dir: Path,
    *,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or resume) the experiment; return the summary that ``multitask.json`` holds.

    Args:
        config: Settings.
        corpora: ``{task name: all (text, label) pairs}`` for every task of ``config``.
        output_dir: Folder of the run cache (``runs/``).
        log: Called with one line per finished (method, seed).

    Raises:
        ValueError: A method or task is unknown, or a size does not fit its corpus.

    Example:
        >>> corpora = {name: load_corpus(name) for name in CORPORA}  # doctest: +SKIP
        >>> run_multitask(MultitaskConfig(), corpora, Path("out"))["methods"][0]["average"]
        ... # doctest: +SKIP
    """
    for method in config.methods:
        if method not in METHODS or method in ("head", "zero_shot"):
            raise ValueError(f"--methods for the multitask experiment must be adapter methods "
                             f"or 'full', received {method!r}")
    sets = {}
    for task in config.tasks:
        if task.name not in CORPORA:
            raise ValueError(f"task must be one of {sorted(CORPORA)}, received {task.name!r}")
        sets[task.name] = split_examples(corpora[task.name], task.train_size, task.eval_size,
                                         seed=config.split_seed)
    cache = RunCache(Path(output_dir) / "runs")
    jobs = [_Job(m, s, resolve_lr(config.lr, m, causal=False), config)
            for m in config.methods for s in range(config.seeds)]
    records: dict[tuple[str, int], dict[str, Any]] = {}
    todo = []
    for job in jobs:
        record = cache.load(_key(job))
        if record is None:
            todo.append(job)
        else:
            records[job.method, job.seed] = record
    log(f"multitask: {len(jobs)} sequences, {len(jobs) - len(todo)} cached, {len(todo)} to train")
    start = time.perf_counter()

    def done(job: _Job, record: dict[str, Any]) -> None:
        cache.store(_key(job), record)
        records[job.method, job.seed] = record
        accs = ", ".join(f"{k} {v.count('1') / len(v):.3f}" for k, v in record["final"].items())
        log(f"  {job.method} seed {job.seed}: {accs} ({record['seconds']:.0f} s)")

    execute(todo, _work, _make_state, (config.model, config.max_length, sets),
            processes=config.jobs, on_done=done, threads=config.threads)
    summary = _summarise(config, jobs, records)
    summary["wall_seconds"] = time.perf_counter() - start
    return summary


def _summarise(config: MultitaskConfig, jobs: list[_Job], records: dict) -> dict[str, Any]:
    names = [task.name for task in config.tasks]
    rows = []
    for method in config.methods:
        runs = [records[method, s] for s in range(config.seeds)]
        correct = {n: np.array([[int(c) for c in r["final"][n]] for r in runs]) for n in names}
        own = {n: np.array([[int(c) for c in r["own"][n]] for r in runs]) for n in names}
        per_seed = [float(np.mean([correct[n][s].mean() for n in names]))
                    for s in range(config.seeds)]
        row: dict[str, Any] = {
            "method": method,
            "description": METHODS[method].description,
            "lr": next(job.lr for job in jobs if job.method == method),
            "trainable_params": runs[0]["trainable_params"],
            "tasks": {n: float(correct[n].mean()) for n in names},
            "sd": {n: mean_sd(correct[n].mean(axis=1))[1] for n in names},
            "intervals": {n: list(bootstrap_interval(correct[n], resamples=config.resamples)[1:])
                          for n in names},
            "after_own_training": {n: float(own[n].mean()) for n in names},
            "average": float(np.mean(per_seed)),
            "average_sd": mean_sd(per_seed)[1],
            "per_seed": per_seed,
            "seconds_per_sequence": float(np.mean([r["seconds"] for r in runs])),
        }
        rows.append(row)
    settings = dataclasses.asdict(config)
    settings["corpus_labels"] = {n: list(CORPORA[n].labels) for n in names}
    return {"settings": settings, "tasks": names, "methods": rows}
