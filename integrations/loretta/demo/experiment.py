"""One fine-tuning run on a model loaded once, and the default comparison of ``loretta-train``.

A :class:`Workbench` loads the model and tokenizer once per process and tokenises each data set
once; :meth:`Workbench.run` trains one method with one seed and learning rate on a copy of the
model and predicts on named evaluation sets. Every run starts from the same pretrained weights;
the seed draws the new classifier head, the adapter's initialisation, dropout and the batch
order. :func:`run_experiment` is the default comparison: every method of an
:class:`ExperimentConfig` with one seed, evaluated on the held-out set.

Example:
    >>> from loretta.demo.experiment import ExperimentConfig
    >>> ExperimentConfig().methods
    ('loretta_adp', 'loretta_rep', 'lora', 'lora_r2', 'head')
"""

from __future__ import annotations

import copy
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from .engine import CausalTask, ClassifierTask, Encoded, predict, train
from .methods import CAUSAL_METHODS, METHODS, Settings, after_training, build, resolve_lr
from .methods import trainable_params as count_trainable
from .models import load_model, quiet_transformers, resolve_model

__all__ = ["ExperimentConfig", "MethodResult", "RunOptions", "RunResult", "Workbench",
           "check_methods", "run_experiment"]

Pairs = Sequence[tuple[str, int]]
_DEFAULT_SETTINGS = Settings()


@dataclass(frozen=True)
class RunResult:
    """One method trained with one seed and learning rate.

    Attributes:
        method: Method name.
        seed: Training seed.
        lr: Learning rate (0 for ``zero_shot``).
        trainable_params: Parameters trained (after rank rounding, those kept).
        predictions: Predicted labels per evaluation set name, in the set's order.
        losses: Training loss at every step.
        train_seconds: Wall time of training.
        eval_seconds: Wall time of all predictions.
    """

    method: str
    seed: int
    lr: float
    trainable_params: int
    predictions: dict[str, list[int]]
    losses: list[float]
    train_seconds: float
    eval_seconds: float


class Workbench:
    """A pretrained model loaded once, with its task, and tokenised data sets.

    Args:
        model: ``minilm``, ``smollm2`` or a local folder (see
            :func:`~loretta.demo.models.resolve_model`).
        max_length: Tokens kept per text.
        progress: Show progress bars (None: only on a terminal).
    """

    def __init__(self, model: str, max_length: int, progress: bool | None = None) -> None:
        quiet_transformers()
        self.spec = resolve_model(model)
        self.loaded = load_model(self.spec)
        task = CausalTask if self.spec.causal else ClassifierTask
        self.task = task(self.loaded.tokenizer, max_length)
        self.progress = progress

    def encode(self, pairs: Pairs) -> Encoded:
        """Tokenise ``(text, label)`` pairs once."""
        return self.task.encode(pairs)

    def _bar(self, label: str) -> Callable | None:
        show = sys.stderr.isatty() if self.progress is None else self.progress
        if not show:
            return None
        from tqdm.auto import tqdm

        return lambda items: tqdm(items, desc=label, leave=False)

    def fresh_model(self, method: str, settings: Settings, seed: int) -> torch.nn.Module:
        """A copy of the pretrained model, seeded, set up for ``method``."""
        random.seed(seed)
        torch.manual_seed(seed)
        model = copy.deepcopy(self.loaded.model)
        self.loaded.reinitialise(model)
        return build(method, model, settings, causal=self.spec.causal)

    def run(
        self,
        method: str,
        train_set: Encoded,
        evaluate: Mapping[str, Encoded],
        *,
        lr: float,
        seed: int,
        settings: Settings = _DEFAULT_SETTINGS,
        batch_size: int = 16,
        epochs: int = 1,
        max_steps: int | None = None,
    ) -> RunResult:
        """Train ``method`` from the pretrained model and predict on every set of ``evaluate``.

        Example:
            >>> bench = Workbench("minilm", 64)  # doctest: +SKIP
            >>> data = bench.encode([("fine", 1), ("awful", 0)])  # doctest: +SKIP
            >>> bench.run("head", data, {"dev": data}, lr=1e-3, seed=0).steps  # doctest: +SKIP
        """
        model = self.fresh_model(method, settings, seed)
        start = time.perf_counter()
        losses = [] if METHODS[method].kind == "zero_shot" else train(
            model, self.task, train_set, lr=lr, batch_size=batch_size, seed=seed, epochs=epochs,
            max_steps=max_steps, progress=self._bar(f"train {method}"))
        after_training(method, model, settings)
        trained = time.perf_counter()
        predictions = {name: predict(model, self.task, data, batch_size=4 * batch_size,
                                     progress=self._bar(f"{name} {method}"))
                       for name, data in evaluate.items()}
        return RunResult(method, seed, lr, count_trainable(model), predictions, losses,
                         trained - start, time.perf_counter() - trained)


@dataclass(frozen=True)
class RunOptions:
    """Options the study and the multitask experiment share (their configs extend this).

    Attributes:
        model: Model name or folder (a sequence classifier).
        seeds: Training seeds per method (0 .. seeds-1).
        split_seed: Seed of the data split, fixed for all runs.
        batch_size: Training batch size.
        max_length: Tokens kept per text.
        max_steps: Cap on steps per training (None: no cap).
        settings: Method settings (each method's own overrides win).
        jobs: Parallel worker processes.
        threads: Torch threads per process.
        resamples: Bootstrap resamples of the intervals.
    """

    model: str = "minilm"
    seeds: int = 5
    split_seed: int = 0
    batch_size: int = 16
    max_length: int = 64
    max_steps: int | None = None
    settings: Settings = field(default_factory=Settings)
    jobs: int = 1
    threads: int = 1
    resamples: int = 2000


@dataclass(frozen=True)
class ExperimentConfig:
    """Settings of the default comparison (the CLI's options).

    Attributes:
        model: Model name or folder, see :func:`~loretta.demo.models.resolve_model`.
        methods: Methods to run, in order (keys of :data:`~loretta.demo.methods.METHODS`).
        train_size: Training sentences.
        eval_size: Held-out sentences.
        epochs: Passes over the training set.
        max_steps: Cap on optimizer steps per method (None: no cap).
        batch_size: Training batch size (evaluation uses four times this).
        max_length: Tokens kept per sentence.
        lr: One learning rate for every method, ``{method: rate}`` (for example the rates a
            study chose), or None for the per-method defaults.
        seed: Seed of the split, initialisations, dropout and batch order.
        settings: Method settings (bottleneck, TT rank, LoRA r, ...).
        progress: Show progress bars (None: only on a terminal).
    """

    model: str = "minilm"
    methods: tuple[str, ...] = ("loretta_adp", "loretta_rep", "lora", "lora_r2", "head")
    train_size: int = 2000
    eval_size: int = 1000
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 16
    max_length: int = 64
    lr: float | Mapping[str, float] | None = None
    seed: int = 0
    settings: Settings = field(default_factory=Settings)
    progress: bool | None = None


@dataclass
class MethodResult:
    """What one method reached in the default comparison.

    Attributes:
        method: Method name.
        trainable_params: Parameters the optimizer updated (kept, after rank rounding).
        accuracy: Held-out accuracy.
        train_seconds: Wall time of training.
        eval_seconds: Wall time of the held-out evaluation.
        steps: Optimizer steps.
        lr: Learning rate used (0 for ``zero_shot``).
        losses: Training loss at every step.
    """

    method: str
    trainable_params: int
    accuracy: float
    train_seconds: float
    eval_seconds: float
    steps: int
    lr: float
    losses: list[float] = field(default_factory=list)

    @property
    def seconds_per_step(self) -> float:
        """Mean training seconds per step (0 when there were no steps)."""
        return self.train_seconds / self.steps if self.steps else 0.0


def check_methods(methods: Sequence[str], causal: bool) -> None:
    """Raise ValueError naming the first method not available for this kind of model."""
    allowed = CAUSAL_METHODS if causal else tuple(m for m in METHODS if m != "zero_shot")
    for method in methods:
        if method not in allowed:
            kind = "a causal LM" if causal else "a sequence classifier"
            raise ValueError(f"--methods for {kind} must be among {list(allowed)} or 'all', "
                             f"received {method!r}")


def run_experiment(
    config: ExperimentConfig,
    train_set: Pairs,
    held_out: Pairs,
    *,
    on_result: Callable[[MethodResult], None] | None = None,
    bench: Workbench | None = None,
) -> list[MethodResult]:
    """Train and evaluate every method of ``config`` on the given examples.

    Args:
        config: The run's settings.
        train_set: Training ``(sentence, label)`` pairs.
        held_out: Held-out pairs for the accuracy.
        on_result: Called with each result as soon as it is ready.
        bench: A loaded :class:`Workbench` for ``config.model`` (default: load one).

    Returns:
        One result per method, in ``config.methods`` order.

    Raises:
        ValueError: A method is unknown for this kind of model.

    Example:
        >>> config = ExperimentConfig(methods=("head",), max_steps=2)  # doctest: +SKIP
        >>> run_experiment(config, train, held_out)[0].steps  # doctest: +SKIP
        2
    """
    bench = bench or Workbench(config.model, config.max_length, config.progress)
    check_methods(config.methods, bench.spec.causal)
    train_data, held_data = bench.encode(train_set), bench.encode(held_out)
    results = []
    for method in config.methods:
        causal = bench.spec.causal
        lr = 0.0 if method == "zero_shot" else resolve_lr(config.lr, method, causal=causal)
        run = bench.run(method, train_data, {"held_out": held_data}, lr=lr, seed=config.seed,
                        settings=config.settings, batch_size=config.batch_size,
                        epochs=config.epochs, max_steps=config.max_steps)
        predicted = run.predictions["held_out"]
        correct = sum(p == y for p, y in zip(predicted, held_data.labels))
        result = MethodResult(method, run.trainable_params, correct / len(held_data),
                              run.train_seconds, run.eval_seconds, len(run.losses), lr, run.losses)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
