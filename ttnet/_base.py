"""Behaviour shared by :class:`ttnet.TensorTrain` and :class:`ttnet.TTMatrix`.

Both hold a tuple of cores; the arithmetic works on the cores viewed as TT-tensor cores
``(r_{k-1}, n_k, r_k)`` (a TT matrix's ``m_k`` and ``n_k`` axes merged), so each subclass
only says how to view its cores that way and back.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, TypeVar

import array_api_compat

from ttnet import _cores
from ttnet._backend import get_namespace
from ttnet.rounding import round_cores

Array = Any
T = TypeVar("T", bound="TTBase")


class TTBase:
    """Immutable tuple of TT cores with arithmetic; subclasses fix the core layout."""

    __slots__ = ("_cores", "_error", "_info")
    _core_ndim = 3
    # numpy: defer ``ndarray @ tt`` and ``ndarray * tt`` to our reflected methods.
    __array_ufunc__ = None

    def __init__(self, cores: Sequence[Array], *, error: float | None = None) -> None:
        checked = _cores.validate_cores(cores, self._core_ndim)
        if error is not None:
            error = float(error)
            if not math.isfinite(error) or error < 0:
                raise ValueError(f"error: expected None or a finite number >= 0, got {error}")
        object.__setattr__(self, "_cores", tuple(checked))
        object.__setattr__(self, "_error", error)
        object.__setattr__(self, "_info", None)

    @classmethod
    def _trusted(
        cls: type[T], cores: Sequence[Array], error: float | None = None, info: Any = None
    ) -> T:
        """Build without validation (cores produced by ttnet itself)."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "_cores", tuple(cores))
        object.__setattr__(obj, "_error", error)
        object.__setattr__(obj, "_info", info)
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle, copy.deepcopy and torch.save: rebuild from the cores (the immutability
        # guard forbids the default attribute-by-attribute restore).
        return (_rebuild, (type(self), self._cores, self._error, self._info))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {name!r}")

    # --- layout hooks -------------------------------------------------------------
    def _flat(self) -> list[Array]:
        """Cores as ``(r_{k-1}, n_k, r_k)``."""
        return list(self._cores)

    def _unflat(self: T, cores: Sequence[Array], error: float | None = None) -> T:
        """A value of this type (and this value's mode layout) from flat cores."""
        return type(self)._trusted(cores, error)

    # --- properties ---------------------------------------------------------------
    @property
    def cores(self) -> tuple[Array, ...]:
        """The cores, a tuple of arrays (do not modify them in place)."""
        return self._cores

    @property
    def ranks(self) -> tuple[int, ...]:
        """TT ranks including the boundary ones, ``(1, r_1, ..., r_{d-1}, 1)``."""
        return (1, *(int(c.shape[-1]) for c in self._cores))

    @property
    def num_params(self) -> int:
        """Number of entries in all cores."""
        return sum(math.prod(int(s) for s in c.shape) for c in self._cores)

    @property
    def dtype(self) -> Any:
        """The cores' dtype."""
        return self._cores[0].dtype

    @property
    def device(self) -> Any:
        """The cores' device (``"cpu"`` for numpy)."""
        return array_api_compat.device(self._cores[0])

    @property
    def error(self) -> float | None:
        """Relative Frobenius error versus the input this value was computed from, or ``None``."""
        return self._error

    @property
    def info(self) -> Any:
        """How this value was computed (a :class:`ttnet.CrossInfo` for TT-cross), or ``None``.

        Example:
            >>> import numpy as np, ttnet
            >>> ttnet.tt_svd(np.ones((2, 2))).info is None
            True
        """
        return self._info

    # --- arithmetic ---------------------------------------------------------------
    def _check_same(self, other: Any, op: str) -> None:
        if type(other) is not type(self):
            raise TypeError(
                f"other: {op} needs a {type(self).__name__}, got {type(other).__name__}"
            )
        if self._mode_shape() != other._mode_shape():
            raise ValueError(
                f"other: {op} needs equal shapes, got {self._mode_shape()} and "
                f"{other._mode_shape()}"
            )

    def _mode_shape(self) -> tuple[Any, ...]:
        return tuple(tuple(int(s) for s in c.shape[1:-1]) for c in self._cores)

    def _promoted(self, other: TTBase) -> tuple[list[Array], list[Array]]:
        xp = get_namespace(self._cores[0], other._cores[0], names=["self", "other"])
        a, b = self._flat(), other._flat()
        dtype = xp.result_type(a[0].dtype, b[0].dtype)
        return [xp.astype(c, dtype) for c in a], [xp.astype(c, dtype) for c in b]

    def __add__(self: T, other: Any) -> T:
        if not isinstance(other, TTBase):
            return NotImplemented
        self._check_same(other, "+")
        a, b = self._promoted(other)
        return self._unflat(_cores.add(a, b))

    def __radd__(self: T, other: Any) -> T:
        if isinstance(other, numbers.Number) and other == 0:  # lets sum([...]) work
            return self
        return NotImplemented

    def __neg__(self: T) -> T:
        return self * -1

    def __sub__(self: T, other: Any) -> T:
        if not isinstance(other, TTBase):
            return NotImplemented
        self._check_same(other, "-")
        return self + (-other)

    def __mul__(self: T, scalar: Any) -> T:
        if isinstance(scalar, bool) or not isinstance(scalar, numbers.Number):
            return NotImplemented
        cores = list(self._cores)
        cores[0] = cores[0] * scalar
        return type(self)._trusted(cores)

    __rmul__ = __mul__

    def __truediv__(self: T, scalar: Any) -> T:
        if isinstance(scalar, bool) or not isinstance(scalar, numbers.Number):
            return NotImplemented
        return self * (1 / scalar)

    def hadamard(self: T, other: T) -> T:
        """Elementwise product; ranks multiply (Kronecker product of the cores' rank axes).

        Example:
            >>> import numpy as np, ttnet
            >>> a = ttnet.tt_svd(np.arange(1.0, 9.0).reshape(2, 2, 2))
            >>> bool(np.allclose(a.hadamard(a).full(), a.full() ** 2))
            True
        """
        self._check_same(other, "hadamard")
        a, b = self._promoted(other)
        return self._unflat(_cores.hadamard(a, b))

    def dot(self, other: TTBase) -> Array:
        """Inner product ``sum(conj(self) * other)`` without forming either full array.

        Returns a 0-d array of the cores' library (autograd flows for torch).

        Example:
            >>> import numpy as np, ttnet
            >>> x = np.arange(8.0).reshape(2, 2, 2)
            >>> round(float(ttnet.tt_svd(x).dot(ttnet.tt_svd(x))), 8)
            140.0
        """
        self._check_same(other, "dot")
        a, b = self._promoted(other)
        return _cores.dot(a, b)

    def norm(self) -> Array:
        """Frobenius norm (via orthogonalisation; no full array), a 0-d array.

        Example:
            >>> import numpy as np, ttnet
            >>> round(float(ttnet.tt_svd(np.ones((3, 4))).norm() ** 2), 10)
            12.0
        """
        return _cores.norm(self._flat())

    def round(
        self: T,
        eps: float | None = None,
        max_rank: int | Sequence[int] | None = None,
        max_params: int | None = None,
    ) -> T:
        """Recompress to lower ranks; ``.error`` of the result is relative to ``self``.

        See :func:`ttnet.rounding.round_cores` for the rules.

        Example:
            >>> import numpy as np, ttnet
            >>> a = ttnet.tt_svd(np.random.default_rng(0).standard_normal((3, 3, 3)), max_rank=2)
            >>> (a + a).ranks, (a + a).round(eps=1e-12).ranks
            ((1, 4, 4, 1), (1, 2, 2, 1))
        """
        cores, error = round_cores(self._flat(), eps=eps, max_rank=max_rank, max_params=max_params)
        return self._unflat(cores, error)

    def orthogonalize_left(self: T) -> T:
        """Same values with cores ``0..d-2`` left-orthonormal (QR sweep left to right).

        Example:
            >>> import numpy as np, ttnet
            >>> tt = ttnet.tt_svd(np.random.default_rng(0).standard_normal((2, 3, 4)))
            >>> g = tt.orthogonalize_left().cores[0].reshape(-1, tt.ranks[1])
            >>> bool(np.allclose(g.T @ g, np.eye(tt.ranks[1])))
            True
        """
        return self._unflat(_cores.orthogonalize_left(self._flat()))

    def orthogonalize_right(self: T) -> T:
        """Same values with cores ``1..d-1`` right-orthonormal (QR sweep right to left).

        Example:
            >>> import numpy as np, ttnet
            >>> tt = ttnet.tt_svd(np.random.default_rng(0).standard_normal((2, 3, 4)))
            >>> g = tt.orthogonalize_right().cores[-1].reshape(tt.ranks[-2], -1)
            >>> bool(np.allclose(g @ g.T, np.eye(tt.ranks[-2])))
            True
        """
        return self._unflat(_cores.orthogonalize_right(self._flat()))


def _rebuild(cls: type[T], cores: tuple[Array, ...], error: float | None, info: Any) -> T:
    """Unpickle a TT value (see ``TTBase.__reduce__``)."""
    return cls._trusted(cores, error, info)
