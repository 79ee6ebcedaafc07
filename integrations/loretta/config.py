"""Configurations of LoRETTA_adp and LoRETTA_rep: ``peft.PeftConfig`` subclasses.

The official LoRETTA signatures with defaults that work as given, plus what the paper's numbers
need (``preset="paper"``, ``train_norms``, ``tt_pooler``). ``peft_type`` is a :class:`LorettaType`,
a ``str`` Enum as PEFT's own, so PEFT and transformers dispatch on it. Reading
``adapter_config.json`` checks every value (errors name the file and field) and ignores, with a
warning, keys this version does not know.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import numbers
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

from peft import PeftConfig, TaskType

from ttnet.atomic import atomic_write

CONFIG_NAME = "adapter_config.json"
BIAS_CHOICES = ("none", "all", "loretta_only")
_BIAS_ALIASES = {"adapter_only": "loretta_only", "lora_only": "loretta_only"}
PRESETS = (None, "paper")
POSITIONS = ("input", "output")


class LorettaType(str, enum.Enum):
    """The two PEFT types this package registers with PEFT (``LorettaType.LORETTA_ADP ==
    "LORETTA_ADP"``)."""

    LORETTA_ADP = "LORETTA_ADP"
    LORETTA_REP = "LORETTA_REP"


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


def _tt_ranks(value: object) -> dict[str, list[int]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, (list, tuple)) for k, v in value.items()):
        raise ValueError(f"tt_ranks: expected None or {{factor name: [ranks]}}, received {value!r}")
    return {k: [_positive_int(f"tt_ranks[{k!r}]", r) for r in v] for k, v in value.items()}


@dataclass(kw_only=True)
class LorettaConfig(PeftConfig):
    """Fields shared by both LoRETTA methods (see :class:`LorettaAdpConfig`).

    Args:
        target_modules: Modules to adapt: a list of names matched exactly or as dotted
            suffixes (``"q_proj"`` matches ``model.layers.0.self_attn.q_proj``), or one regex
            string matched against the full module name. ``None`` uses the default of the
            model type (see :mod:`loretta.mapping`); the names found are written back here.
        modules_to_save: Further modules made trainable and saved (a copy per adapter, PEFT's
            ``ModulesToSaveWrapper``); task heads and, with ``train_norms``, the norms are
            added when the adapter is created.
        bias: ``"none"``, ``"all"`` (every bias of the base model trains) or
            ``"loretta_only"`` (biases of the adapted layers train); ``"adapter_only"`` and
            ``"lora_only"`` are accepted as aliases of the latter.
        task_type: A ``TaskType`` or its string.
        tensor_rank: TT rank of every inner bond of the TT factors.
        preset: ``None`` or ``"paper"`` (the paper's placement, TT shapes, trained norms and
            SEQ_CLS pooler; explicit fields still apply).
        train_norms: Train LayerNorm/RMSNorm weights and biases (``None``: as the preset).
        tt_pooler: For SEQ_CLS, replace the pooler dense layer by a freshly initialised TT
            layer with bias (``None``: as the preset).
        tt_ranks: ``{"<module>.<factor>": [inner ranks]}`` that rank rounding
            (:func:`loretta.round_ranks`) left, used when the adapter is rebuilt.
        inference_mode: Set by loading without ``is_trainable``; nothing trains.
    """

    PEFT_TYPE: ClassVar[LorettaType]
    target_modules: list[str] | str | None = None
    modules_to_save: list[str] | None = None
    bias: str = "none"
    task_type: TaskType | str | None = TaskType.CAUSAL_LM
    tensor_rank: int = 5
    preset: str | None = None
    train_norms: bool | None = None
    tt_pooler: bool | None = None
    tt_ranks: dict[str, list[int]] | None = None

    def __post_init__(self) -> None:
        if type(self) is LorettaConfig:
            raise TypeError("LorettaConfig: use LorettaAdpConfig or LorettaRepConfig")
        if self.peft_type not in (None, self.PEFT_TYPE):
            raise ValueError(f"peft_type: expected {self.PEFT_TYPE.value!r} for "
                             f"{type(self).__name__}, received {self.peft_type!r}")
        self.peft_type = self.PEFT_TYPE
        self.target_modules = _names("target_modules", self.target_modules)
        modules = _names("modules_to_save", self.modules_to_save)
        self.modules_to_save = [modules] if isinstance(modules, str) else modules
        bias = _BIAS_ALIASES.get(self.bias, self.bias)
        if bias not in BIAS_CHOICES:
            raise ValueError(f"bias: expected one of {BIAS_CHOICES}, received {self.bias!r}")
        self.bias = bias
        try:
            self.task_type = TaskType(self.task_type).value
        except ValueError:
            raise ValueError(f"task_type: expected one of {[t.value for t in TaskType]}, "
                             f"received {self.task_type!r}") from None
        self.tensor_rank = _positive_int("tensor_rank", self.tensor_rank)
        if self.preset not in PRESETS:
            raise ValueError(f"preset: expected one of {PRESETS}, received {self.preset!r}")
        self.train_norms = _optional_bool("train_norms", self.train_norms)
        self.tt_pooler = _optional_bool("tt_pooler", self.tt_pooler)
        self.tt_ranks = _tt_ranks(self.tt_ranks)
        if not isinstance(self.inference_mode, bool):
            raise ValueError(f"inference_mode: expected a bool, received {self.inference_mode!r}")
        super().__post_init__()

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
        """The config as a JSON-ready dict (``peft_type`` included, sets as sorted lists)."""
        out = dataclasses.asdict(self)
        out["peft_type"] = self.peft_type.value
        return {k: sorted(v) if isinstance(v, set) else v for k, v in out.items()}

    def to_json_string(self) -> str:
        """The text of ``adapter_config.json`` (PEFT's layout: indented, sorted keys)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Write ``adapter_config.json`` into ``save_directory`` atomically (temp file + rename)."""
        os.makedirs(save_directory, exist_ok=True)
        atomic_write(os.path.join(save_directory, CONFIG_NAME), self.to_json_string())

    @staticmethod
    def from_dict(data: dict[str, Any], source: str = "adapter config") -> LorettaConfig:
        """The config class ``data["peft_type"]`` names, built from ``data`` (unknown keys
        dropped with a warning; a bad value raises a ``ValueError`` starting with ``source``).

        Example:
            >>> from loretta import LorettaConfig, LorettaRepConfig
            >>> cfg = LorettaRepConfig(r=4, task_type="SEQ_CLS")
            >>> LorettaConfig.from_dict(cfg.to_dict()) == cfg
            True
        """
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, received {type(data).__name__}")
        classes = {cls.PEFT_TYPE.value: cls for cls in (LorettaAdpConfig, LorettaRepConfig)}
        peft_type = data.get("peft_type")
        if peft_type not in classes:
            raise ValueError(
                f"{source}: peft_type: expected one of {sorted(classes)}, received {peft_type!r}")
        cls = classes[peft_type]
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - known)
        if unknown:
            warnings.warn(f"{source}: ignoring keys unknown to {cls.__name__}: {unknown}",
                          UserWarning, stacklevel=2)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike,
                        subfolder: str | None = None, **kwargs: Any) -> LorettaConfig:
        """Read ``adapter_config.json`` from a local folder (a Hub id goes to PEFT's loader);
        FileNotFoundError if it is missing, ValueError naming the file for malformed JSON,
        another ``peft_type`` or a bad value."""
        folder = os.fspath(pretrained_model_name_or_path)
        folder = os.path.join(folder, subfolder) if subfolder else folder
        if not os.path.isdir(folder):
            return super().from_pretrained(pretrained_model_name_or_path, subfolder, **kwargs)
        path = os.path.join(folder, CONFIG_NAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: not found (save_pretrained writes {CONFIG_NAME})")
        with open(path, encoding="utf-8") as fh:
            try:
                data = json.load(fh)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(f"{path}: not valid JSON ({err})") from None
        config = LorettaConfig.from_dict(data, source=path)
        if cls is not LorettaConfig and not isinstance(config, cls):
            raise ValueError(f"{path}: peft_type {config.peft_type.value!r} is not "
                             f"{cls.PEFT_TYPE.value!r}")
        return config


@dataclass(kw_only=True)
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
        >>> cfg.peft_type.value, cfg.bottleneck_size, cfg.norms_trained
        ('LORETTA_ADP', 64, False)
        >>> LorettaAdpConfig(preset="paper").norms_trained
        True
    """

    PEFT_TYPE: ClassVar[LorettaType] = LorettaType.LORETTA_ADP
    bottleneck_size: int = 64
    non_linearity: str = "relu"
    adapter_dropout: float = 0.0
    scaling: float = 1.0
    adapter_positions: dict[str, str] | None = field(default=None)

    def __post_init__(self) -> None:
        self.bottleneck_size = _positive_int("bottleneck_size", self.bottleneck_size)
        self.adapter_dropout = _probability("adapter_dropout", self.adapter_dropout)
        if not isinstance(self.non_linearity, str):
            raise ValueError(
                f"non_linearity: expected an activation name, received {self.non_linearity!r}")
        if isinstance(self.scaling, bool) or not isinstance(self.scaling, numbers.Real):
            raise ValueError(f"scaling: expected a real number, received {self.scaling!r}")
        self.scaling = float(self.scaling)
        positions = self.adapter_positions
        if positions is not None:
            if not isinstance(positions, dict) or any(
                    not isinstance(k, str) or v not in POSITIONS for k, v in positions.items()):
                raise ValueError("adapter_positions: expected a dict {target name: 'input' | "
                                 f"'output'}}, received {positions!r}")
            self.adapter_positions = dict(positions)
        super().__post_init__()


@dataclass(kw_only=True)
class LorettaRepConfig(LorettaConfig):
    """LoRETTA_rep: LoRA ``W x + (lora_alpha / r) * B(A(drop(x)))`` with A, B in TT form.

    Args:
        r: LoRA rank (the width between A and B; the paper: 8).
        lora_alpha: LoRA alpha; ``None`` means ``r`` (scaling 1).
        lora_dropout: Dropout on the update's input; ``None`` means 0.
        fan_in_fan_out: Base weights stored ``(in, out)`` (GPT-2 ``Conv1D``). ``None`` takes
            each layer's own layout; a value that contradicts a layer is corrected for that
            layer with a warning, as PEFT does.
        **kwargs: The shared fields of :class:`LorettaConfig`.

    Example:
        >>> from loretta import LorettaRepConfig
        >>> cfg = LorettaRepConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="SEQ_CLS")
        >>> cfg.peft_type.value, cfg.r, cfg.lora_alpha / cfg.r
        ('LORETTA_REP', 8, 2.0)
    """

    PEFT_TYPE: ClassVar[LorettaType] = LorettaType.LORETTA_REP
    r: int = 8
    lora_alpha: float | None = 16
    lora_dropout: float | None = 0.05
    fan_in_fan_out: bool | None = None

    def __post_init__(self) -> None:
        self.r = _positive_int("r", self.r)
        if self.lora_alpha is None:
            self.lora_alpha = self.r
        if (isinstance(self.lora_alpha, bool) or not isinstance(self.lora_alpha, numbers.Real)
                or self.lora_alpha <= 0):
            raise ValueError(f"lora_alpha: expected a positive number, received {self.lora_alpha!r}")
        self.lora_dropout = _probability(
            "lora_dropout", 0.0 if self.lora_dropout is None else self.lora_dropout)
        self.fan_in_fan_out = _optional_bool("fan_in_fan_out", self.fan_in_fan_out)
        super().__post_init__()
