"""The training loop every demo experiment shares: tokenise once, batch by length, train, predict.

Texts are tokenised once per process (:meth:`ClassifierTask.encode` keeps token ids without
padding); a batch is padded only to its own longest row. Training batches are *length-bucketed*:
a seeded permutation is cut into chunks of 50 batches, each chunk is sorted by length and cut
into batches, and the batches are shuffled (the scheme of transformers' ``group_by_length``),
so the order is random but little compute goes to padding. Evaluation sorts by length.

Example:
    >>> import torch
    >>> from loretta.demo.engine import length_batches
    >>> length_batches([5, 1, 4, 2], 2)  # evaluation: sorted by length
    [[1, 3], [2, 0]]
    >>> sorted(sum(length_batches([5, 1, 4, 2], 2, generator=torch.Generator()), []))
    [0, 1, 2, 3]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "LABEL_WORDS",
    "PROMPT",
    "CausalTask",
    "ClassifierTask",
    "Encoded",
    "length_batches",
    "predict",
    "train",
]

PROMPT = "Movie review: {sentence}\nIs this review positive or negative? Answer:"
LABEL_WORDS = (" negative", " positive")
_CHUNK_BATCHES = 50

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Encoded:
    """Examples tokenised once: token ids (no padding) and labels, in the given order."""

    ids: list[list[int]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)


class ClassifierTask:
    """Sequence classification with the model's own head (right-padded batches)."""

    left_padded = False

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def encode(self, pairs: Sequence[tuple[str, int]]) -> Encoded:
        """Tokenise ``(text, label)`` pairs (truncated to ``max_length`` tokens)."""
        ids = self.tokenizer([text for text, _ in pairs], truncation=True,
                             max_length=self.max_length)["input_ids"]
        return Encoded(list(ids), [label for _, label in pairs])

    def collate(self, data: Encoded, index: Sequence[int]) -> Batch:
        """Pad the rows ``index`` of ``data`` into one batch (on the left for a causal LM,
        whose answer is read at the last position, which then also gets ``position_ids``)."""
        rows = [data.ids[i] for i in index]
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            place = slice(width - len(row), width) if self.left_padded else slice(0, len(row))
            input_ids[i, place] = torch.tensor(row)
            mask[i, place] = 1
        batch = {"input_ids": input_ids, "attention_mask": mask,
                 "labels": torch.tensor([data.labels[i] for i in index])}
        if self.left_padded:
            batch["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        return batch

    def scores(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Two-label logits."""
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


class CausalTask(ClassifierTask):
    """Next-token scoring of :data:`LABEL_WORDS` after :data:`PROMPT` (left-padded batches)."""

    left_padded = True

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        super().__init__(tokenizer, max_length)
        head, tail = PROMPT.split("{sentence}")
        self.head = tokenizer(head, add_special_tokens=False).input_ids
        self.tail = tokenizer(tail, add_special_tokens=False).input_ids
        self.label_ids = [
            tokenizer(word, add_special_tokens=False).input_ids[0] for word in LABEL_WORDS
        ]

    def encode(self, pairs: Sequence[tuple[str, int]]) -> Encoded:
        """Tokenise each text (``max_length`` tokens at most) inside the prompt."""
        bodies = self.tokenizer([text for text, _ in pairs], add_special_tokens=False)["input_ids"]
        ids = [self.head + body[: self.max_length] + self.tail for body in bodies]
        return Encoded(ids, [label for _, label in pairs])

    def scores(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Next-token logits of the two label words."""
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    position_ids=batch["position_ids"], logits_to_keep=1)
        return out.logits[:, -1, self.label_ids]


def length_batches(
    lengths: Sequence[int], batch_size: int, *, generator: torch.Generator | None = None
) -> list[list[int]]:
    """Group example indices into batches of similar length.

    Args:
        lengths: Token count of every example.
        batch_size: Examples per batch (the last batch of a chunk may be smaller).
        generator: For training: the seeded source of the order (see the module docstring).
            None: all examples sorted by length, for evaluation.

    Returns:
        Batches of indices; every index appears exactly once.
    """
    if generator is None:
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    order = torch.randperm(len(lengths), generator=generator).tolist()
    chunk = _CHUNK_BATCHES * batch_size
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def train(
    model: nn.Module,
    task: ClassifierTask,
    data: Encoded,
    *,
    lr: float,
    batch_size: int,
    seed: int,
    epochs: int = 1,
    max_steps: int | None = None,
    progress: Any = None,
) -> list[float]:
    """Train the parameters of ``model`` that require grad; return the loss of every step.

    AdamW (no weight decay), 6 % linear warm-up then linear decay, gradient norm clipped at 1.

    Args:
        model: The model (its trainable parameters are updated in place).
        task: Encodes batches and scores them.
        data: Training examples.
        lr: Peak learning rate.
        batch_size: Examples per step.
        seed: Seeds the batch order (:func:`length_batches`).
        epochs: Passes over ``data``, each in a fresh order.
        max_steps: Cap on the number of steps.
        progress: A callable wrapping the batch list (for example ``tqdm``), or None.

    Returns:
        The training losses.
    """
    from transformers import get_linear_schedule_with_warmup

    generator = torch.Generator().manual_seed(seed)
    lengths = [len(row) for row in data.ids]
    batches = [b for _ in range(epochs) for b in length_batches(lengths, batch_size,
                                                                   generator=generator)]
    batches = batches[:max_steps]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(
        optimizer, max(1, math.ceil(0.06 * len(batches))), len(batches)
    )
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    model.train()
    for index in progress(batches) if progress else batches:
        batch = task.collate(data, index)
        loss = loss_fn(task.scores(model, batch), batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    return losses


def predict(
    model: nn.Module, task: ClassifierTask, data: Encoded, *, batch_size: int = 64,
    progress: Any = None,
) -> list[int]:
    """Return the predicted label of every example of ``data``, in ``data``'s order."""
    model.eval()
    predicted = [0] * len(data)
    batches = length_batches([len(row) for row in data.ids], batch_size)
    with torch.inference_mode():
        for index in progress(batches) if progress else batches:
            best = task.scores(model, task.collate(data, index)).argmax(-1).tolist()
            for i, label in zip(index, best):
                predicted[i] = label
    return predicted
