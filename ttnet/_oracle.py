"""The entry oracle of TT-cross: batched, cached, counted and checked calls of ``fn``.

:class:`Oracle` wraps the user's ``fn(indices) -> values``. Every call is one batch; a
multi-index is sent to ``fn`` at most once (a dictionary keyed by the multi-index, packed
into one or a few integers, remembers every value); the number of distinct multi-indices
evaluated is counted, and a batch that would take the count past the budget is not sent
(:class:`BudgetExhausted` is raised instead). What ``fn`` returns is checked (shape,
dtype, finite values) and stored as numpy float64 (complex128 for complex values).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ttnet._backend import library_name, to_numpy
from ttnet.plans import check_shape

__all__ = ["BudgetExhausted", "Oracle"]

# Largest product of mode sizes packed into one int64 key.
_KEY_LIMIT = 1 << 62


class BudgetExhausted(Exception):
    """A batch would take the number of evaluations past ``max_evals``; it was not sent."""


def _key_groups(shape: tuple[int, ...]) -> list[tuple[int, int, np.ndarray]]:
    """Consecutive mode groups ``(start, stop, strides)`` whose product fits one int64."""
    groups, start = [], 0
    while start < len(shape):
        stop, prod = start, 1
        while stop < len(shape) and prod * shape[stop] <= _KEY_LIMIT:
            prod *= shape[stop]
            stop += 1
        sizes = shape[start:stop]
        strides = np.array([math.prod(sizes[i + 1 :]) for i in range(len(sizes))], dtype=np.int64)
        groups.append((start, stop, strides))
        start = stop
    return groups


class Oracle:
    """Batched, cached, counted calls of ``fn`` on multi-indices of ``shape``.

    Args:
        fn: ``fn(indices)`` with ``indices`` an int64 array ``(batch, d)`` of the library
            of ``like`` (numpy when ``like`` is ``None``), returning ``(batch,)`` values.
        shape: the mode sizes.
        max_evals: the most distinct multi-indices ``fn`` may see (``None``: no limit).
        like: ``None`` or an array (numpy or torch) whose library and device the indices
            passed to ``fn`` take.

    Example:
        >>> import numpy as np
        >>> oracle = Oracle(lambda i: i.sum(axis=1) * 1.0, (3, 4))
        >>> oracle(np.array([[0, 1], [2, 3], [0, 1]])).tolist(), oracle.evals, oracle.calls
        ([1.0, 5.0, 1.0], 2, 1)
        >>> oracle(np.array([[2, 3]])).tolist(), oracle.evals, oracle.calls
        ([5.0], 2, 1)
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        shape: Sequence[int],
        max_evals: int | None = None,
        like: Any = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
        self.fn = fn
        self.shape = check_shape(shape)
        self.max_evals = max_evals
        self.like = like
        self.evals = 0
        self.calls = 0
        self.dtype: Any = None  # float64 or complex128, from fn's first answer
        self.answer_dtype: Any = None  # numpy dtype of fn's first answer
        self._values: dict[Any, Any] = {}
        self._groups = _key_groups(self.shape)

    def keys(self, indices: np.ndarray) -> list[Any]:
        """Hashable keys of the rows of ``indices`` (an int per row, or a tuple of ints)."""
        words = [indices[:, a:b] @ strides for a, b, strides in self._groups]
        if len(words) == 1:
            return words[0].tolist()
        return list(zip(*(w.tolist() for w in words)))

    def known(self, indices: np.ndarray) -> np.ndarray:
        """Whether each row of ``indices`` has been evaluated (never calls ``fn``)."""
        return np.array([k in self._values for k in self.keys(indices)], dtype=bool)

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        """Values at the rows of ``indices`` (int64 ``(batch, d)``): cached ones from memory,
        the others from one call of ``fn``.

        Raises:
            BudgetExhausted: the new rows would exceed ``max_evals`` (``fn`` is not called).
            ValueError: ``fn`` answered with a wrong shape, dtype or a non-finite value.
        """
        keys = self.keys(indices)
        values = self._values
        new: dict[Any, int] = {}
        for pos, key in enumerate(keys):
            if key not in values and key not in new:
                new[key] = pos
        if new:
            if self.max_evals is not None and self.evals + len(new) > self.max_evals:
                raise BudgetExhausted
            rows = np.fromiter(new.values(), dtype=np.int64, count=len(new))
            answer = self._call(indices[rows])
            values.update(zip(new.keys(), answer.tolist()))
            self.evals += len(new)
        return np.array([values[k] for k in keys], dtype=self.dtype)

    def _call(self, batch: np.ndarray) -> np.ndarray:
        """One call of ``fn`` on ``batch``, its answer checked and as numpy."""
        arg = batch
        if self.like is not None and library_name(self.like) == "torch":
            import torch  # already imported: ``like`` is a torch tensor

            arg = torch.as_tensor(batch, dtype=torch.int64, device=self.like.device)
        self.calls += 1
        raw = self.fn(arg)
        expected = (f"for indices of shape {tuple(batch.shape)} expected values of shape "
                    f"({len(batch)},)")
        try:
            if type(raw).__module__.startswith("torch") and str(raw.dtype) == "torch.bfloat16":
                raw = raw.float()  # numpy has no bfloat16; float32 holds every value
            values = np.asarray(to_numpy(raw))
        except TypeError as exc:
            raise ValueError(f"fn: {expected}, got {type(raw).__name__} ({exc})") from None
        if values.shape != (len(batch),):
            raise ValueError(f"fn: {expected}, got shape {tuple(values.shape)}")
        if values.dtype.kind not in "biufc":
            raise ValueError(f"fn: {expected} of a numeric dtype, got dtype {values.dtype}")
        if self.dtype is None:  # the first answer fixes the kind: real or complex
            self.dtype = np.dtype(np.complex128 if values.dtype.kind == "c" else np.float64)
            self.answer_dtype = values.dtype
        elif values.dtype.kind == "c" and self.dtype.kind != "c":
            raise ValueError(f"fn: {expected}, real like its first answer, got complex values")
        values = values.astype(self.dtype)
        bad = ~np.isfinite(values)
        if bad.any():
            where = batch[int(np.argmax(bad))].tolist()
            raise ValueError(
                f"fn: {expected} of finite values, got NaN or infinity "
                f"({int(bad.sum())} of {len(batch)}; first at index {where})"
            )
        return values
