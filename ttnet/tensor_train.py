"""The TT tensor value type, :class:`TensorTrain`."""

from __future__ import annotations

from typing import Any

from ttnet import _tensorly, indexing
from ttnet._base import TTBase
from ttnet.dense import tt_full

__all__ = ["TensorTrain"]

Array = Any


class TensorTrain(TTBase):
    """An immutable tensor in TT format, cores ``G_k`` of shape ``(r_{k-1}, n_k, r_k)``.

    ``full()[i_1, ..., i_d] = G_1[:, i_1, :] @ ... @ G_d[:, i_d, :]``. Cores are numpy
    arrays or torch tensors (one library, one dtype); results keep that library, dtype
    and device. Integer / boolean cores are converted to float.

    Args:
        cores: the cores, ``r_0 = r_d = 1``.
        error: optional relative error versus a source tensor (set by
            :func:`ttnet.tt_svd` and :meth:`round`).

    Raises:
        ValueError: no cores, a core that is not 3-D, empty or non-finite, boundary
            ranks not 1, or ranks that do not chain; the message names the core index.
        TypeError: cores from different libraries or of different dtypes.

    Operators: ``a + b``, ``a - b``, ``-a``, ``c * a``, ``a * c``, ``a / c`` (scalar ``c``).

    Indexing: ``tt[i, j, k]`` is one entry (a 0-d array), ``tt[:, 1:4, 2]`` a sub-TT (slices
    keep their mode, ints drop theirs), :meth:`gather` a batch of entries; :meth:`sum` and
    :meth:`mean` reduce over all or some modes. None of them forms the full tensor.
    Values pickle, deep-copy and ``torch.save`` exactly; :func:`ttnet.save` writes a file.

    Example:
        >>> import numpy as np
        >>> g = np.ones((1, 2, 1))
        >>> tt = TensorTrain([g, 2 * g])
        >>> tt.shape, tt.ranks, tt.full().tolist()
        ((2, 2), (1, 1, 1), [[2.0, 2.0], [2.0, 2.0]])
    """

    __slots__ = ()
    _core_ndim = 3

    @property
    def shape(self) -> tuple[int, ...]:
        """Mode sizes ``(n_1, ..., n_d)``.

        Example:
            >>> import numpy as np
            >>> TensorTrain([np.ones((1, 3, 1))]).shape
            (3,)
        """
        return tuple(int(c.shape[1]) for c in self._cores)

    @property
    def ndim(self) -> int:
        """Number of modes ``d``.

        Example:
            >>> import numpy as np
            >>> TensorTrain([np.ones((1, 3, 1)), np.ones((1, 2, 1))]).ndim
            2
        """
        return len(self._cores)

    def full(self) -> Array:
        """The dense tensor of shape :attr:`shape` (via :func:`ttnet.dense.tt_full`).

        Example:
            >>> import numpy as np
            >>> TensorTrain([np.ones((1, 2, 1))]).full().tolist()
            [1.0, 1.0]
        """
        return tt_full(self._cores)

    def __getitem__(self, key: Any) -> Any:
        """``tt[i, j, k]``: an entry (0-d array); with slices or ``...``, a sub-TT.

        Ints drop their mode, slices keep it (steps allowed, not empty); missing trailing
        items mean ``:``. Raises ``IndexError`` naming the mode for an index out of range.

        Example:
            >>> import numpy as np, ttnet
            >>> x = np.arange(24.0).reshape(2, 3, 4)
            >>> tt = ttnet.tt_svd(x)
            >>> round(float(tt[1, 2, 3]), 8), tt[:, 1:3, 0].shape
            (23.0, (2, 2))
        """
        result = indexing.select_cores(self._cores, key)
        return result if not isinstance(result, list) else TensorTrain._trusted(result)

    def gather(self, indices: Any) -> Array:
        """Entries at a batch of multi-indices: ``indices`` ``(batch, d)`` -> ``(batch,)``.

        ``indices``: integers (numpy, torch or nested lists); negative ones count from the end.
        The result has the cores' library, dtype and device.

        Raises:
            IndexError: an index out of range (the message names the mode).
            ValueError: ``indices`` is not ``(batch, d)``. TypeError: not integers.

        Example:
            >>> import numpy as np, ttnet
            >>> x = np.arange(24.0).reshape(2, 3, 4)
            >>> ttnet.tt_svd(x).gather([[0, 0, 1], [1, 2, 3]]).round(8).tolist()
            [1.0, 23.0]
        """
        labels = [f"mode {k}" for k in range(self.ndim)]
        checked = indexing.check_indices(indices, self.shape, self._cores[0], labels)
        return indexing.gather_cores(self._cores, checked)

    def sum(self, axis: int | tuple[int, ...] | None = None) -> Any:
        """Sum over all modes (``axis=None``: a 0-d array) or some (a :class:`TensorTrain`).

        Example:
            >>> import numpy as np, ttnet
            >>> x = np.arange(24.0).reshape(2, 3, 4)
            >>> tt = ttnet.tt_svd(x)
            >>> round(float(tt.sum()), 8), np.allclose(tt.sum(axis=(0, 2)).full(), x.sum((0, 2)))
            (276.0, True)
        """
        axes = indexing.normalize_axes(axis, self.ndim)
        result = indexing.sum_cores(self._cores, axes)
        return result if not isinstance(result, list) else TensorTrain._trusted(result)

    def mean(self, axis: int | tuple[int, ...] | None = None) -> Any:
        """Mean over all modes (a 0-d array) or some (a :class:`TensorTrain`), as :meth:`sum`.

        Example:
            >>> import numpy as np, ttnet
            >>> x = np.arange(24.0).reshape(2, 3, 4)
            >>> round(float(ttnet.tt_svd(x).mean()), 8)
            11.5
        """
        axes = indexing.normalize_axes(axis, self.ndim)
        count = 1
        for k in axes:
            count *= self.shape[k]
        return self.sum(axes) / count

    def to_tensorly(self) -> Any:
        """This TT as a ``tensorly.tt_tensor.TTTensor`` (same core arrays; needs tensorly).

        Example:
            >>> import numpy as np
            >>> TensorTrain([np.ones((1, 2, 1))]).to_tensorly().rank
            (1, 1)
        """
        return _tensorly.to_tensorly(self._cores)

    @classmethod
    def from_tensorly(cls, obj: Any) -> TensorTrain:
        """A :class:`TensorTrain` from a ``tensorly`` ``TTTensor`` (or its list of factors).

        Example:
            >>> import numpy as np
            >>> from tensorly.tt_tensor import TTTensor
            >>> TensorTrain.from_tensorly(TTTensor([np.ones((1, 2, 1))])).shape
            (2,)
        """
        return cls(_tensorly.factors(obj, ndim=3))

    def __repr__(self) -> str:
        return (
            f"TensorTrain(shape={self.shape}, ranks={self.ranks}, dtype={self.dtype}, "
            f"error={self._error})"
        )

