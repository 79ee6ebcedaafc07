"""Tune the demo's defaults on a development set, never on the held-out set.

The demo (``loretta-train``) splits the 4,000 Pang & Lee sentences with seed 0 into 2,000
training and 1,000 held-out sentences; 1,000 sentences are left over. This script trains on the
same 2,000 training sentences and evaluates on those 1,000 left-over sentences (the
*development* set), for several training seeds (initialisation, dropout and batch order), so
that a default is chosen on its mean over seeds and not on one lucky run of the held-out set.

Each candidate is ``METHOD[:FIELD=VALUE,...]`` with fields of
:class:`loretta.demo.experiment.ExperimentConfig` (``lr``, ``max_steps``, ...) or of
:class:`loretta.demo.methods.Settings` (``bottleneck``, ``tensor_rank``, ``train_norms``,
``tt_pooler``, ``non_linearity``, ...). One table row per candidate: trainable parameters, mean
and standard deviation of the development accuracy, and the accuracy of every seed. (The study,
``loretta-train --study``, chooses learning rates the same way for every method at once.)

Usage::

    python benchmarks/tune_demo.py lora loretta_adp:lr=1e-2 \\
        loretta_adp:bottleneck=8,tensor_rank=8 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys

import torch


def parse_candidate(text: str) -> tuple[str, dict[str, object]]:
    """Split ``METHOD:FIELD=VALUE,...`` into the method and typed overrides (config and
    settings fields together)."""
    from loretta.demo.experiment import ExperimentConfig
    from loretta.demo.methods import Settings

    method, _, rest = text.partition(":")
    types = {f.name: f.type for cls in (ExperimentConfig, Settings) for f in dataclasses.fields(cls)
             if f.name != "settings"}
    overrides: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        name, _, value = item.partition("=")
        if name not in types:
            raise SystemExit(f"unknown field {name!r} in candidate {text!r}; known: {sorted(types)}")
        kind = str(types[name])
        try:
            if "bool" in kind:
                overrides[name] = {"true": True, "false": False}[value.lower()]
            elif "float" in kind:
                overrides[name] = float(value)
            elif "str" in kind:
                overrides[name] = value
            else:
                overrides[name] = int(value)
        except (KeyError, ValueError):
            expected = "true or false" if "bool" in kind else f"a {kind} value"
            raise SystemExit(f"field {name!r} in candidate {text!r}: expected {expected}, "
                             f"received {value!r}") from None
    return method, overrides


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidates", nargs="+", help="METHOD[:FIELD=VALUE,...]")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from loretta.demo.data import development_set, load_corpus, split_examples
    from loretta.demo.experiment import ExperimentConfig, Workbench, run_experiment
    from loretta.demo.methods import Settings
    from transformers.utils import logging

    logging.set_verbosity_error()
    pairs = load_corpus("polarity")
    train, _ = split_examples(pairs, 2000, 1000, seed=0)
    development = development_set(pairs, 2000, 1000, 1000, seed=0)  # not the held-out set
    bench = Workbench(args.model, 64, progress=False)
    config_fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    print(f"tune_demo: {len(train)} training / {len(development)} development sentences, "
          f"seeds {args.seeds}, {args.threads} thread(s)", flush=True)
    rows = []
    for text in args.candidates:
        method, overrides = parse_candidate(text)
        settings = Settings(**{k: v for k, v in overrides.items() if k not in config_fields})
        accuracies, params = [], 0
        for seed in args.seeds:
            config = ExperimentConfig(
                model=args.model, methods=(method,), seed=seed, settings=settings,
                **{k: v for k, v in overrides.items() if k in config_fields},
            )
            (result,) = run_experiment(config, train, development, bench=bench)
            accuracies.append(result.accuracy)
            params = result.trainable_params
            print(f"  {text} seed {seed}: {result.accuracy:.4f}", flush=True)
        rows.append((text, params, accuracies))
    print(f"\n{'candidate':48} {'params':>8} {'mean':>7} {'sd':>6}  per seed")
    for text, params, accuracies in rows:
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        seeds = " ".join(f"{a:.3f}" for a in accuracies)
        print(f"{text:48} {params:8,} {statistics.mean(accuracies):7.4f} {spread:6.4f}  {seeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
