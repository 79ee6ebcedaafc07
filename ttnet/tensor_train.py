"""The TT tensor value type, :class:`TensorTrain`."""

from __future__ import annotations

from typing import Any

from ttnet._base import TTBase
from ttnet.contraction import tt_full

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
        """The dense tensor of shape :attr:`shape` (via :func:`ttnet.contraction.tt_full`).

        Example:
            >>> import numpy as np
            >>> TensorTrain([np.ones((1, 2, 1))]).full().tolist()
            [1.0, 1.0]
        """
        return tt_full(self._cores)

    def to_tensorly(self) -> Any:
        """This TT as a ``tensorly.tt_tensor.TTTensor`` (same core arrays; needs tensorly).

        Example:
            >>> import numpy as np
            >>> TensorTrain([np.ones((1, 2, 1))]).to_tensorly().rank
            (1, 1)
        """
        from ttnet.interop import to_tensorly

        return to_tensorly(self)

    @classmethod
    def from_tensorly(cls, obj: Any) -> TensorTrain:
        """A :class:`TensorTrain` from a ``tensorly`` ``TTTensor`` (or its list of factors).

        Example:
            >>> import numpy as np
            >>> from tensorly.tt_tensor import TTTensor
            >>> TensorTrain.from_tensorly(TTTensor([np.ones((1, 2, 1))])).shape
            (2,)
        """
        from ttnet.interop import from_tensorly

        result = from_tensorly(obj)
        if not isinstance(result, cls):
            raise TypeError(f"obj: expected a tensorly TTTensor, got {type(obj).__name__}")
        return result

    def __repr__(self) -> str:
        return (
            f"TensorTrain(shape={self.shape}, ranks={self.ranks}, dtype={self.dtype}, "
            f"error={self._error})"
        )

