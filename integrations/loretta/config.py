"""Configurations of LoRETTA_adp and LoRETTA_rep, the task types, and their JSON form.

The two configs keep the official LoRETTA signatures (``LorettaAdpConfig(bottleneck_size=64,
non_linearity="relu", ...)``) with defaults that work as given, and add the options the paper's
numbers need: ``preset="paper"`` (placement, TT shapes, trained norms and the tensorised
SEQ_CLS pooler of the paper), ``train_norms``, ``tt_pooler`` and ``modules_to_save``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import numbers
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ttnet.atomic import atomic_write

CONFIG_NAME = "adapter_config.json"
BIAS_CHOICES = ("none", "all", "loretta_only")
_BIAS_ALIASES = {"adapter_only": "loretta_only", "lora_only": "loretta_only"}
PRESETS = (None, "paper")
POSITIONS = ("input", "output")


class TaskType(str, enum.Enum):
    """The task a model is fine-tuned for (the same strings as PEFT's ``TaskType``).

    ``SEQ_CLS``, ``TOKEN_CLS`` and ``QUESTION_ANS`` make the task head trainable and saved.

    Example:
        >>> from loretta import TaskType
        >>> TaskType("SEQ_CLS") is TaskType.SEQ_CLS
        True
        >>> TaskType.CAUSAL_LM.value
        'CAUSAL_LM'
    """

    SEQ_CLS = "SEQ_CLS"
    SEQ_2_SEQ_LM = "SEQ_2_SEQ_LM"
    CAUSAL_LM = "CAUSAL_LM"
    TOKEN_CLS = "TOKEN_CLS"
    QUESTION_ANS = "QUESTION_ANS"
    FEATURE_EXTRACTION = "FEATURE_EXTRACTION"


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, received {value!r}")
    return int(value)


def _probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1), received {value!r}")
    return float(value)


def _optional_bool(name: str, value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{name}: expected True, False or None, received {value!r}")
    return value


def _names(name: str, value: object) -> list[str] | str | None:
    """Normalise a module selection: None, a regex string, or a list of names/suffixes."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise ValueError(
        f"{name}: expected None, a regex string or a list of module names, received {value!r}"
    )


@dataclass(kw_only=True)
class LorettaConfig:
    """Fields shared by both LoRETTA methods (see :class:`LorettaAdpConfig`).

    Args:
        target_modules: Modules to adapt: a list of names matched exactly or as dotted
            suffixes (``"q_proj"`` matches ``model.layers.0.self_attn.q_proj``), or one regex
            string matched against the full module name. ``None`` uses the default of the
            model type (see :mod:`loretta.mapping`).
        modules_to_save: Further modules made trainable and saved (a copy per adapter).
        bias: ``"none"``, ``"all"`` (every bias of the base model trains) or
            ``"loretta_only"`` (biases of the adapted layers train); ``"adapter_only"`` and
            ``"lora_only"`` are accepted as aliases of the latter.
        task_type: A :class:`TaskType` or its string.
        tensor_rank: TT rank of every inner bond of the TT factors.
        preset: ``None`` or ``"paper"`` (the paper's placement, TT shapes, trained norms and
            SEQ_CLS pooler; explicit fields still apply).
        train_norms: Train LayerNorm/RMSNorm weights and biases (``None``: as the preset).
        tt_pooler: For SEQ_CLS, replace the pooler dense layer by a freshly initialised TT
            layer with bias (``None``: as the preset).
        inference_mode: Set by loading without ``is_trainable``; nothing trains.
        base_model_name_or_path: Recorded by :func:`loretta.get_peft_model`.
    """

    peft_type: ClassVar[str] = ""
    target_modules: list[str] | str | None = None
    modules_to_save: list[str] | None = None
    bias: str = "none"
    task_type: TaskType | str = TaskType.CAUSAL_LM
    tensor_rank: int = 5
    preset: str | None = None
    train_norms: bool | None = None
    tt_pooler: bool | None = None
    inference_mode: bool = False
    base_model_name_or_path: str | None = None

    def __post_init__(self) -> None:
        self.target_modules = _names("target_modules", self.target_modules)
        modules = _names("modules_to_save", self.modules_to_save)
        if isinstance(modules, str):
            modules = [modules]
        self.modules_to_save = modules
        bias = _BIAS_ALIASES.get(self.bias, self.bias)
        if bias not in BIAS_CHOICES:
            raise ValueError(f"bias: expected one of {BIAS_CHOICES}, received {self.bias!r}")
        self.bias = bias
        try:
            self.task_type = TaskType(self.task_type).value
        except ValueError:
            raise ValueError(
                f"task_type: expected one of {[t.value for t in TaskType]}, "
                f"received {self.task_type!r}"
            ) from None
        self.tensor_rank = _positive_int("tensor_rank", self.tensor_rank)
        if self.preset not in PRESETS:
            raise ValueError(f"preset: expected one of {PRESETS}, received {self.preset!r}")
        self.train_norms = _optional_bool("train_norms", self.train_norms)
        self.tt_pooler = _optional_bool("tt_pooler", self.tt_pooler)

    @property
    def norms_trained(self) -> bool:
        """Whether norm weights train: ``train_norms``, else True exactly under the paper preset."""
        return self.preset == "paper" if self.train_norms is None else self.train_norms

    @property
    def pooler_tensorised(self) -> bool:
        """Whether the SEQ_CLS pooler becomes a TT layer: ``tt_pooler``, else as the preset."""
        if self.task_type != TaskType.SEQ_CLS.value:
            return False
        return self.preset == "paper" if self.tt_pooler is None else self.tt_pooler

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict, ``peft_type`` included."""
        out = {"peft_type": self.peft_type}
        out.update(dataclasses.asdict(self))
        return out

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write ``adapter_config.json`` into ``save_directory`` atomically (temp file + rename)."""
        os.makedirs(save_directory, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        atomic_write(os.path.join(save_directory, CONFIG_NAME), text)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LorettaConfig:
        """Build the right config class from a dict written by :meth:`to_dict`.

        Example:
            >>> from loretta import LorettaConfig, LorettaRepConfig
            >>> cfg = LorettaRepConfig(r=4, task_type="SEQ_CLS")
            >>> LorettaConfig.from_dict(cfg.to_dict()) == cfg
            True
        """
        data = dict(data)
        peft_type = data.pop("peft_type", None)
        classes = {cls.peft_type: cls for cls in (LorettaAdpConfig, LorettaRepConfig)}
        if peft_type not in classes:
            raise ValueError(
                f"peft_type: expected one of {sorted(classes)}, received {peft_type!r}"
            )
        cls = classes[peft_type]
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"adapter config: unknown fields {unknown} for {cls.__name__}")
        return cls(**data)

    @staticmethod
    def from_pretrained(directory: str | os.PathLike) -> LorettaConfig:
        """Read ``adapter_config.json`` from ``directory``."""
        path = os.path.join(directory, CONFIG_NAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"directory: expected {CONFIG_NAME} in it, not found: {path}")
        with open(path, encoding="utf-8") as fh:
            return LorettaConfig.from_dict(json.load(fh))


@dataclass
class LorettaAdpConfig(LorettaConfig):
    """LoRETTA_adp: TT bottleneck adapters ``y + scaling * up(act(down(drop(y))))``.

    Args:
        bottleneck_size: Width of the bottleneck (the paper: 64).
        non_linearity: Activation between down and up projection.
        adapter_dropout: Dropout on the adapter input.
        scaling: Factor on the adapter branch.
        adapter_positions: ``{target: "input" | "output"}``; a target (matched like
            ``target_modules``) marked ``"input"`` gets its adapter before the layer
            (``W (x + adapter(x))``), every other one after it (the default).
        **kwargs: The shared fields of :class:`LorettaConfig`.

    Example:
        >>> from loretta import LorettaAdpConfig
        >>> cfg = LorettaAdpConfig(bottleneck_size=64, non_linearity="relu", adapter_dropout=0.0,
        ...     target_modules=None, scaling=1.0, bias="none", task_type="CAUSAL_LM", tensor_rank=5)
        >>> cfg.peft_type, cfg.bottleneck_size, cfg.norms_trained
        ('LORETTA_ADP', 64, False)
        >>> LorettaAdpConfig(preset="paper").norms_trained
        True
    """

    peft_type: ClassVar[str] = "LORETTA_ADP"
    bottleneck_size: int = 64
    non_linearity: str = "relu"
    adapter_dropout: float = 0.0
    scaling: float = 1.0
    adapter_positions: dict[str, str] | None = field(default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.bottleneck_size = _positive_int("bottleneck_size", self.bottleneck_size)
        self.adapter_dropout = _probability("adapter_dropout", self.adapter_dropout)
        if not isinstance(self.non_linearity, str):
            raise ValueError(
                f"non_linearity: expected an activation name, received {self.non_linearity!r}"
            )
        if isinstance(self.scaling, bool) or not isinstance(self.scaling, numbers.Real):
            raise ValueError(f"scaling: expected a real number, received {self.scaling!r}")
        self.scaling = float(self.scaling)
        if self.adapter_positions is not None:
            if not isinstance(self.adapter_positions, dict) or any(
                not isinstance(k, str) or v not in POSITIONS
                for k, v in self.adapter_positions.items()
            ):
                raise ValueError(
                    "adapter_positions: expected a dict {target name: 'input' | 'output'}, "
                    f"received {self.adapter_positions!r}"
                )
            self.adapter_positions = dict(self.adapter_positions)


@dataclass
class LorettaRepConfig(LorettaConfig):
    """LoRETTA_rep: LoRA ``W x + (lora_alpha / r) * B(A(drop(x)))`` with A, B in TT form.

    Args:
        r: LoRA rank (the width between A and B; the paper: 8).
        lora_alpha: LoRA alpha; ``None`` means ``r`` (scaling 1).
        lora_dropout: Dropout on the update's input; ``None`` means 0.
        fan_in_fan_out: Base weights stored ``(in, out)`` (GPT-2 ``Conv1D``); ``None`` detects it.
        **kwargs: The shared fields of :class:`LorettaConfig`.

    Example:
        >>> from loretta import LorettaRepConfig
        >>> cfg = LorettaRepConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="SEQ_CLS")
        >>> cfg.peft_type, cfg.r, cfg.lora_alpha / cfg.r
        ('LORETTA_REP', 8, 2.0)
    """

    peft_type: ClassVar[str] = "LORETTA_REP"
    r: int = 8
    lora_alpha: float | None = 16
    lora_dropout: float | None = 0.05
    fan_in_fan_out: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.r = _positive_int("r", self.r)
        if self.lora_alpha is None:
            self.lora_alpha = self.r
        if (
            isinstance(self.lora_alpha, bool)
            or not isinstance(self.lora_alpha, numbers.Real)
            or self.lora_alpha <= 0
        ):
            raise ValueError(
                f"lora_alpha: expected a positive number, received {self.lora_alpha!r}"
            )
        self.lora_dropout = _probability(
            "lora_dropout", 0.0 if self.lora_dropout is None else self.lora_dropout
        )
        self.fan_in_fan_out = _optional_bool("fan_in_fan_out", self.fan_in_fan_out)
