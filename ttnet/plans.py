"""Reshaping plans: how a length or an ``M x N`` matrix becomes tensor-train modes.

Three tools:

- :func:`factorize` splits ``n`` into ``d`` balanced factors whose product is exactly ``n``
  (:func:`default_num_modes` picks ``d`` when the caller does not).
- :func:`plan_matrix` chooses row and column modes for any matrix size. A size whose balanced
  factorisation is too lopsided (a prime, or a large prime factor as in ``4099`` or ``2 * 2053``)
  is padded up to the nearest size that factorises well (:func:`padded_size`), and the returned
  :class:`MatrixPlan` pads inputs forwards and slices outputs back.
- :func:`padded_size` is the padding rule itself.

Method-specific shape tables (the LoRETTA paper's) live with the layers, in
:mod:`ttnet_nn.presets`.

Padding rule: a size ``n`` split into ``d`` modes is *acceptable* when its largest balanced
factor is at most ``ceil(slack * n ** (1 / d))`` (``slack = 1.5`` by default: no mode more
than one and a half times the ideal ``d``-th root). An unacceptable size is padded to the
smallest ``n' > n`` that is acceptable. Padded rows and columns of the TT matrix are zero on
input and dropped on output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "MatrixPlan",
    "check_shape",
    "default_num_modes",
    "factorize",
    "padded_size",
    "plan_matrix",
]

#: Mode size that :func:`plan_matrix` aims at when it chooses the number of modes itself.
TARGET_MODE = 8

def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_shape(shape: Sequence[int], name: str = "shape") -> tuple[int, ...]:
    """``shape`` (mode sizes) as a tuple of positive ints.

    Raises:
        TypeError: ``shape`` is not a sequence, or a mode size is not an integer.
        ValueError: an empty shape or a mode of size < 1 (the message names the mode).

    Example:
        >>> check_shape([2, 3])
        (2, 3)
    """
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        raise TypeError(f"{name}: expected a sequence of mode sizes, got {type(shape).__name__}")
    if len(shape) == 0:
        raise ValueError(f"{name}: expected at least one mode, got ()")
    out = []
    for k, size in enumerate(shape):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise TypeError(f"{name}[{k}]: expected an int, got {size!r}")
        if size < 1:
            raise ValueError(f"{name}[{k}]: expected a mode size >= 1, got {size}")
        out.append(int(size))
    return tuple(out)


@lru_cache(maxsize=4096)
def _divisors(n: int) -> tuple[int, ...]:
    small = [k for k in range(1, math.isqrt(n) + 1) if n % k == 0]
    return tuple(sorted(set(small + [n // k for k in small])))


@lru_cache(maxsize=4096)
def _balanced(n: int, d: int) -> tuple[int, ...]:
    """Best non-decreasing ``d`` factors of ``n``: smallest maximum, then least log-spread."""
    target = math.log(n) / d
    best: tuple[float, float, tuple[int, ...]] | None = None

    def search(rest: int, k: int, low: int, prefix: tuple[int, ...]) -> None:
        nonlocal best
        if k == 1:
            if rest >= low:
                cand = prefix + (rest,)
                spread = sum((math.log(f) - target) ** 2 for f in cand)
                key = (cand[-1], spread, cand)
                if best is None or key < best:
                    best = key
            return
        for f in _divisors(rest):
            if f < low:
                continue
            if f ** k > rest:  # factors are non-decreasing: f^k <= rest
                break
            if best is not None and f > best[0]:  # the largest factor would be >= f
                break
            search(rest // f, k - 1, f, prefix + (f,))

    search(n, d, 1, ())
    assert best is not None
    return best[2]


def factorize(n: int, d: int) -> tuple[int, ...]:
    """Split ``n`` into ``d`` balanced factors whose product is exactly ``n``.

    The factors are returned in non-decreasing order. Among all factorisations the one with the
    smallest largest factor wins; ties go to the one closest to ``n ** (1/d)`` in log scale.
    No padding happens here: a prime ``n`` gives ``(1, ..., 1, n)`` (use :func:`padded_size` or
    :func:`plan_matrix` to pad awkward sizes).

    Args:
        n: The number to split, ``n >= 1``.
        d: The number of factors, ``d >= 1``.

    Returns:
        A tuple of ``d`` positive integers with product ``n``.

    Raises:
        ValueError: If ``n`` or ``d`` is not a positive integer.

    Example:
        >>> factorize(768, 3)
        (8, 8, 12)
        >>> factorize(4096, 4)
        (8, 8, 8, 8)
        >>> factorize(13, 3)
        (1, 1, 13)
    """
    _check_int("n", n, 1)
    _check_int("d", d, 1)
    return _balanced(n, d)


def _bound(n: int, d: int, slack: float) -> int:
    return math.ceil(slack * n ** (1.0 / d) - 1e-9)


def padded_size(n: int, d: int, *, slack: float = 1.5) -> int:
    """Smallest size ``>= n`` whose balanced ``d``-factorisation is acceptable.

    Acceptable means the largest factor of :func:`factorize` is at most
    ``ceil(slack * n ** (1/d))`` (the bound is computed from the original ``n``).

    Args:
        n: The size to pad, ``n >= 1``.
        d: The number of modes, ``d >= 1``.
        slack: How far the largest mode may exceed the ideal ``n ** (1/d)``, ``slack >= 1``.

    Returns:
        ``n`` itself when it is acceptable, otherwise the nearest larger acceptable size.

    Raises:
        ValueError: If an argument is out of range.

    Example:
        >>> padded_size(768, 3)
        768
        >>> padded_size(4099, 4), factorize(4116, 4)
        (4116, (7, 7, 7, 12))
    """
    _check_int("n", n, 1)
    _check_int("d", d, 1)
    if not (isinstance(slack, (int, float)) and slack >= 1.0):
        raise ValueError(f"slack must be a number >= 1, got {slack!r}")
    bound = _bound(n, d, slack)
    m = n
    while _balanced(m, d)[-1] > bound:
        m += 1
    return m


def default_num_modes(n: int) -> int:
    """Number of modes for a size ``n`` when none is given: ``round(log8(n))``, at least 1.

    Example:
        >>> default_num_modes(768), default_num_modes(4096), default_num_modes(1)
        (3, 4, 1)
    """
    _check_int("n", n, 1)
    return max(1, round(math.log(n) / math.log(TARGET_MODE))) if n > 1 else 1


@dataclass(frozen=True)
class MatrixPlan:
    """How an ``rows x cols`` matrix maps onto a TT matrix with ``row_shape x col_shape`` modes.

    ``prod(row_shape) == padded_rows >= rows`` and ``prod(col_shape) == padded_cols >= cols``.
    The padded part of a weight is zero; :meth:`pad_cols` / :meth:`unpad_rows` move a batch
    for ``y = x @ W.T`` between the true and the padded sizes (numpy or torch, autograd flows).

    Attributes:
        rows: True number of rows (``M``, the output features of a layer).
        cols: True number of columns (``N``, the input features of a layer).
        row_shape: Row modes ``(m_1, ..., m_d)``.
        col_shape: Column modes ``(n_1, ..., n_d)``.

    Example:
        >>> plan = plan_matrix(4096, 4096)
        >>> plan.row_shape, plan.col_shape, plan.d
        ((8, 8, 8, 8), (8, 8, 8, 8), 4)
    """

    rows: int
    cols: int
    row_shape: tuple[int, ...]
    col_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.row_shape) != len(self.col_shape):
            raise ValueError(
                f"row_shape and col_shape must have the same length, got {self.row_shape} "
                f"and {self.col_shape}"
            )
        if math.prod(self.row_shape) < self.rows:
            raise ValueError(f"row_shape {self.row_shape} has fewer than rows={self.rows} entries")
        if math.prod(self.col_shape) < self.cols:
            raise ValueError(f"col_shape {self.col_shape} has fewer than cols={self.cols} entries")

    @property
    def d(self) -> int:
        """Number of modes (cores) of the TT matrix.

        Example:
            >>> plan_matrix(768, 64).d
            3
        """
        return len(self.row_shape)

    @property
    def padded_rows(self) -> int:
        """``prod(row_shape)``: rows after padding.

        Example:
            >>> plan_matrix(4099, 64, d=2).padded_rows
            4100
        """
        return math.prod(self.row_shape)

    @property
    def padded_cols(self) -> int:
        """``prod(col_shape)``: columns after padding.

        Example:
            >>> plan_matrix(64, 4099, d=2).padded_cols
            4100
        """
        return math.prod(self.col_shape)

    @property
    def is_padded(self) -> bool:
        """Whether either side is padded.

        Example:
            >>> plan_matrix(768, 768).is_padded, plan_matrix(4099, 4099).is_padded
            (False, True)
        """
        return self.padded_rows != self.rows or self.padded_cols != self.cols

    def pad_cols(self, x: Any) -> Any:
        """Zero-pad the last axis of ``x`` from ``cols`` to ``padded_cols`` (layer inputs).

        Example:
            >>> import numpy as np
            >>> plan_matrix(3, 5, d=2, slack=1.0).pad_cols(np.ones((2, 5))).shape
            (2, 6)
        """
        return _pad_last(x, "x", self.cols, self.padded_cols)

    def unpad_cols(self, x: Any) -> Any:
        """Drop the padded columns: last axis ``padded_cols -> cols``.

        Example:
            >>> import numpy as np
            >>> plan_matrix(3, 5, d=2, slack=1.0).unpad_cols(np.ones((2, 6))).shape
            (2, 5)
        """
        return _unpad_last(x, "x", self.cols, self.padded_cols)

    def pad_rows(self, y: Any) -> Any:
        """Zero-pad the last axis of ``y`` from ``rows`` to ``padded_rows`` (for ``y @ W``).

        Example:
            >>> import numpy as np
            >>> plan_matrix(7, 4, d=2, slack=1.0).pad_rows(np.ones((2, 7))).shape
            (2, 9)
        """
        return _pad_last(y, "y", self.rows, self.padded_rows)

    def unpad_rows(self, y: Any) -> Any:
        """Drop the padded rows: last axis ``padded_rows -> rows`` (layer outputs).

        Example:
            >>> import numpy as np
            >>> plan_matrix(7, 4, d=2, slack=1.0).unpad_rows(np.ones((2, 9))).shape
            (2, 7)
        """
        return _unpad_last(y, "y", self.rows, self.padded_rows)

    def pad_matrix(self, w: Any) -> Any:
        """Zero-pad a ``(rows, cols)`` matrix to ``(padded_rows, padded_cols)``.

        Example:
            >>> import numpy as np
            >>> plan_matrix(7, 5, d=2, slack=1.0).pad_matrix(np.ones((7, 5))).shape
            (9, 6)
        """
        if tuple(w.shape) != (self.rows, self.cols):
            raise ValueError(f"w must have shape {(self.rows, self.cols)}, got {tuple(w.shape)}")
        w = _pad_last(w, "w", self.cols, self.padded_cols)
        xp = _namespace(w)
        return xp.permute_dims(
            _pad_last(xp.permute_dims(w, (1, 0)), "w", self.rows, self.padded_rows), (1, 0)
        )

    def unpad_matrix(self, w: Any) -> Any:
        """Slice a padded ``(padded_rows, padded_cols)`` matrix back to ``(rows, cols)``.

        Example:
            >>> import numpy as np
            >>> plan_matrix(7, 5, d=2, slack=1.0).unpad_matrix(np.ones((9, 6))).shape
            (7, 5)
        """
        if tuple(w.shape) != (self.padded_rows, self.padded_cols):
            raise ValueError(
                f"w must have shape {(self.padded_rows, self.padded_cols)}, got {tuple(w.shape)}"
            )
        return w[: self.rows, : self.cols]


def _namespace(x: Any) -> Any:
    import array_api_compat

    return array_api_compat.array_namespace(x)


def _pad_last(x: Any, name: str, size: int, padded: int) -> Any:
    if x.shape[-1] != size:
        raise ValueError(f"{name} must have last axis {size}, got shape {tuple(x.shape)}")
    if padded == size:
        return x
    import array_api_compat

    xp = array_api_compat.array_namespace(x)
    zeros = xp.zeros(
        (*x.shape[:-1], padded - size), dtype=x.dtype, device=array_api_compat.device(x)
    )
    return xp.concat((x, zeros), axis=-1)


def _unpad_last(x: Any, name: str, size: int, padded: int) -> Any:
    if x.shape[-1] != padded:
        raise ValueError(f"{name} must have last axis {padded}, got shape {tuple(x.shape)}")
    return x if padded == size else x[..., :size]


def plan_matrix(rows: int, cols: int, d: int | None = None, *, slack: float = 1.5) -> MatrixPlan:
    """Choose TT-matrix modes for an ``rows x cols`` matrix, padding awkward sizes.

    ``d`` defaults to ``round(log8(max(rows, cols)))`` (at least 1), so modes are near 8:
    ``4096 -> 4`` modes, ``768 -> 3``. Each side is padded with :func:`padded_size` (same
    ``slack``) and split with :func:`factorize`; row and column modes are sorted so that the
    small ones come first.

    Args:
        rows: Number of rows ``M`` (a layer's output features), ``>= 1``.
        cols: Number of columns ``N`` (a layer's input features), ``>= 1``.
        d: Number of modes per side; ``None`` chooses it from the sizes.
        slack: Padding tolerance (see :func:`padded_size`), ``>= 1``.

    Returns:
        A frozen :class:`MatrixPlan`.

    Raises:
        ValueError: If an argument is out of range.

    Example:
        >>> plan = plan_matrix(768, 768)
        >>> plan.row_shape, plan.col_shape
        ((8, 8, 12), (8, 8, 12))
        >>> plan_matrix(768, 3072).row_shape
        (4, 4, 6, 8)
        >>> plan = plan_matrix(4099, 4096)
        >>> plan.row_shape, plan.padded_rows, plan.is_padded
        ((7, 7, 7, 12), 4116, True)
    """
    _check_int("rows", rows, 1)
    _check_int("cols", cols, 1)
    if d is None:
        d = default_num_modes(max(rows, cols))
    _check_int("d", d, 1)
    row_shape = factorize(padded_size(rows, d, slack=slack), d)
    col_shape = factorize(padded_size(cols, d, slack=slack), d)
    return MatrixPlan(rows=rows, cols=cols, row_shape=row_shape, col_shape=col_shape)
