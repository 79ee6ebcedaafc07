"""The TT matrix (TT operator) value type, :class:`TTMatrix`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ttnet import _tensorly, indexing
from ttnet._backend import as_float_array, get_namespace
from ttnet._base import TTBase
from ttnet.contraction import ttm_matvec, ttm_rmatvec
from ttnet.dense import ttm_dense
from ttnet.tensor_train import TensorTrain

__all__ = ["TTMatrix"]

Array = Any


class TTMatrix(TTBase):
    """An immutable matrix in TT format, cores ``(r_{k-1}, m_k, n_k, r_k)``.

    It stands for ``W`` of shape ``(M, N) = (prod m_k, prod n_k)`` with
    ``W[i, j] = G_1[:, i_1, j_1, :] @ ... @ G_d[:, i_d, j_d, :]``, where ``i`` and ``j``
    are the row-major multi-indices over ``row_shape`` and ``col_shape``.

    Products (the dense ones go through :mod:`ttnet.contraction`, which picks the
    cheaper of the TT network and "dense ``W`` then matmul" for the batch size):

    - ``W @ X``: ``X`` dense ``(N, K)`` -> ``(M, K)``, or ``(N,)`` -> ``(M,)``.
    - ``X @ W``: ``X`` dense ``(K, M)`` -> ``(K, N)``, or ``(M,)`` -> ``(N,)``.
    - :meth:`matvec`: ``x`` of shape ``(..., N)`` -> ``(..., M)``, i.e. ``x @ W.T``
      (a linear layer's forward).
    - ``W @ V`` with ``V`` a :class:`TTMatrix` -> :class:`TTMatrix`, with ``V`` a
      :class:`~ttnet.TensorTrain` of shape ``col_shape`` -> :class:`~ttnet.TensorTrain`
      (ranks multiply; :meth:`round` brings them back).

    The dense operand must come from the cores' library (numpy or torch; mixing raises
    ``TypeError``); integer operands are converted to float and differing float dtypes
    are promoted (e.g. float32 with float64 gives float64).

    Also ``+``, ``-``, scalar ``*``, :meth:`hadamard`, :meth:`dot`, :meth:`norm`,
    :meth:`round`, orthogonalisation, exactly as for :class:`~ttnet.TensorTrain`.

    Indexing as a matrix, never forming it: ``W[i, j]`` an entry (0-d array), ``W[i, :]``
    and ``W[:, j]`` a row or column as a :class:`~ttnet.TensorTrain` over ``col_shape`` /
    ``row_shape``, :meth:`gather` a batch of ``(row, column)`` entries; :meth:`sum` and
    :meth:`mean` over all entries, rows (``axis=0``) or columns (``axis=1``).

    Raises:
        ValueError / TypeError: as :class:`~ttnet.TensorTrain`, for 4-D cores.

    Example:
        >>> import numpy as np
        >>> eye = TTMatrix([np.eye(2).reshape(1, 2, 2, 1)] * 3)
        >>> eye.shape, eye.row_shape, bool(np.allclose(eye.to_dense(), np.eye(8)))
        ((8, 8), (2, 2, 2), True)
    """

    __slots__ = ()
    _core_ndim = 4

    def _flat(self) -> list[Array]:
        xp = get_namespace(self._cores[0])
        return [
            xp.reshape(c, (int(c.shape[0]), int(c.shape[1]) * int(c.shape[2]), int(c.shape[3])))
            for c in self._cores
        ]

    def _unflat(self, cores: Sequence[Array], error: float | None = None) -> TTMatrix:
        xp = get_namespace(cores[0])
        shaped = [
            xp.reshape(c, (int(c.shape[0]), m, n, int(c.shape[2])))
            for c, m, n in zip(cores, self.row_shape, self.col_shape)
        ]
        return TTMatrix._trusted(shaped, error)

    @property
    def row_shape(self) -> tuple[int, ...]:
        """Row modes ``(m_1, ..., m_d)``.

        Example:
            >>> import numpy as np
            >>> TTMatrix([np.ones((1, 2, 3, 1))]).row_shape
            (2,)
        """
        return tuple(int(c.shape[1]) for c in self._cores)

    @property
    def col_shape(self) -> tuple[int, ...]:
        """Column modes ``(n_1, ..., n_d)``.

        Example:
            >>> import numpy as np
            >>> TTMatrix([np.ones((1, 2, 3, 1))]).col_shape
            (3,)
        """
        return tuple(int(c.shape[2]) for c in self._cores)

    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N)``, the dense matrix's shape.

        Example:
            >>> import numpy as np
            >>> TTMatrix([np.ones((1, 2, 3, 1)), np.ones((1, 2, 2, 1))]).shape
            (4, 6)
        """
        return math.prod(self.row_shape), math.prod(self.col_shape)

    @property
    def T(self) -> TTMatrix:  # noqa: N802 - the usual name for a transpose
        """The transpose, ``(N, M)``: each core's ``m`` and ``n`` axes swapped.

        Example:
            >>> import numpy as np
            >>> TTMatrix([np.ones((1, 2, 3, 1))]).T.shape
            (3, 2)
        """
        xp = get_namespace(self._cores[0])
        return TTMatrix._trusted([xp.permute_dims(c, (0, 2, 1, 3)) for c in self._cores])

    def to_dense(self) -> Array:
        """The dense matrix ``(M, N)`` (via :func:`ttnet.dense.ttm_dense`).

        Example:
            >>> import numpy as np
            >>> TTMatrix([np.ones((1, 2, 3, 1))]).to_dense().shape
            (2, 3)
        """
        return ttm_dense(self._cores)

    def _dense_operand(self, x: Any, name: str, size: int, axis_label: str) -> tuple[Array, list]:
        """``x`` checked (library, float, length of its product axis) and cores cast alike."""
        x = as_float_array(x, name)
        xp = get_namespace(self._cores[0], x, names=["self", name])
        axis = 0 if axis_label == "first" else -1
        if x.ndim == 0 or int(x.shape[axis]) != size:
            raise ValueError(
                f"{name}: expected the {axis_label} axis to have length {size}, "
                f"got shape {tuple(x.shape)}"
            )
        dtype = xp.result_type(self.dtype, x.dtype)
        cores = [c if c.dtype == dtype else xp.astype(c, dtype) for c in self._cores]
        return (x if x.dtype == dtype else xp.astype(x, dtype)), cores

    def matvec(self, x: Array) -> Array:
        """``x @ W.T``: ``x`` of shape ``(..., N)`` -> ``(..., M)`` (a linear layer's forward).

        Example:
            >>> import numpy as np
            >>> w = TTMatrix([np.arange(6.0).reshape(1, 2, 3, 1)])
            >>> bool(np.allclose(w.matvec(np.ones((5, 3))), np.ones((5, 3)) @ w.to_dense().T))
            True
        """
        x, cores = self._dense_operand(x, "x", self.shape[1], "last")
        return ttm_matvec(cores, x)

    def __matmul__(self, other: Any) -> Any:
        if isinstance(other, TTMatrix):
            return self._matmul_ttm(other)
        if isinstance(other, TensorTrain):
            return self._matmul_tt(other)
        x, cores = self._dense_operand(other, "other", self.shape[1], "first")
        if x.ndim == 1:
            return ttm_matvec(cores, x)
        if x.ndim != 2:
            raise ValueError(f"other: expected a 1-D or 2-D array, got shape {tuple(x.shape)}")
        xp = get_namespace(x)
        return xp.matrix_transpose(ttm_matvec(cores, xp.matrix_transpose(x)))

    def __rmatmul__(self, other: Any) -> Any:
        x, cores = self._dense_operand(other, "other", self.shape[0], "last")
        if x.ndim > 2:
            raise ValueError(f"other: expected a 1-D or 2-D array, got shape {tuple(x.shape)}")
        return ttm_rmatvec(cores, x)

    def _matmul_ttm(self, other: TTMatrix) -> TTMatrix:
        if self.col_shape != other.row_shape:
            raise ValueError(
                f"other: expected row_shape {self.col_shape} (this matrix's col_shape), "
                f"got {other.row_shape}"
            )
        xp = get_namespace(self._cores[0], other.cores[0], names=["self", "other"])
        dtype = xp.result_type(self.dtype, other.dtype)
        cores = []
        for ga, gb in zip(self._cores, other.cores):
            prod = xp.tensordot(xp.astype(ga, dtype), xp.astype(gb, dtype), axes=([2], [1]))
            prod = xp.permute_dims(prod, (0, 3, 1, 4, 2, 5))  # (ra, rb, m, l, ca, cb)
            ra, m, qa = int(ga.shape[0]), int(ga.shape[1]), int(ga.shape[3])
            rb, l, qb = int(gb.shape[0]), int(gb.shape[2]), int(gb.shape[3])
            cores.append(xp.reshape(prod, (ra * rb, m, l, qa * qb)))
        return TTMatrix._trusted(cores)

    def _matmul_tt(self, other: TensorTrain) -> TensorTrain:
        if self.col_shape != other.shape:
            raise ValueError(
                f"other: expected a TensorTrain of shape {self.col_shape} (this matrix's "
                f"col_shape), got {other.shape}"
            )
        xp = get_namespace(self._cores[0], other.cores[0], names=["self", "other"])
        dtype = xp.result_type(self.dtype, other.dtype)
        cores = []
        for ga, gb in zip(self._cores, other.cores):
            prod = xp.tensordot(xp.astype(ga, dtype), xp.astype(gb, dtype), axes=([2], [1]))
            prod = xp.permute_dims(prod, (0, 3, 1, 2, 4))  # (ra, rb, m, ca, cb)
            ra, m, qa = int(ga.shape[0]), int(ga.shape[1]), int(ga.shape[3])
            rb, qb = int(gb.shape[0]), int(gb.shape[2])
            cores.append(xp.reshape(prod, (ra * rb, m, qa * qb)))
        return TensorTrain._trusted(cores)

    def _mode_indices(self, index: Any, axis: int) -> list[Any]:
        """The multi-index over ``row_shape`` (axis 0) or ``col_shape`` of a flat index."""
        modes = self.row_shape if axis == 0 else self.col_shape
        flat = indexing.check_index(index, self.shape[axis], "rows" if axis == 0 else "columns")
        out = []
        for size in reversed(modes):
            flat, digit = divmod(flat, size)
            out.append(digit)
        return out[::-1]

    def __getitem__(self, key: Any) -> Any:
        """``W[i, j]`` (an entry, 0-d array), ``W[i, :]`` or ``W[:, j]`` (a TensorTrain).

        Raises:
            IndexError: an index out of range (naming rows or columns), or a key that is
                not two items of which at most one is ``:``.

        Example:
            >>> import numpy as np
            >>> w = TTMatrix([np.arange(6.0).reshape(1, 2, 3, 1), np.ones((1, 2, 2, 1))])
            >>> dense = w.to_dense()
            >>> bool(float(w[3, 5]) == dense[3, 5]), bool(np.allclose(w[1, :].full().ravel(), dense[1]))
            (True, True)
        """
        if not isinstance(key, tuple) or len(key) != 2:
            raise IndexError(f"a TTMatrix takes two indices (row, column), got {key!r}")
        full = [isinstance(k, slice) and k == slice(None) for k in key]
        if all(full):
            return self
        picks = [None if full[a] else self._mode_indices(key[a], a) for a in (0, 1)]
        cores = []
        for k, core in enumerate(self._cores):
            row = slice(None) if picks[0] is None else picks[0][k]
            col = slice(None) if picks[1] is None else picks[1][k]
            cores.append(core[:, row, col, :])
        if any(full):
            return TensorTrain._trusted(cores)
        xp = get_namespace(cores[0])
        out = cores[0]
        for core in cores[1:]:
            out = out @ core
        return xp.reshape(out, ())

    def gather(self, indices: Any) -> Array:
        """Entries ``W[rows, cols]`` for ``indices`` ``(batch, 2)`` of (row, column) pairs.

        Raises:
            IndexError: a row or column out of range (the message names which).

        Example:
            >>> import numpy as np
            >>> w = TTMatrix([np.arange(6.0).reshape(1, 2, 3, 1), np.ones((1, 2, 2, 1))])
            >>> w.gather([[0, 1], [3, 5]]).tolist() == [w.to_dense()[0, 1], w.to_dense()[3, 5]]
            True
        """
        pairs = indexing.check_indices(indices, self.shape, self._cores[0], ["rows", "columns"])
        xp = get_namespace(pairs)
        rows, cols = pairs[:, 0], pairs[:, 1]
        digits = []
        for m, n in zip(reversed(self.row_shape), reversed(self.col_shape)):
            digits.append((rows % m) * n + cols % n)
            rows, cols = rows // m, cols // n
        flat_index = xp.stack(digits[::-1], axis=1)
        return indexing.gather_cores(self._flat(), flat_index)

    def sum(self, axis: int | None = None) -> Any:
        """Sum of all entries (0-d array), over rows (``axis=0``, a TensorTrain over
        ``col_shape``) or over columns (``axis=1``, over ``row_shape``).

        Example:
            >>> import numpy as np
            >>> w = TTMatrix([np.arange(6.0).reshape(1, 2, 3, 1), np.ones((1, 2, 2, 1))])
            >>> float(w.sum()), bool(np.allclose(w.sum(axis=0).full().ravel(), w.to_dense().sum(0)))
            (60.0, True)
        """
        if axis is None:
            return indexing.sum_cores(self._flat(), tuple(range(len(self._cores))))
        if isinstance(axis, bool) or axis not in (0, 1, -1, -2):
            raise ValueError(f"axis: expected None, 0 or 1 for a TTMatrix, got {axis!r}")
        xp = get_namespace(self._cores[0])
        return TensorTrain._trusted([xp.sum(c, axis=1 + axis % 2) for c in self._cores])

    def mean(self, axis: int | None = None) -> Any:
        """Mean of all entries, over rows (``axis=0``) or over columns (``axis=1``).

        Example:
            >>> import numpy as np
            >>> w = TTMatrix([np.arange(6.0).reshape(1, 2, 3, 1), np.ones((1, 2, 2, 1))])
            >>> float(w.mean())
            2.5
        """
        total = self.sum(axis)
        return total / (self.shape[0] * self.shape[1] if axis is None else self.shape[axis % 2])

    def to_tensorly(self) -> Any:
        """This matrix as a ``tensorly.tt_matrix.TTMatrix`` (same core arrays; needs tensorly).

        Example:
            >>> import numpy as np
            >>> TTMatrix([np.ones((1, 2, 3, 1))]).to_tensorly().shape
            (2, 3)
        """
        return _tensorly.to_tensorly(self._cores)

    @classmethod
    def from_tensorly(cls, obj: Any) -> TTMatrix:
        """A :class:`TTMatrix` from a ``tensorly`` ``TTMatrix`` (or its list of factors).

        Example:
            >>> import numpy as np
            >>> from tensorly.tt_matrix import TTMatrix as TLMatrix
            >>> TTMatrix.from_tensorly(TLMatrix([np.ones((1, 2, 3, 1))])).shape
            (2, 3)
        """
        return cls(_tensorly.factors(obj, ndim=4))

    def __repr__(self) -> str:
        return (
            f"TTMatrix(row_shape={self.row_shape}, col_shape={self.col_shape}, "
            f"ranks={self.ranks}, dtype={self.dtype}, error={self._error})"
        )
