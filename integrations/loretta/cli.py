"""``loretta-train`` (also ``python -m loretta``): fine-tune a real model on real data and compare.

The default run fine-tunes all-MiniLM-L6-v2 on 2,000 sentences of the Pang & Lee polarity set
with LoRETTA_adp, LoRETTA_rep, PEFT LoRA (r=8, query/value) and the classifier head alone, then
prints a table of held-out accuracy (1,000 sentences), trainable parameters and seconds, and
writes ``results.json``, ``results.txt`` and two PNG plots to ``--output-dir``.

Example:
    >>> from loretta.cli import build_parser
    >>> build_parser().parse_args(["--methods", "lora,head"]).methods
    'lora,head'
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ttnet_nn.adapter import ACTIVATIONS

if TYPE_CHECKING:
    from loretta.experiment import ExperimentConfig

__all__ = ["build_parser", "config_from_args", "main"]

_CAUSAL_DEFAULTS = {"methods": "zero_shot,loretta_adp", "train_size": 960, "eval_size": 500}
_CLASSIFIER_DEFAULTS = {"methods": "loretta_adp,loretta_rep,lora,head", "train_size": 2000,
                        "eval_size": 1000}


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser.

    Returns:
        The parser; options left out take model-dependent defaults in :func:`config_from_args`.

    Example:
        >>> build_parser().parse_args([]).model
        'minilm'
    """
    parser = argparse.ArgumentParser(
        prog="loretta-train",
        description="Fine-tune a pretrained model on the Pang & Lee sentence-polarity set with "
        "LoRETTA_adp, LoRETTA_rep, PEFT LoRA, head-only and full fine-tuning, and compare.",
    )
    add = parser.add_argument
    add("--model", default="minilm",
        help="'minilm' (all-MiniLM-L6-v2, a sequence classifier), 'smollm2' "
        "(SmolLM2-135M-Instruct, scored by next-token ' positive'/' negative') or a local folder")
    add("--methods", default=None,
        help="comma-separated among loretta_adp, loretta_rep, lora, head, full (classifier) or "
        "zero_shot, loretta_adp, loretta_rep, lora, full (causal LM), or 'all'; default "
        f"{_CLASSIFIER_DEFAULTS['methods']} (classifier), {_CAUSAL_DEFAULTS['methods']} (causal)")
    add("--full", action="store_true", help="also run full fine-tuning")
    add("--train-size", type=int, default=None,
        help="training sentences (default 2000; 960 for a causal LM)")
    add("--eval-size", type=int, default=None,
        help="held-out sentences (default 1000; 500 for a causal LM)")
    add("--epochs", type=int, default=1, help="passes over the training set (default 1)")
    add("--max-steps", type=int, default=None, help="cap on optimizer steps per method")
    add("--batch-size", type=int, default=16, help="training batch size (default 16)")
    add("--max-length", type=int, default=64, help="tokens kept per sentence (default 64)")
    add("--lr", type=float, default=None,
        help="one learning rate for all methods (default per method, classifier / causal LM: "
        "loretta_adp 1e-2 / 2e-3, loretta_rep 5e-3 / 2e-3, lora 4e-3 / 1e-3, head 2e-3, "
        "full 5e-5 / 1e-5)")
    add("--seed", type=int, default=0, help="seed of split, initialisation and order (default 0)")
    add("--threads", type=int, default=None,
        help="torch CPU threads (default $TTNET_NUM_THREADS, else 1)")
    add("--output-dir", type=Path, default=None,
        help="where results.json, results.txt and the PNGs go (default runs/loretta-<model>)")
    add("--data-dir", type=Path, default=None,
        help="corpus cache folder (default $XDG_CACHE_HOME/ttnet or ~/.cache/ttnet)")
    add("--bottleneck", type=int, default=None,
        help="LoRETTA_adp bottleneck size (default 16 for a classifier, to stay within a third "
        "of LoRA's parameters; 64, the paper's, for a causal LM)")
    add("--non-linearity", default=None, choices=sorted(ACTIVATIONS),
        help="LoRETTA_adp activation between down and up projection (default gelu for a "
        "classifier, chosen on a development set; relu, the paper's, for a causal LM)")
    add("--tensor-rank", type=int, default=5, help="TT rank of both LoRETTA methods (default 5)")
    add("--lora-r", type=int, default=8, help="rank of LoRA and LoRETTA_rep (default 8)")
    add("--train-norms", action=argparse.BooleanOptionalAction, default=False,
        help="also train the layer norms in the LoRETTA methods (default off)")
    add("--tt-pooler", action=argparse.BooleanOptionalAction, default=True,
        help="LoRETTA on a classifier: replace its pooler by a trainable TT layer, as in the "
        "paper (default on)")
    return parser


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """Turn parsed options into an :class:`~loretta.experiment.ExperimentConfig`.

    Args:
        args: From :func:`build_parser`.

    Returns:
        The config, with model-dependent defaults filled in.

    Raises:
        ValueError: A size or count is below 1.

    Example:
        >>> config_from_args(build_parser().parse_args(["--full"])).methods[-1]
        'full'
    """
    from loretta.experiment import CAUSAL_METHODS, CLASSIFIER_METHODS, ExperimentConfig

    causal = args.model == "smollm2" or (args.model != "minilm" and _is_causal(args.model))
    defaults = _CAUSAL_DEFAULTS if causal else _CLASSIFIER_DEFAULTS
    text = args.methods or defaults["methods"]
    if text == "all":
        methods = list(CAUSAL_METHODS if causal else CLASSIFIER_METHODS)
    else:
        methods = [name.strip() for name in text.split(",") if name.strip()]
    if args.full and "full" not in methods:
        methods.append("full")
    allowed = CAUSAL_METHODS if causal else CLASSIFIER_METHODS
    for method in methods:
        if method not in allowed:
            raise ValueError(
                f"--methods must be among {list(allowed)} or 'all', received {method!r}"
            )
    for name in ("epochs", "batch_size", "max_length", "bottleneck", "tensor_rank", "lora_r"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            option = name.replace("_", "-")
            raise ValueError(f"--{option} must be >= 1, received {getattr(args, name)}")
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1, received {args.max_steps}")
    return ExperimentConfig(
        model=args.model,
        methods=tuple(methods),
        train_size=args.train_size or defaults["train_size"],
        eval_size=args.eval_size or defaults["eval_size"],
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        max_length=args.max_length,
        lr=args.lr,
        seed=args.seed,
        bottleneck=args.bottleneck,
        non_linearity=args.non_linearity,
        tensor_rank=args.tensor_rank,
        train_norms=args.train_norms,
        tt_pooler=args.tt_pooler,
        lora_r=args.lora_r,
    )


def _is_causal(model: str) -> bool:
    from loretta.experiment import resolve_model

    return resolve_model(model).causal


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    if not sys.stderr.isatty():
        logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the exit status (0 success, 2 bad option or data unavailable).

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status.

    Example:
        >>> main(["--train-size", "0"])  # doctest: +SKIP
        2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    threads = args.threads or int(os.environ.get("TTNET_NUM_THREADS", "1"))
    if threads < 1:
        parser.error(f"--threads must be >= 1, received {threads}")
    import torch

    torch.set_num_threads(threads)
    from loretta.data import DataFetchError, fetch_polarity, load_polarity, split_examples
    from loretta.experiment import run_experiment
    from loretta.report import format_table, write_outputs

    try:
        config = config_from_args(args)
        pairs = load_polarity(fetch_polarity(args.data_dir))
        train, held_out = split_examples(
            pairs, config.train_size, config.eval_size, seed=config.seed
        )
    except (ValueError, DataFetchError) as exc:
        print(f"loretta-train: error: {exc}", file=sys.stderr)
        return 2
    _quiet_transformers()
    output_dir = args.output_dir or Path("runs") / f"loretta-{Path(config.model).name}"
    settings = {**asdict(config), "threads": threads, "output_dir": str(output_dir)}
    print(
        f"model {config.model}: {len(train)} training / {len(held_out)} held-out sentences, "
        f"methods {', '.join(config.methods)}, {threads} thread(s)",
        flush=True,
    )
    results = run_experiment(
        config, train, held_out,
        on_result=lambda row: print(
            f"  {row.method}: accuracy {row.accuracy:.4f}, {row.trainable_params:,} trainable, "
            f"{row.train_seconds + row.eval_seconds:.1f} s",
            flush=True,
        ),
    )
    paths = write_outputs(output_dir, results, settings)
    print(format_table(results))
    print(f"wrote {', '.join(str(path) for path in paths.values())}")
    return 0
