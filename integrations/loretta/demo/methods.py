"""The fine-tuning methods the demo compares, by name, and how each is built on a base model.

A method is a *kind* (``loretta_adp``, ``loretta_rep``, ``lora``, ``vera``, ``lokr``, ``ia3``,
``fourierft``, ``head``, ``full``, ``zero_shot``) plus settings that override the run's
:class:`Settings`: ``loretta_adp_t2`` is LoRETTA_adp at TT rank 2, ``lora_r2`` is LoRA at r 2.
PEFT's methods use the settings their papers give for encoders (VeRA: r 1024 on query/value;
FourierFT: 1,000 frequencies, scaling 150, query/value; IA3: keys, values and the FFN's second
linear layer, as in T-Few; LoKr, whose paper has no encoder setting: PEFT's defaults, r 8, alpha
8, on query/value). ``*_round3`` methods train at TT rank 8 and round every TT factor to rank 3
after training (:meth:`loretta.LorettaModel.round_ranks`); their parameter count is the count
after rounding, what the saved adapter holds.

Example:
    >>> from loretta.demo.methods import METHODS, default_lr
    >>> METHODS["lora_r2"].overrides
    {'lora_r': 2}
    >>> default_lr("lora", causal=False)
    0.004
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = [
    "CAUSAL_METHODS",
    "METHODS",
    "STUDY_METHODS",
    "Method",
    "Settings",
    "after_training",
    "build",
    "default_lr",
    "resolve_lr",
    "trainable_params",
]


@dataclass(frozen=True)
class Settings:
    """Method settings a run can change (the CLI's options; a method's overrides win).

    Attributes:
        bottleneck: LoRETTA_adp bottleneck; None: 16 for a classifier (a third of LoRA r 8's
            parameters), 64 (the paper's) for a causal LM.
        scaling: LoRETTA_adp's factor on the adapter branch.
        non_linearity: LoRETTA_adp's activation; None: ``gelu`` for a classifier (chosen on the
            development set), ``relu`` (the paper's) for a causal LM.
        tensor_rank: TT rank of both LoRETTA methods.
        train_norms: Whether LoRETTA also trains the layer norms.
        tt_pooler: Whether LoRETTA replaces a classifier's pooler by a trainable TT layer.
        lora_r: Rank of LoRA, LoKr and LoRETTA_rep.
        round_rank: Round every TT factor to this rank after training (None: no rounding).
    """

    bottleneck: int | None = None
    scaling: float = 1.0
    non_linearity: str | None = None
    tensor_rank: int = 5
    train_norms: bool = False
    tt_pooler: bool = True
    lora_r: int = 8
    round_rank: int | None = None


@dataclass(frozen=True)
class Method:
    """A named method: its kind, its setting overrides and a one-line description."""

    kind: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def settings(self, base: Settings) -> Settings:
        """``base`` with this method's overrides applied."""
        return dataclasses.replace(base, **self.overrides)


_ROUND = {"tensor_rank": 8, "round_rank": 3}
METHODS: dict[str, Method] = {
    "loretta_adp": Method("loretta_adp", "LoRETTA_adp (bottleneck 16, TT rank 5, GELU, TT pooler)"),
    "loretta_adp_t2": Method("loretta_adp", "LoRETTA_adp, TT rank 2", {"tensor_rank": 2}),
    "loretta_adp_t8": Method("loretta_adp", "LoRETTA_adp, TT rank 8", {"tensor_rank": 8}),
    "loretta_adp_round3": Method("loretta_adp", "LoRETTA_adp, TT rank 8 rounded to 3 after "
                                 "training", _ROUND),
    "loretta_rep": Method("loretta_rep", "LoRETTA_rep (r 8, TT rank 5, TT pooler)"),
    "loretta_rep_t2": Method("loretta_rep", "LoRETTA_rep, TT rank 2", {"tensor_rank": 2}),
    "loretta_rep_t8": Method("loretta_rep", "LoRETTA_rep, TT rank 8", {"tensor_rank": 8}),
    "loretta_rep_round3": Method("loretta_rep", "LoRETTA_rep, TT rank 8 rounded to 3 after "
                                 "training", _ROUND),
    "lora": Method("lora", "PEFT LoRA r 8 on query/value"),
    "lora_r1": Method("lora", "PEFT LoRA r 1", {"lora_r": 1}),
    "lora_r2": Method("lora", "PEFT LoRA r 2", {"lora_r": 2}),
    "lora_r4": Method("lora", "PEFT LoRA r 4", {"lora_r": 4}),
    "vera": Method("vera", "PEFT VeRA r 1024 on query/value"),
    "lokr": Method("lokr", "PEFT LoKr r 8 on query/value"),
    "ia3": Method("ia3", "PEFT IA3 on key/value/FFN output"),
    "fourierft": Method("fourierft", "PEFT FourierFT, 1,000 frequencies on query/value"),
    "head": Method("head", "classifier head only"),
    "full": Method("full", "full fine-tuning"),
    "zero_shot": Method("zero_shot", "no training (causal LM prompt)"),
}
"""Every method by name."""

STUDY_METHODS = tuple(name for name in METHODS if name not in ("full", "zero_shot"))
"""The methods of ``loretta-train --study`` (a classifier)."""

CAUSAL_METHODS = ("zero_shot", "loretta_adp", "loretta_rep", "lora", "lora_r1", "lora_r2",
                  "lora_r4", "full")
"""Methods available for a causal LM."""

# Learning rates by kind: (sequence classifier, causal LM). Classifier values for
# LoRETTA_adp and LoRA were chosen on the development set (benchmarks/tune_demo.py); VeRA,
# FourierFT and IA3 start from their papers' values; every study method's rate is chosen
# again on the development set among half, one and two times this value.
_LR = {
    "loretta_adp": (1e-2, 2e-3),
    "loretta_rep": (5e-3, 2e-3),
    "lora": (4e-3, 1e-3),
    "vera": (4e-3, 4e-3),
    "lokr": (4e-3, 4e-3),
    "ia3": (3e-3, 3e-3),
    "fourierft": (5e-2, 5e-2),
    "head": (2e-3, 2e-3),
    "full": (5e-5, 1e-5),
}


def default_lr(method: str, *, causal: bool) -> float:
    """Return the default learning rate of ``method`` for a classifier or a causal LM.

    Args:
        method: A key of :data:`METHODS` (not ``zero_shot``).
        causal: Whether the model is a causal LM.

    Raises:
        ValueError: ``method`` has no learning rate.

    Example:
        >>> default_lr("full", causal=False)
        5e-05
    """
    kind = METHODS[method].kind if method in METHODS else method
    if kind not in _LR:
        raise ValueError(f"method must be one of {sorted(set(METHODS) - {'zero_shot'})}, "
                         f"received {method!r}")
    return _LR[kind][int(causal)]


def resolve_lr(lr: float | Mapping[str, float] | None, method: str, *, causal: bool) -> float:
    """The learning rate of ``method``: ``lr`` itself, ``lr[method]``, or the default.

    Raises:
        ValueError: ``lr`` is a mapping without ``method``.

    Example:
        >>> resolve_lr({"lora": 0.002}, "lora", causal=False), resolve_lr(None, "head", causal=False)
        (0.002, 0.002)
    """
    if lr is None:
        return default_lr(method, causal=causal)
    if isinstance(lr, Mapping):
        if method not in lr:
            raise ValueError(f"no learning rate for method {method!r} among {sorted(lr)}")
        return float(lr[method])
    return float(lr)


def _attention_targets(model: nn.Module) -> list[str]:
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for pair in (["query", "value"], ["q_proj", "v_proj"], ["q_lin", "v_lin"]):
        if set(pair) <= names:
            return pair
    raise ValueError(
        "PEFT baselines need attention projections named query/value or q_proj/v_proj; "
        f"received a model with none of them ({type(model).__name__})"
    )


def _peft_config(kind: str, model: nn.Module, settings: Settings, task: str) -> Any:
    import peft

    targets = _attention_targets(model)
    r = settings.lora_r
    if kind == "lora":
        return peft.LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.05,
                               target_modules=targets, task_type=task)
    if kind == "vera":
        return peft.VeraConfig(r=1024, target_modules=targets, task_type=task)
    if kind == "lokr":
        return peft.LoKrConfig(r=r, alpha=r, target_modules=targets, task_type=task)
    if kind == "fourierft":
        return peft.FourierFTConfig(n_frequency=1000, scaling=150.0, target_modules=targets,
                                    task_type=task)
    ffn = r".*layer\.\d+\.output\.dense$"
    return peft.IA3Config(target_modules=r".*layer\.\d+\.(attention\.self\.(key|value)|output"
                          r"\.dense)$", feedforward_modules=ffn, task_type=task)


def build(name: str, model: nn.Module, settings: Settings, *, causal: bool) -> nn.Module:
    """Set ``model`` up for method ``name`` in place (only its parameters trainable).

    Args:
        name: A key of :data:`METHODS`.
        model: The pretrained model (a copy: it is adapted in place).
        settings: The run's settings; the method's overrides are applied on top.
        causal: Whether ``model`` is a causal LM.

    Returns:
        The model to train: ``model`` itself or a PEFT wrapper around it.

    Raises:
        ValueError: ``name`` is unknown, or the model lacks what the method needs.

    Example:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> bert = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=1,
        ...     num_attention_heads=2, intermediate_size=32, vocab_size=50))
        >>> model = build("lora_r1", bert, Settings(), causal=False)  # a PEFT model around bert
        >>> sum(p.numel() for p in model.parameters() if p.requires_grad)  # 2 x 32 x 2 + head
        194
    """
    if name not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, received {name!r}")
    method = METHODS[name]
    settings = method.settings(settings)
    if method.kind in ("full", "zero_shot"):
        model.requires_grad_(method.kind == "full")
        return model
    if method.kind == "head":
        model.requires_grad_(False)
        head = next((getattr(model, n) for n in ("classifier", "score") if hasattr(model, n)), None)
        if not isinstance(head, nn.Module):
            raise ValueError(f"method 'head' needs a classifier head; received "
                             f"{type(model).__name__}, which has none")
        head.requires_grad_(True)
        return model
    task = "CAUSAL_LM" if causal else "SEQ_CLS"
    if not method.kind.startswith("loretta"):
        import peft

        return peft.get_peft_model(model, _peft_config(method.kind, model, settings, task))
    from loretta import LorettaAdpConfig, LorettaRepConfig, get_peft_model

    common = {"tensor_rank": settings.tensor_rank, "train_norms": settings.train_norms,
              "tt_pooler": settings.tt_pooler and not causal, "task_type": task}
    if method.kind == "loretta_rep":
        r = settings.lora_r
        return get_peft_model(model, LorettaRepConfig(r=r, lora_alpha=2 * r, **common))
    bottleneck = settings.bottleneck
    if bottleneck is None:
        bottleneck = 64 if causal else 16
    activation = settings.non_linearity
    if activation is None:
        activation = "relu" if causal else "gelu"
    config = LorettaAdpConfig(bottleneck_size=bottleneck, scaling=settings.scaling,
                              non_linearity=activation, **common)
    return get_peft_model(model, config)


def after_training(name: str, model: nn.Module, settings: Settings) -> None:
    """Apply what a method does once training ends (rank rounding for ``*_round*`` methods)."""
    rank = METHODS[name].settings(settings).round_rank
    if rank is not None:
        model.round_ranks(max_rank=rank)


def trainable_params(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad`` (what the method trains or keeps)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
