"""``loretta-train`` (also ``python -m loretta``): fine-tune a real model on real data and compare.

Three experiments:

- ``compare`` (default, ``make demo``): all-MiniLM-L6-v2 on 2,000 Pang & Lee sentences with
  LoRETTA_adp, LoRETTA_rep, PEFT LoRA r 8, LoRA r 2 (about LoRETTA_adp's parameter count) and
  the head alone, one seed; a table of held-out accuracy (1,000 sentences), trainable parameters
  and seconds, ``results.json``, ``results.txt`` and two PNG plots.
- ``study`` (``--study``): every method of :data:`~loretta.demo.methods.STUDY_METHODS` over
  several seeds, learning rates chosen on the development sentences (:mod:`loretta.demo.study`).
- ``multitask``: three tasks in sequence, one adapter (:mod:`loretta.demo.multitask`).

Before any training the model folder is checked, the output folder is created and checked
writable, and the data is fetched; each finished method (or run) is written at once, atomically,
so Ctrl-C (exit status 130) keeps everything that finished.

Example:
    >>> from loretta.demo.cli import build_parser
    >>> build_parser().parse_args(["--methods", "lora,head"]).methods
    ('lora', 'head')
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ttnet_nn.adapter import ACTIVATIONS

from .methods import CAUSAL_METHODS, METHODS, STUDY_METHODS, Settings

__all__ = ["build_parser", "main", "prepare_output_dir"]

_DEFAULT_METHODS = {
    ("compare", False): ("loretta_adp", "loretta_rep", "lora", "lora_r2", "head"),
    ("compare", True): ("zero_shot", "loretta_adp"),
    ("study", False): STUDY_METHODS,
    ("multitask", False): ("loretta_adp", "loretta_rep", "lora", "full"),
}


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}") from None
        if not value > 0 or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, received {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, received {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, received {text!r}")
    return value


def _methods(text: str) -> tuple[str, ...]:
    if text == "all":
        return ("all",)
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(
            f"expected at least one method name (comma-separated), received {text!r}")
    for name in names:
        if name not in METHODS:
            raise argparse.ArgumentTypeError(
                f"unknown method {name!r}; known: {', '.join(METHODS)} or 'all'")
    return names


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser (sizes, rates and counts must be > 0).

    Example:
        >>> build_parser().parse_args([]).model
        'minilm'
    """
    parser = argparse.ArgumentParser(
        prog="loretta-train",
        description="Fine-tune a pretrained model on real labelled data with LoRETTA_adp, "
        "LoRETTA_rep, PEFT's methods, head-only and full fine-tuning, and compare.")
    add = parser.add_argument
    pos_int, pos_float = _positive(int), _positive(float)
    add("--experiment", choices=("compare", "study", "multitask"), default="compare",
        help="compare (default): one seed; study: many methods and seeds, rates chosen on the "
        "development set; multitask: three tasks in sequence")
    add("--study", dest="experiment", action="store_const", const="study",
        help="same as --experiment study")
    add("--model", default="minilm",
        help="'minilm' (all-MiniLM-L6-v2, a sequence classifier), 'smollm2' "
        "(SmolLM2-135M-Instruct, scored by next-token ' positive'/' negative') or a local folder")
    add("--methods", type=_methods, default=None,
        help="comma-separated method names (see loretta.demo.methods.METHODS) or 'all'; default "
        "per experiment")
    add("--full", action="store_true", help="also run full fine-tuning")
    add("--train-size", type=pos_int, default=None,
        help="training sentences (default 2000; 960 for a causal LM; multitask: a cap per task)")
    add("--eval-size", type=pos_int, default=None,
        help="held-out sentences (default 1000; 500 for a causal LM; multitask: a cap per task)")
    add("--dev-size", type=pos_int, default=1000,
        help="study: development sentences that choose the learning rates (default 1000)")
    add("--epochs", type=pos_int, default=1, help="passes over the training set (default 1)")
    add("--max-steps", type=pos_int, default=None, help="cap on optimizer steps per run")
    add("--batch-size", type=pos_int, default=16, help="training batch size (default 16)")
    add("--max-length", type=pos_int, default=64, help="tokens kept per text (default 64)")
    add("--lr", type=pos_float, default=None,
        help="one learning rate for all methods (default per method; the study chooses its own)")
    add("--lr-from", type=Path, default=None, metavar="STUDY_JSON",
        help="compare / multitask: each method's learning rate as a study chose it on the "
        "development set (a study.json written by --study)")
    add("--seed", type=_seed, default=0,
        help="compare: seed of split, initialisation and order (default 0)")
    add("--seeds", type=pos_int, default=None,
        help="study / multitask: training seeds per method (default 5 / 3)")
    add("--select-seeds", type=pos_int, default=2,
        help="study: seeds per learning-rate candidate on the development set (default 2)")
    add("--jobs", type=pos_int, default=1,
        help="study / multitask: runs in parallel processes (default 1)")
    add("--threads", type=pos_int, default=None,
        help="torch CPU threads per process (default $TTNET_NUM_THREADS, else 1)")
    add("--output-dir", type=Path, default=None,
        help="where the results go (default runs/<experiment>-<model>)")
    add("--data-dir", type=Path, default=None,
        help="corpus cache folder (default $XDG_CACHE_HOME/ttnet or ~/.cache/ttnet)")
    add("--bottleneck", type=pos_int, default=None,
        help="LoRETTA_adp bottleneck (default 16 for a classifier, 64 for a causal LM)")
    add("--non-linearity", default=None, choices=sorted(ACTIVATIONS),
        help="LoRETTA_adp activation (default gelu for a classifier, relu for a causal LM)")
    add("--tensor-rank", type=pos_int, default=5, help="TT rank of both LoRETTA methods")
    add("--lora-r", type=pos_int, default=8, help="rank of LoRA, LoKr and LoRETTA_rep")
    add("--train-norms", action=argparse.BooleanOptionalAction, default=False,
        help="also train the layer norms in the LoRETTA methods (default off)")
    add("--tt-pooler", action=argparse.BooleanOptionalAction, default=True,
        help="LoRETTA on a classifier: replace its pooler by a trainable TT layer (default on)")
    return parser


def prepare_output_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and check that a file can be written in it.

    Raises:
        ValueError: ``path`` is a file, cannot be created, or is not writable.

    Example:
        >>> import tempfile, pathlib
        >>> prepare_output_dir(pathlib.Path(tempfile.mkdtemp()) / "a" / "b").is_dir()
        True
    """
    if path.exists() and not path.is_dir():
        raise ValueError(f"--output-dir must be a folder, received the file {str(path)!r}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ValueError(f"--output-dir {str(path)!r} is not a writable folder "
                         f"({exc.strerror or exc})") from None
    return path


def _given(value: Any, default: Any) -> Any:
    """``value``, or ``default`` when the option was not given (never for a falsy value)."""
    return default if value is None else value


def _resolve_methods(args: argparse.Namespace, causal: bool) -> tuple[str, ...]:
    methods = _given(args.methods, _DEFAULT_METHODS.get((args.experiment, causal), ()))
    if methods == ("all",):
        methods = CAUSAL_METHODS if causal else tuple(m for m in METHODS if m != "zero_shot")
    if args.full and "full" not in methods:
        methods = (*methods, "full")
    return tuple(methods)


def _study_rates(path: Path, methods: Sequence[str]) -> dict[str, float]:
    """``{method: learning rate}`` from a ``study.json``, for every method in ``methods``."""
    import json

    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["methods"]
        rates = {row["method"]: float(row["lr"]) for row in rows}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"--lr-from {str(path)!r}: expected a study.json written by --study "
                         f"({exc})") from None
    missing = [m for m in methods if m not in rates and m != "zero_shot"]
    if missing:
        raise ValueError(f"--lr-from {str(path)!r} has no learning rate for {missing}")
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``loretta-train``; return the exit status (0 success, 2 bad option or data
    unavailable, 130 interrupted).

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Example:
        >>> main(["--train-size", "0"])  # doctest: +SKIP
        2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    threads = args.threads
    if threads is None:
        text = os.environ.get("TTNET_NUM_THREADS", "1")
        if not text.isdigit() or int(text) < 1:
            parser.error(f"$TTNET_NUM_THREADS must be an integer >= 1, received {text!r}")
        threads = int(text)
    output_dir = _given(args.output_dir, Path("runs") / f"{args.experiment}-{Path(args.model).name}")
    try:
        return _run(args, threads, output_dir)
    except KeyboardInterrupt:
        print(f"\nloretta-train: interrupted; every finished result is kept in {output_dir}",
              file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, threads: int, output_dir: Path) -> int:
    import torch

    from .data import DataFetchError, fetch_corpus, load_corpus
    from .experiment import check_methods
    from .models import resolve_model

    torch.set_num_threads(threads)
    try:
        spec = resolve_model(args.model)
        if spec.causal and args.experiment != "compare":
            raise ValueError(f"--experiment {args.experiment} needs a sequence classifier; "
                             f"--model {args.model!r} is a causal LM")
        if args.experiment == "study" and (args.lr is not None or args.lr_from is not None):
            raise ValueError("--lr and --lr-from cannot be combined with --study: the study "
                             "chooses every method's learning rate on the development set")
        if args.lr is not None and args.lr_from is not None:
            raise ValueError("--lr and --lr-from exclude each other")
        methods = _resolve_methods(args, spec.causal)
        if args.experiment == "compare":
            check_methods(methods, spec.causal)
        if args.lr_from is not None:
            args.lr = _study_rates(args.lr_from, methods)
        prepare_output_dir(output_dir)
        names = ("polarity", "uncertainty", "spam") if args.experiment == "multitask" else (
            "polarity",)
        corpora = {name: load_corpus(name, fetch_corpus(name, args.data_dir)) for name in names}
    except (ValueError, DataFetchError) as exc:
        print(f"loretta-train: error: {exc}", file=sys.stderr)
        return 2
    settings = Settings(bottleneck=args.bottleneck, non_linearity=args.non_linearity,
                        tensor_rank=args.tensor_rank, train_norms=args.train_norms,
                        tt_pooler=args.tt_pooler, lora_r=args.lora_r)
    run = {"compare": _compare, "study": _study, "multitask": _multitask}[args.experiment]
    try:
        return run(args, methods, settings, corpora, output_dir, threads)
    except ValueError as exc:
        print(f"loretta-train: error: {exc}", file=sys.stderr)
        return 2


def _compare(args: argparse.Namespace, methods: tuple[str, ...], settings: Settings,
             corpora: dict, output_dir: Path, threads: int) -> int:
    from .data import split_examples
    from .experiment import ExperimentConfig, MethodResult, Workbench, run_experiment
    from .report import format_table, write_outputs

    bench = Workbench(args.model, args.max_length)
    causal = bench.spec.causal
    config = ExperimentConfig(
        model=args.model, methods=methods,
        train_size=_given(args.train_size, 960 if causal else 2000),
        eval_size=_given(args.eval_size, 500 if causal else 1000), epochs=args.epochs,
        max_steps=args.max_steps, batch_size=args.batch_size, max_length=args.max_length,
        lr=args.lr, seed=args.seed, settings=settings)
    train, held_out = split_examples(corpora["polarity"], config.train_size, config.eval_size,
                                     seed=config.seed)
    record = {**asdict(config), "threads": threads, "output_dir": str(output_dir)}
    print(f"model {config.model}: {len(train)} training / {len(held_out)} held-out sentences, "
          f"methods {', '.join(methods)}, {threads} thread(s)", flush=True)
    results: list[MethodResult] = []

    def keep(row: MethodResult) -> None:
        results.append(row)
        write_outputs(output_dir, results, record)
        print(f"  {row.method}: accuracy {row.accuracy:.4f}, {row.trainable_params:,} trainable, "
              f"{row.train_seconds + row.eval_seconds:.1f} s", flush=True)

    run_experiment(config, train, held_out, on_result=keep, bench=bench)
    print(format_table(results))
    print(f"wrote {output_dir}: results.json, results.txt, accuracy_vs_params.png, "
          "loss_curves.png")
    return 0


def _study(args: argparse.Namespace, methods: tuple[str, ...], settings: Settings,
           corpora: dict, output_dir: Path, threads: int) -> int:
    from .study import StudyConfig, run_study
    from .summaries import write_study_outputs

    config = StudyConfig(
        model=args.model, methods=methods, seeds=_given(args.seeds, 5),
        select_seeds=args.select_seeds, train_size=_given(args.train_size, 2000),
        eval_size=_given(args.eval_size, 1000),
        dev_size=args.dev_size, batch_size=args.batch_size, max_length=args.max_length,
        epochs=args.epochs, max_steps=args.max_steps, settings=settings, jobs=args.jobs,
        threads=threads)
    summary = run_study(config, corpora["polarity"], output_dir,
                        log=lambda line: print(line, flush=True))
    return _finish(write_study_outputs(output_dir, summary), summary)


def _multitask(args: argparse.Namespace, methods: tuple[str, ...], settings: Settings,
               corpora: dict, output_dir: Path, threads: int) -> int:
    from .multitask import MultitaskConfig, run_multitask
    from .summaries import write_multitask_outputs

    base = MultitaskConfig()
    tasks = tuple(replace(task, train_size=min(task.train_size, _given(args.train_size, math.inf)),
                          eval_size=min(task.eval_size, _given(args.eval_size, math.inf)))
                  for task in base.tasks)
    config = replace(base, model=args.model, methods=methods, seeds=_given(args.seeds, 3),
                     tasks=tasks,
                     batch_size=args.batch_size, max_length=args.max_length,
                     max_steps=args.max_steps, lr=args.lr, settings=settings, jobs=args.jobs,
                     threads=threads)
    summary = run_multitask(config, corpora, output_dir,
                            log=lambda line: print(line, flush=True))
    return _finish(write_multitask_outputs(output_dir, summary), summary)


def _finish(paths: dict[str, Path], summary: dict[str, Any]) -> int:
    print(paths["table"].read_text(encoding="utf-8"), end="")
    print(f"wrote {', '.join(str(p) for p in paths.values())} (wall "
          f"{summary['wall_seconds']:.0f} s)")
    return 0
