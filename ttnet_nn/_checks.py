"""Argument checks for the layers: errors name the argument, the expected and the received value."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int, or raise naming ``name`` if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, received {value!r}")
    return int(value)


def rank_spec(name: str, value: object) -> int | tuple[int, ...]:
    """Check a TT rank given as one positive int or a sequence of them (one per bond)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 0:
            raise ValueError(
                f"{name}: expected a positive integer or a non-empty sequence of them, "
                f"received {value!r}"
            )
        return tuple(positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))
    return positive_int(name, value)


def probability(name: str, value: object) -> float:
    """Check a dropout probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1), received {value!r}")
    return float(value)


def finite_real(name: str, value: object) -> float:
    """Check a finite real number (a scaling factor)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite real number, received {value!r}")
    return float(value)


def layer_input(x: object, in_features: int) -> torch.Tensor:
    """Check a layer input: a floating-point tensor whose last dimension is ``in_features``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input: expected a torch.Tensor, received {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"input: expected a floating-point tensor, received dtype {x.dtype}")
    if x.ndim == 0 or x.shape[-1] != in_features:
        raise ValueError(
            f"input: expected shape (..., {in_features}) (last dimension = in_features), "
            f"received shape {tuple(x.shape)}"
        )
    return x
